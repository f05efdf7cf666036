#!/usr/bin/env bash
# Spin model check of the protocol of issue 17 (verification/protocol.pml, verification/README.md).
#   ci/verify.sh            # 7 configurations (must pass), 7 injected bugs (must fail)
#   JOBS=1 ci/verify.sh     # one run at a time (default: 2 at once)
#   ci/verify.sh --reach    # also the 8 reachability probes (each must fail): after a model change
#   STORAGE=HC4 ci/verify.sh  # hash compaction instead of exhaustive: half the time, ~1% states missed
# Cost (measured on the 2-core dev VM; verification/README.md has the table): 3.6 CPU-minutes,
# so about 2 minutes of wall time with both cores free; 5 min 16 s while other jobs kept the load
# at 6. At most 1.8 GiB of memory per run, about 3.5 GiB with two at once. Every run is
# exhaustive. Installs Spin (Debian package `spin`) if it is missing; needs gcc.
# Prints one line per run and exits non-zero if a clean configuration fails, or if an injected bug
# or a reachability probe passes (each of those must make the checker report an error).
set -uo pipefail
cd "$(dirname "$0")/.."
model=$PWD/verification/protocol.pml

command -v spin >/dev/null || (apt-get update && apt-get install -y spin) >/dev/null
command -v spin >/dev/null || { echo "verify: spin is not installed"; exit 1; }
command -v gcc >/dev/null || { echo "verify: gcc is not installed"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run NAME EXPECT STORAGE HASHBITS OPT SPIN-FLAGS...
#   EXPECT: pass (no error) or fail (an assertion violation or an invalid end state)
#   STORAGE: COLLAPSE (exhaustive, lossless); HC4 (hash compaction) would halve the time but
#            misses about 1% of the states here (see the README), so no run uses it
#   OPT: gcc's optimisation (-O2 pays for its 6 s of compiling only on the large runs)
run() {
  local name=$1 expect=$2 storage=${STORAGE:-$3} bits=$4 opt=$5
  shift 5
  local dir=$work/$name
  mkdir -p "$dir" && cp "$model" "$dir/" && cd "$dir" || return 1
  local start=$SECONDS
  if ! spin -a "$@" protocol.pml >spin.txt 2>&1 ||
    ! gcc "$opt" -DSAFETY -D"$storage" -o pan pan.c >gcc.txt 2>&1; then
    echo "FAIL $name: the model does not build ($*)"
    cat spin.txt gcc.txt | head -20
    return 1
  fi
  ./pan -m100000 -w"$bits" >out.txt 2>&1
  local secs=$((SECONDS - start))
  local errors states error
  errors=$(grep -oE 'errors: [0-9]+' out.txt | grep -oE '[0-9]+')
  states=$(grep -oE '[0-9]+ states, stored' out.txt | grep -oE '^[0-9]+')
  error=$(grep -m1 -E '^pan:[0-9]+: ' out.txt | sed 's/^pan:[0-9]*: //')
  local mem
  mem=$(grep -oE '[0-9.]+\s+total actual memory usage' out.txt | grep -oE '^[0-9]+')
  local what="$expect $name ($storage, ${states:-?} states, ${mem:-?} MB, ${secs} s): ${error:-no error}"
  if [ -z "$errors" ] || grep -q 'max search depth too small' out.txt; then
    echo "FAIL $what: the search did not complete"
    tail -20 out.txt
    return 1
  fi
  if [ "$expect" = pass ] && [ "$errors" = 0 ]; then
    echo "ok   $what"
  elif [ "$expect" = fail ] && [ "$errors" != 0 ] && [ -n "$error" ]; then
    echo "ok   $what"
  else
    echo "FAIL $what"
    [ "$expect" = pass ] && (cd "$dir" && ./pan -r -n 2>/dev/null | tail -40)
    return 1
  fi
}

runs=(
  # clean configurations: must pass (the largest first, so that two at once finish together).
  # SCENARIO 0: no membership change; 1: detach (also mid-read) and rejoin; 2: leave and
  # subscribe again (take-over or join); 3: both.
  "cap2-all pass COLLAPSE 26 -O2 -DCAPACITY=2 -DSCENARIO=3 -DVALUES=3"
  "cap4-detach pass COLLAPSE 26 -O2 -DCAPACITY=4 -DSCENARIO=1 -DVALUES=5"
  "cap4-leave pass COLLAPSE 26 -O2 -DCAPACITY=4 -DSCENARIO=2 -DVALUES=5"
  "cap2-steady pass COLLAPSE 22 -O0 -DCAPACITY=2 -DSCENARIO=0 -DVALUES=6"
  "cap2-detach pass COLLAPSE 24 -O2 -DCAPACITY=2 -DSCENARIO=1 -DVALUES=5"
  "cap2-leave pass COLLAPSE 24 -O2 -DCAPACITY=2 -DSCENARIO=2 -DVALUES=5"
  "cap4-steady pass COLLAPSE 22 -O0 -DCAPACITY=4 -DSCENARIO=0 -DVALUES=7"
  # injected bugs: must fail
  "bug-cursor-before-reset fail COLLAPSE 22 -O0 -DCAPACITY=2 -DSCENARIO=0 -DBUG_CURSOR_BEFORE_RESET"
  "bug-cursor-before-read fail COLLAPSE 22 -O0 -DCAPACITY=2 -DSCENARIO=0 -DBUG_CURSOR_BEFORE_READ"
  "bug-gate-misses-join fail COLLAPSE 22 -O0 -DCAPACITY=2 -DSCENARIO=2 -DBUG_GATE_MISSES_JOIN"
  "bug-leave-needs-producer fail COLLAPSE 22 -O0 -DCAPACITY=2 -DSCENARIO=2 -DBUG_LEAVE_NEEDS_PRODUCER"
  "bug-detach-takes-claim fail COLLAPSE 24 -O0 -DCAPACITY=2 -DSCENARIO=1 -DBUG_DETACH_TAKES_CLAIM"
  "bug-take-over-cursor-first fail COLLAPSE 22 -O0 -DCAPACITY=2 -DSCENARIO=2 -DBUG_TAKE_OVER_CURSOR_FIRST"
  "bug-cursor-before-reset-cap4 fail COLLAPSE 22 -O0 -DCAPACITY=4 -DSCENARIO=0 -DBUG_CURSOR_BEFORE_RESET"
)
# Reachability probes (--reach): each asserts at the end of a run that its scenario did not
# happen, so each must fail; one that passes means the model no longer explores that scenario.
# Run them after changing the model.
if [ "${1:-}" = "--reach" ]; then
  for probe in 1:mid-read-detach:1 2:join-by-producer:2 3:take-over:2 4:rejoin-cancels:1 \
    5:seat-lost:3 6:producer-full:0 7:join-after-close:2 8:reuse-after-wrap:0; do
    IFS=: read -r n what scenario <<<"$probe"
    runs+=("reach-$what fail COLLAPSE 22 -O0 -DCAPACITY=2 -DSCENARIO=$scenario -DVALUES=3 -DREACH=$n")
  done
fi

jobs_max=${JOBS:-2}
start=$SECONDS
for r in "${runs[@]}"; do
  name=${r%% *}
  # shellcheck disable=SC2086
  (run $r >"$work/$name.log" 2>&1; echo $? >"$work/$name.status") &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
done
wait
failed=0
for r in "${runs[@]}"; do
  name=${r%% *}
  cat "$work/$name.log"
  [ "$(cat "$work/$name.status" 2>/dev/null)" = 0 ] || failed=$((failed + 1))
done
echo "verify: ${#runs[@]} runs, $failed failed, $((SECONDS - start)) s"
[ "$failed" = 0 ]
