#!/usr/bin/env bash
# Memory and code size of ours, against embassy-sync's PubSubChannel.
#
# 1. Code size and RAM in a firmware-style build (sizes/: no_std, no_main, cortex-m-rt,
#    panic-halt, thumbv7em-none-eabihf, release, opt-level "s", fat LTO). Three binaries do the
#    same job, a loop that publishes u32 values into a 64-slot buffer until it refuses and lets 4
#    subscribers drain it:
#      baseline  the same runtime and loop without a buffer (the floor)
#      ours      multicast-buffer-core's InlineBuffer<u32, 64, 4>: Publisher::try_publish,
#                Subscriber::try_recv
#      embassy   embassy-sync's PubSubChannel<CriticalSectionRawMutex, u32, 64, 4, 1>:
#                Publisher::try_publish, Subscriber::try_next_message_pure
#      ours (no padding)  ours built with the core's `no-cache-padding` feature (cursors not
#                padded to a cache line: for cores without a data cache, like this M4)
#    .text is code, .rodata constants, .vector_table cortex-m-rt's vector table (the same in
#    all three); RAM is .data + .bss (+ .uninit, none here).
# 2. Bytes per slot and per consumer, from size_of of the buffer types (64 vs 128 slots, 1 vs 2
#    consumers) on x86_64 (benches/src/bin/layout.rs) and on thumbv7em-none-eabihf
#    (sizes/src/bin/layout.rs, which writes them into a .layout section of its ELF at compile
#    time: nothing runs on the target).
#
# Needs arm-none-eabi-size (Debian's binutils-arm-none-eabi, installed here with apt when
# missing and possible) or llvm-size, and llvm-objcopy or arm-none-eabi-objcopy.
#
# Usage: ci/sizes.sh
set -euo pipefail

cd "$(dirname "$0")/.."

find_tool() { # candidates...: prints the first one found
    local tool
    for tool in "$@"; do
        if command -v "$tool" >/dev/null; then
            echo "$tool"
            return 0
        fi
    done
    return 1
}

if ! find_tool arm-none-eabi-size llvm-size >/dev/null; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        echo "sizes.sh: installing binutils-arm-none-eabi" >&2
        apt-get update -qq >&2 && apt-get install -y -qq binutils-arm-none-eabi >&2
    fi
fi
size_tool="$(find_tool arm-none-eabi-size llvm-size)" || {
    echo "sizes.sh: needs arm-none-eabi-size (apt-get install binutils-arm-none-eabi) or llvm-size" >&2
    exit 1
}
objcopy_tool="$(find_tool llvm-objcopy arm-none-eabi-objcopy)" || {
    echo "sizes.sh: needs llvm-objcopy or arm-none-eabi-objcopy" >&2
    exit 1
}

target=thumbv7em-none-eabihf
# sizes/ is its own workspace with its own target directory, unless CARGO_TARGET_DIR says
# otherwise.
elf_dir="${CARGO_TARGET_DIR:-sizes/target}/$target/release"
cargo build --release --quiet -p multicast-buffer-benches --bin layout
host_layout="${CARGO_TARGET_DIR:-target}/release/layout"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Default features first, then `ours` and `layout` again without cache padding; each ELF is
# copied out before the next build replaces it.
(cd sizes && cargo build --release --quiet)
for bin in baseline ours embassy layout; do
    cp "$elf_dir/$bin" "$work/$bin.elf"
done
(cd sizes && cargo build --release --quiet --features no-cache-padding --bin ours --bin layout)
cp "$elf_dir/ours" "$work/ours-nopad.elf"
cp "$elf_dir/layout" "$work/layout-nopad.elf"

# section ELF NAME: the size of section NAME in ELF (0 when absent), from `size -A`.
section() {
    awk -v name="$2" '$1 == name { size = $2 } END { print size + 0 }' "$work/$1.sections"
}

