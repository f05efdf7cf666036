#!/usr/bin/env bash
# Instructions per publish and per consume on Cortex-M3 and Cortex-M0, counted under QEMU, for
# ours against embassy-sync's PubSubChannel and heapless's spsc::Queue (cycles/).
#
# Contenders (a 64-slot ring of u32, one producer; cycles/src/main.rs):
#   ours-1, ours-4              InlineBuffer<u32, 64, N>::new(), subscriber(i):
#                               Publisher::try_publish / Subscriber::try_recv
#   ours-batch-1, ours-batch-4  the same with Publisher::publish_iter / Subscriber::recv_batch
#                               (one call per handle per round)
#   embassy-1, embassy-4        embassy-sync 0.8 PubSubChannel<CriticalSectionRawMutex, u32, 64,
#                               4, 1> with 1 and 4 subscribers: try_publish / try_next_message_pure
#   heapless-1                  heapless 0.9 spsc::Queue<u32, 64>: enqueue / dequeue (the floor)
# Built with opt-level "s", fat LTO, one codegen unit (as firmware/ and sizes/). On the M0
# (thumbv6m, no compare-and-swap) ours's read-modify-writes go through portable-atomic's
# critical-section backend, as in firmware/; embassy-sync takes a critical section per call.
#
# Method: QEMU runs with `-icount shift=S`: each guest instruction advances virtual time by
# exactly 2^S ns, whatever the host does. SysTick (core clock, 24-bit, counting down) runs on
# virtual time at the board's nominal clock in QEMU's model (12.5 MHz for the lm3s6965evb after
# reset, 16 MHz for the micro:bit), so it counts 2^S * f / 1e9 ticks per instruction: 12.8 and
# 16.384 at S=10, a resolution finer than one instruction. (QEMU 7.2 does not implement the DWT
# cycle counter: CYCCNT reads 0.) The firmware first calibrates: straight runs of 1000, 2000 and
# 4000 `nop`s, and a `subs`/`bne` loop of 1000, 2000 and 4000 iterations; this script takes the
# ticks per instruction from the nop runs (the difference between 4000 and 1000, so the call
# around them cancels) and fails unless every calibration agrees with it to within 2 ticks.
#
# Each contender then runs rounds (after 8 uncounted warm-up rounds): publish V values (one
# timed segment), then every consumer takes everything available (one timed segment); each
# consumer checks that it receives every value in order, and the producer that none is refused.
# 64 rounds each at V = 0, K and 2K (K = 16). Per value = (ticks at 2K - ticks at K) / (64 K),
# which removes what is paid once per round (the timer reads, the drain's last, empty call, the
# loop set-up), like ci/instructions.sh's K and 2K on x86. The figures include the few
# instructions of the measuring loop itself (counter, compare, branch, order check), the same
# for every contender. "First K" is the same from V = 0 and V = K: a cost that grows with the
# values waiting shows as a difference between the two (embassy-sync's subscribers find their
# message by walking the queue from its oldest entry).
#
#   per delivered value = publish / consumers + consume: what it takes for one consumer to
#                         receive one value, the producer's share included.
#
# Targets (issue 11), per delivered value with try_publish / try_recv, on each core: with 1
# consumer, ours within 1.5x of heapless's spsc::Queue; with 4 consumers, fewer than
# embassy-sync's PubSubChannel. Each verdict compares the less favourable of ours's two figures
# (2K - K and first K) with the more favourable of the peer's.
#
# Every run is done twice and must print the same counts (deterministic), exit through
# semihosting with status 0 and within a timeout. These are instructions, not cycles: a load
# takes 2 cycles on an M0 or M3, a taken branch 2-3.
#
# Usage: ci/cycles.sh [--require-targets]
#   --require-targets  exit 1 if a target is missed (by default a missed target is printed as
#                      MISSED and only a failed measurement fails the script)
# Installs qemu-system-arm (apt) and the thumbv6m/thumbv7m targets (rustup) if missing.
set -euo pipefail
cd "$(dirname "$0")/../cycles"

