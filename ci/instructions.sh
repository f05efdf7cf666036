#!/usr/bin/env bash
# Instructions per publish and per consume, counted by callgrind (valgrind), for ours and for
# disruptor-rs's EventPoller, u64 payload, capacity 1024, 1 and 4 consumers.
#
# Method: the driver (benches/src/bin/instructions.rs) runs K steady-state iterations (publish
# one value, then every consumer consumes it) with each publish and each consume inside its own
# #[no_mangle] #[inline(never)] wrapper. callgrind runs it with collection off at start and
# --toggle-collect=<wrapper>, so it counts only instructions executed inside that wrapper (the
# operation plus the wrapper's few instructions of its own). Each count is taken at K and at 2K
# iterations; the difference divided by K (per publish) or by K * consumers (per consume)
# removes anything that does not grow with the iteration count.
#
# Instruction counts are not time: an atomic read-modify-write is one instruction here and
# tens of cycles on hardware. See `cargo bench -p multicast-buffer-benches` and the `compare`
# binary for time.
#
# Usage: ci/instructions.sh [K]   (default K=100000; needs valgrind)
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

# count WRAPPER VARIANT ITERATIONS: instructions executed inside WRAPPER.
count() {
    local out="$work/callgrind.out"
    if ! valgrind --tool=callgrind --collect-atstart=no --toggle-collect="$1" \
        --callgrind-out-file="$out" "$bin" "$2" "$3" >"$work/stdout" 2>"$work/stderr"; then
        echo "instructions.sh: the run of $2 with $3 iterations failed:" >&2
        cat "$work/stderr" >&2
        exit 1
    fi
    local total
    total="$(awk '/^(summary|totals):/ { print $2; exit }' "$out")"
    if [[ -z "$total" ]]; then
        echo "instructions.sh: no total in callgrind's output for $2" >&2
        exit 1
    fi
    echo "$total"
}

printf 'callgrind, K=%s and 2K iterations, instructions per operation (wrapper included)\n\n' "$K"
printf '%-20s %9s %14s %14s\n' variant consumers per_publish per_consume
printf '%-20s %9s %14s %14s\n' -------------------- --------- -------------- --------------
for variant in $("$bin" --list); do
    read -r publish consume consumers <<<"$("$bin" --symbols "$variant")"
    p1="$(count "$publish" "$variant" "$K")"
    p2="$(count "$publish" "$variant" "$((2 * K))")"
    c1="$(count "$consume" "$variant" "$K")"
    c2="$(count "$consume" "$variant" "$((2 * K))")"
    per_publish="$(awk -v a="$p1" -v b="$p2" -v k="$K" 'BEGIN { printf "%.2f", (b - a) / k }')"
    per_consume="$(awk -v a="$c1" -v b="$c2" -v k="$K" -v n="$consumers" \
        'BEGIN { printf "%.2f", (b - a) / (k * n) }')"
    printf '%-20s %9s %14s %14s\n' "$variant" "$consumers" "$per_publish" "$per_consume"
done
printf '\nseed reference (original, unsound implementation): 32 per publish, 37 per consume;\n'
printf 'disruptor-rs poller (as quoted with the seed): 19 per publish, 34 per consume.\n'
