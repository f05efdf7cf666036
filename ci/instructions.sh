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

results="$work/results"
: >"$results"
printf 'callgrind, K=%s and 2K iterations, u64, capacity 1024; instructions per value\n' "$K"
printf '(wrapper included; batch variants: 64 values per call, per-value figures)\n\n'
printf '%-22s %9s %12s %12s\n' variant consumers per_publish per_consume
printf '%-22s %9s %12s %12s\n' ---------------------- --------- ------------ ------------
for variant in $("$bin" --list); do
    read -r publish consume consumers per_iteration <<<"$("$bin" --symbols "$variant")"
    p1="$(count "$publish" "$variant" "$K")"
    p2="$(count "$publish" "$variant" "$((2 * K))")"
    c1="$(count "$consume" "$variant" "$K")"
    c2="$(count "$consume" "$variant" "$((2 * K))")"
    per_publish="$(awk -v a="$p1" -v b="$p2" -v k="$K" -v m="$per_iteration" \
        'BEGIN { printf "%.2f", (b - a) / (k * m) }')"
    per_consume="$(awk -v a="$c1" -v b="$c2" -v k="$K" -v m="$per_iteration" -v n="$consumers" \
        'BEGIN { printf "%.2f", (b - a) / (k * m * n) }')"
    printf '%-22s %9s %12s %12s\n' "$variant" "$consumers" "$per_publish" "$per_consume"
    echo "$variant $consumers $per_publish $per_consume" >>"$results"
done

# The targets of the performance issue, for u64 with 1 consumer: the fastest sound API at most
# 20 instructions per publish and 25 per consume; the &self API (ours-index) at most 32 and 37
# (the seed's original, unsound implementation's figures).
printf '\ntargets (u64, 1 consumer):\n'
awk '
    $2 == 1 && $1 ~ /^ours-/ {
        name = $1; sub(/-1$/, "", name)
        if (name == "ours-index") { tp = 32; tc = 37; what = "&self API" }
        else { tp = 20; tc = 25; what = "fastest sound API" }
        verdict = ($3 <= tp && $4 <= tc) ? "met" : "MISSED"
        printf "  %-18s %-17s publish %6.2f <= %2d, consume %6.2f <= %2d: %s\n", \
            name, what, $3, tp, $4, tc, verdict
    }
' "$results"
printf '\nseed reference (original, unsound implementation): 32 per publish, 37 per consume;\n'
printf 'disruptor-rs poller (as quoted with the seed): 19 per publish, 34 per consume.\n'
