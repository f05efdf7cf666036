#!/usr/bin/env bash
# Instructions per publish and per consume, counted by callgrind (valgrind), for every API of
# ours and for disruptor-rs's EventPoller, u64 payload, capacity 1024, 1 and 4 consumers.
#
# Variants (benches/src/bin/instructions.rs):
#   ours-index          MulticastBuffer::try_publish / consume(idx): the seed's &self API
#   ours-handles        Publisher::try_publish / Subscriber::try_recv over Arc<HeapBuffer>
#   ours-read           Publisher::try_publish / Subscriber::try_read (guard, copy out, drop)
#   ours-batch          Publisher::publish_iter / Subscriber::recv_batch, 64 values per call
#   ours-inline         the handles over a &'static InlineBuffer (shape known at compile time)
#   ours-inline-batch   the batch calls over a &'static InlineBuffer
#   disruptor-poller    disruptor-rs 4: try_publish / EventPoller::poll, one value per call
#   disruptor-batch     disruptor-rs 4: try_batch_publish(64) / EventPoller::poll of all 64
#
# Method: the driver runs K steady-state iterations (publish, then every consumer consumes what
# was published) with each publish call and each consume call inside its own #[no_mangle]
# #[inline(never)] wrapper. callgrind runs it with collection off at start and
# --toggle-collect=<wrapper>, so it counts only instructions executed inside that wrapper (the
# operation plus the wrapper's few instructions of its own: a `ret`, sometimes a push/pop pair).
# Each count is taken at K and at 2K iterations; the difference divided by the values published
# (per publish) or by values x consumers (per consume) removes anything that does not grow with
# the iteration count. Batch variants move 64 values per iteration, so their figures are per
# value: the cost of one call spread over its 64 values.
#
# Instruction counts are not time: an atomic read-modify-write is one instruction here and
# tens of cycles on hardware. See `cargo bench -p multicast-buffer-benches` and the `compare`
# binary for time.
#
# Usage: ci/instructions.sh [K]   (default K=100000; needs valgrind and objdump)
set -euo pipefail

cd "$(dirname "$0")/.."
K="${1:-${K:-100000}}"

if ! command -v valgrind >/dev/null; then
    echo "instructions.sh: valgrind is not installed (apt-get install valgrind)" >&2
    exit 1
fi

cargo build --release --quiet -p multicast-buffer-benches --bin instructions
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release/instructions"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Addresses of the locked instructions in the binary: a `lock` prefix, or `xchg` with a memory
# operand (locked implicitly).
objdump -d --no-show-raw-insn "$bin" |
    awk '/^ +[0-9a-f]+:\t(lock |xchg +[^,]*,.*\(|xchg +.*\(.*,)/ { sub(/:$/, "", $1); print "0x" $1 }' \
        >"$work/locked"

# count WRAPPER VARIANT ITERATIONS: "instructions locked": the instructions executed inside
# WRAPPER, and how many of them were locked (callgrind's per-instruction counts, --dump-instr,
# at the addresses above).
count() {
    local out="$work/callgrind.out"
    if ! valgrind --tool=callgrind --collect-atstart=no --toggle-collect="$1" \
        --dump-instr=yes --dump-line=no --compress-pos=no --compress-strings=no \
        --callgrind-out-file="$out" "$bin" "$2" "$3" >"$work/stdout" 2>"$work/stderr"; then
        echo "instructions.sh: the run of $2 with $3 iterations failed:" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    local total locked
    total="$(awk '/^(summary|totals):/ { print $2; exit }' "$out")"
    if [[ -z "$total" ]]; then
        echo "instructions.sh: no total in callgrind's output for $2" >&2
        exit 1
    fi
    # Self cost lines are "ADDRESS COUNT" under an `ob=` of our binary; the line after a
    # `calls=` line is the inclusive cost of a call and is skipped.
    locked="$(awk -v bin="$(realpath "$bin")" '
        FNR == NR { locked[$1] = 1; next }
        /^ob=/ { ours = (substr($0, 4) == bin); next }
        /^calls=/ { skip = 1; next }
        /^0x/ { if (skip) { skip = 0; next } if (ours && ($1 in locked)) n += $2; next }
        { skip = 0 }
        END { print n + 0 }
    ' "$work/locked" "$out")"
    echo "$total $locked"
}