printf 'code size and RAM: %s, release, opt-level "s", fat LTO (%s)\n\n' "$target" "$size_tool"
printf '%-17s %7s %8s %14s %7s %7s %6s %13s %12s\n' \
    binary .text .rodata .vector_table .data .bss RAM '.text - base' 'RAM - base'
printf '%-17s %7s %8s %14s %7s %7s %6s %13s %12s\n' \
    ----------------- ------- -------- -------------- ------- ------- ------ ------------- ------------
base_text=0
base_ram=0
for bin in baseline ours ours-nopad embassy; do
    "$size_tool" -A "$work/$bin.elf" >"$work/$bin.sections"
    text="$(section "$bin" .text)"
    rodata="$(section "$bin" .rodata)"
    vectors="$(section "$bin" .vector_table)"
    data="$(section "$bin" .data)"
    bss="$(section "$bin" .bss)"
    uninit="$(section "$bin" .uninit)"
    ram=$((data + bss + uninit))
    if [[ "$bin" == baseline ]]; then
        base_text=$text
        base_ram=$ram
    fi
    name="$bin"
    [[ "$bin" == ours-nopad ]] && name="ours (no padding)"
    printf '%-17s %7s %8s %14s %7s %7s %6s %13s %12s\n' "$name" "$text" "$rodata" "$vectors" \
        "$data" "$bss" "$ram" "$((text - base_text))" "$((ram - base_ram))"
done

# The layouts: "<crate> <payload> <slots> <consumers> <bytes>" and "<handle> <payload> <bytes>".
"$host_layout" >"$work/host.layout"
"$objcopy_tool" -O binary --only-section=.layout "$work/layout.elf" "$work/thumb.bin"
tr -d '\0' <"$work/thumb.bin" >"$work/thumb.layout"
"$objcopy_tool" -O binary --only-section=.layout "$work/layout-nopad.elf" "$work/nopad.bin"
# Only ours changes without padding; the embassy lines are the same.
tr -d '\0' <"$work/nopad.bin" | grep -Ev '^(embassy|publisher|subscriber)' | sed 's/^target \([^ ]*\) 0$/target \1,no-cache-padding 0/' \
    >"$work/nopad.layout"

layout_table() { # FILE
    awk '
        $1 == "target" { target = $2; next }
        NF == 5 { size[$1 " " $2 " " $3 " " $4] = $5; if (!(($1 " " $2) in seen)) { seen[$1 " " $2] = 1; order[++n] = $1 " " $2 } next }
        NF == 3 { handle[++h] = $1 " (" $2 "): " $3 " bytes"; next }
        END {
            printf "%s\n", target
            printf "  %-20s %14s %18s %12s %28s\n", "buffer", "bytes/slot", "bytes/consumer", "fixed", "64 slots, 4 consumers"
            for (i = 1; i <= n; i++) {
                key = order[i]
                split(key, part, " ")
                s64 = size[key " 64 1"]; s128 = size[key " 128 1"]; c2 = size[key " 64 2"]; c4 = size[key " 64 4"]
                slot = (s128 - s64) / 64
                consumer = c2 - s64
                fixed = s64 - 64 * slot - consumer
                payload = part[2] == "arc" ? "Arc<[u8; 64]>" : part[2]
                printf "  %-20s %14d %18d %12d %28d\n", part[1] " " payload, slot, consumer, fixed, c4
            }
            for (i = 1; i <= h; i++) printf "  %s\n", handle[i]
        }
    ' "$1"
}

printf '\nmemory: size_of, bytes per slot (64 vs 128 slots), per consumer (1 vs 2), fixed part\n'
printf '(ours: InlineBuffer<T, CAP, N>; HeapBuffer has the same slots and cursors on the heap)\n\n'
layout_table "$work/host.layout"
echo
layout_table "$work/thumb.layout"
echo
layout_table "$work/nopad.layout"
printf '\n(on thumbv7em, Arc<[u8; 64]> is measured as NonNull<[u8; 64]>: no allocator there, and\n'
printf ' an Arc of a sized type is one non-null pointer)\n'