require_targets=false
case "${1:-}" in
    "") ;;
    --require-targets) require_targets=true ;;
    *)
        echo "usage: ci/cycles.sh [--require-targets]" >&2
        exit 2
        ;;
esac

# QEMU's -icount shift: 2^SHIFT ns of virtual time per instruction.
SHIFT=10
# Seconds a QEMU run may take (it takes well under one).
TIMEOUT=60

if ! command -v qemu-system-arm >/dev/null; then
    echo "== installing qemu-system-arm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >/dev/null
fi

# core, board, target, nominal SysTick clock in Hz (QEMU's model), QEMU machine options
boards=(
    "Cortex-M3 lm3s6965evb thumbv7m-none-eabi 12500000 -cpu cortex-m3 -machine lm3s6965evb"
    "Cortex-M0 microbit thumbv6m-none-eabi 16000000 -machine microbit"
)

targets=()
for entry in "${boards[@]}"; do
    read -r _ _ target _ <<<"$entry"
    targets+=("$target")
done
rustup target add "${targets[@]}" >/dev/null 2>&1
echo "== building cycles/ for ${targets[*]}"
cargo build --release --quiet --target-dir target "${targets[@]/#/--target=}"
echo "== $(qemu-system-arm --version | head -n 1)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# run_board ELF OUT MACHINE...: one QEMU run, its stdout in OUT; fails (with its log) unless it
# exits with status 0 within the timeout, after a `done` line, with no FAILED line.
run_board() {
    local elf=$1 out=$2
    shift 2
    local status=0
    timeout --kill-after=5 "$TIMEOUT" qemu-system-arm "$@" -nographic -icount shift="$SHIFT" \
        -semihosting-config enable=on,target=native -kernel "$elf" \
        </dev/null >"$out" 2>"$out.stderr" || status=$?
    if [[ $status -ne 0 ]] || ! grep -qx "done" "$out" || grep -q FAILED "$out"; then
        if [[ $status -eq 124 || $status -eq 137 ]]; then
            echo "cycles: QEMU timed out after ${TIMEOUT}s" >&2
        fi
        echo "cycles: $elf failed under QEMU (exit $status):" >&2
        cat "$out" "$out.stderr" >&2
        return 1
    fi
}