results="$work/results"
: >"$results"
printf 'callgrind, K=%s and 2K iterations, u64, capacity 1024; instructions per value\n' "$K"
printf '(wrapper included; batch variants: 64 values per call, per-value figures;\n'
printf ' locked: lock-prefixed or memory-xchg instructions executed, counted by callgrind)\n\n'
printf '%-22s %9s %12s %12s %14s %14s\n' variant consumers per_publish per_consume \
    locked_publish locked_consume
printf '%-22s %9s %12s %12s %14s %14s\n' ---------------------- --------- ------------ \
    ------------ -------------- --------------
# per A B VALUES: (B - A) / VALUES, two decimals.
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f", (b - a) / n }'; }
for variant in $("$bin" --list); do
    read -r publish consume consumers per_iteration <<<"$("$bin" --symbols "$variant")"
    read -r p1 lp1 <<<"$(count "$publish" "$variant" "$K")"
    read -r p2 lp2 <<<"$(count "$publish" "$variant" "$((2 * K))")"
    read -r c1 lc1 <<<"$(count "$consume" "$variant" "$K")"
    read -r c2 lc2 <<<"$(count "$consume" "$variant" "$((2 * K))")"
    published=$((K * per_iteration))
    consumed=$((K * per_iteration * consumers))
    per_publish="$(per "$p1" "$p2" "$published")"
    per_consume="$(per "$c1" "$c2" "$consumed")"
    locked_publish="$(per "$lp1" "$lp2" "$published")"
    locked_consume="$(per "$lc1" "$lc2" "$consumed")"
    printf '%-22s %9s %12s %12s %14s %14s\n' "$variant" "$consumers" "$per_publish" \
        "$per_consume" "$locked_publish" "$locked_consume"
    echo "$variant $consumers $per_publish $per_consume $locked_publish $locked_consume" \
        >>"$results"
done

# The targets of the hot-path issue, over Arc<HeapBuffer>: single values (ours-handles) at most
# 16 instructions per publish and 22 per consume with 1 consumer; batches (ours-batch) at most 9
# per value on both sides with 1 consumer and 10 per value per consumer with 4; no locked
# instruction per value on the consume side with 1 consumer; the &self API (ours-index) at most
# one locked instruction per call.
printf '\ntargets (u64, capacity 1024):\n'
awk '
    function verdict(ok) { return ok ? "met" : "MISSED" }
    $1 == "ours-handles-1" {
        printf "  %-16s publish %6.2f <= 16, consume %6.2f <= 22, locked consume %4.2f == 0: %s\n", \
            $1, $3, $4, $6, verdict($3 <= 16 && $4 <= 22 && $6 == 0)
    }
    $1 == "ours-batch-1" {
        printf "  %-16s publish %6.2f <=  9, consume %6.2f <=  9, locked consume %4.2f == 0: %s\n", \
            $1, $3, $4, $6, verdict($3 <= 9 && $4 <= 9 && $6 == 0)
    }
    $1 == "ours-batch-4" {
        printf "  %-16s publish %6.2f <=  9, consume %6.2f <= 10 per consumer: %s\n", \
            $1, $3, $4, verdict($3 <= 9 && $4 <= 10)
    }
    $1 ~ /^ours-index-/ {
        printf "  %-16s locked publish %4.2f <= 1, locked consume %4.2f <= 1 per call: %s\n", \
            $1, $5, $6, verdict($5 <= 1 && $6 <= 1)
    }
' "$results"
printf '\nbefore the hot-path work (153115a): handles 29 per publish, 35 per consume; batches of 64\n'
printf '17.8 and 15.8 per value (18.8 per consumer with 4).\n'