# report CORE BOARD TARGET HZ FILE VERDICTS: the calibration, the table and the verdicts of one
# board's output; writes a "met" or "MISSED" line per target to VERDICTS; fails if the
# calibration disagrees with itself.
report() {
    awk -v core="$1" -v board="$2" -v target="$3" -v hz="$4" -v shift="$SHIFT" -v verdicts="$6" '
        function abs(x) { return x < 0 ? -x : x }
        $1 == "calibrate" { cal[$2 " " $3] = $4; next }
        $1 == "measure" {
            name = $2
            if (!(name in consumers)) order[++n] = name
            consumers[name] = $3; rounds = $5
            if ($4 == 0) { p0[name] = $6; c0[name] = $7 }
            else if (!(name in pk)) { k = $4; pk[name] = $6; ck[name] = $7 }
            else { p2k[name] = $6; c2k[name] = $7 }
            next
        }
        END {
            tpi = (cal["nops 4000"] - cal["nops 1000"]) / 3000
            expected = 2 ^ shift * hz / 1e9
            printf "%s (QEMU %s, %s), -icount shift=%d\n", core, board, target, shift
            printf "calibration: %.4f SysTick ticks per instruction (expected 2^%d ns x %.1f MHz = %.4f)\n", \
                tpi, shift, hz / 1e6, expected
            bad = 0
            for (i = 1; i <= 3; i++) {
                len = 500 * 2 ^ i
                printf "  %4d nops: %7d ticks", len, cal["nops " len]
                if (len > 1000) {
                    d = cal["nops " len] - cal["nops " len / 2]
                    printf ", %4d more: %6d ticks = %.4f per instruction", len / 2, d, d / (len / 2)
                    if (abs(d - len / 2 * tpi) > 2) bad = 1
                }
                printf "\n"
            }
            for (i = 1; i <= 3; i++) {
                len = 500 * 2 ^ i
                printf "  loop of %4d (%4d instructions + 1): %7d ticks", len, 2 * len, cal["loop " len]
                if (len > 1000) {
                    d = cal["loop " len] - cal["loop " len / 2]
                    printf ", %4d more: %6d ticks = %.4f per instruction", len, d, d / len
                    if (abs(d - len * tpi) > 2) bad = 1
                }
                printf "\n"
            }
            if (bad || tpi <= 0) {
                print "cycles: the calibration runs disagree: instruction counts are not linear" > "/dev/stderr"
                exit 1
            }
            printf "\ninstructions per value: (2K - K) from %d rounds of 2K = %d and K = %d values; first K from K and 0\n\n", \
                rounds, 2 * k, k
            printf "%-34s %9s %8s %8s %14s %14s\n", "contender", "consumers", "publish", "consume", \
                "per delivered", "(first K)"
            printf "%-34s %9s %8s %8s %14s %14s\n", "----------------------------------", "---------", \
                "--------", "--------", "--------------", "--------------"
            for (i = 1; i <= n; i++) {
                name = order[i]; c = consumers[name]
                label = name
                sub(/-[0-9]+$/, "", label)
                if (label == "ours") label = "ours try_publish / try_recv"
                else if (label == "ours-batch") label = "ours publish_iter / recv_batch"
                else if (label == "embassy") label = "embassy-sync PubSubChannel"
                else if (label == "heapless") label = "heapless spsc::Queue"
                per = rounds * k * tpi
                pub_ = (p2k[name] - pk[name]) / per
                con = (c2k[name] - ck[name]) / per / c
                delivered[name] = pub_ / c + con
                first[name] = ((pk[name] - p0[name]) + (ck[name] - c0[name])) / per / c
                printf "%-34s %9d %8.1f %8.1f %14.1f %14.1f\n", label, c, pub_, con, delivered[name], first[name]
            }
            ours1 = max2(delivered["ours-1"], first["ours-1"])
            heap = min2(delivered["heapless-1"], first["heapless-1"])
            ours4 = max2(delivered["ours-4"], first["ours-4"])
            emb4 = min2(delivered["embassy-4"], first["embassy-4"])
            printf "\ntargets (%s, try_publish / try_recv, per delivered value):\n", core
            ratio = ours1 / heap
            v = ratio <= 1.5 ? "met" : "MISSED"
            printf "  1 consumer:  ours %.1f vs heapless spsc %.1f: %.2fx (target <= 1.50x): %s\n", ours1, heap, ratio, v
            print v > verdicts
            v = ours4 < emb4 ? "met" : "MISSED"
            printf "  4 consumers: ours %.1f vs embassy-sync %.1f: %.2fx (target < 1x): %s\n", ours4, emb4, ours4 / emb4, v
            print v > verdicts
        }
        function max2(a, b) { return a > b ? a : b }
        function min2(a, b) { return a < b ? a : b }
    ' "$5"
}

met=0
missed=0
for entry in "${boards[@]}"; do
    read -r core board target hz machine <<<"$entry"
    elf="target/$target/release/multicast-buffer-cycles"
    # shellcheck disable=SC2086 # $machine holds several options
    run_board "$elf" "$work/$board.1" $machine
    # shellcheck disable=SC2086
    run_board "$elf" "$work/$board.2" $machine
    if ! cmp -s "$work/$board.1" "$work/$board.2"; then
        echo "cycles: two runs on $board counted differently (is -icount in effect?):" >&2
        diff "$work/$board.1" "$work/$board.2" >&2 || true
        exit 1
    fi
    echo
    report "$core" "$board" "$target" "$hz" "$work/$board.1" "$work/$board.verdicts"
    met=$((met + $(grep -cx met "$work/$board.verdicts" || true)))
    missed=$((missed + $(grep -cx MISSED "$work/$board.verdicts" || true)))
done

echo
echo "cycles: the same counts in two runs on each board; targets: $met met, $missed MISSED"
if $require_targets && ((missed > 0)); then
    echo "cycles: $missed target(s) missed (--require-targets)" >&2
    exit 1
fi
