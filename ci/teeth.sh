#!/usr/bin/env bash
# Checks with teeth: each injected bug (`--cfg multicast_bug="..."`, never set by default and not
# reachable through cargo features) must make loom and Miri fail. A checker that cannot fail
# proves nothing.
#   relaxed-orderings     every atomic ordering Relaxed
#   release-before-read   a consumer gives back its count before reading the value
#   publish-before-write  the write position advances before the slot is written
#   read-before-claim     a subscriber reads a value before claiming its position, so a detach
#                         can give the slot away under it (loom only: the race needs a detach
#                         to land between two instructions, which loom explores and a few Miri
#                         schedules would only hit by chance)
set -uo pipefail
cd "$(dirname "$0")/.."
bugs=(relaxed-orderings release-before-read publish-before-write read-before-claim)
missed=0
for bug in "${bugs[@]}"; do
  checkers=(loom miri)
  [ "$bug" = read-before-claim ] && checkers=(loom)
  for checker in "${checkers[@]}"; do
    log="target/teeth-$checker-$bug.log"
    mkdir -p target
    if [ "$checker" = loom ]; then
      bash ci/loom.sh --bug "$bug" >"$log" 2>&1
    else
      bash ci/miri.sh --bug "$bug" >"$log" 2>&1
    fi
    status=$?
    if [ $status -eq 0 ]; then
      echo "MISSED: $checker passed with $bug (log: $log)"
      missed=$((missed + 1))
    else
      why=$(grep -m1 -E "Undefined Behavior|data race|panicked at|causality violation|error:" "$log" | cut -c1-150)
      echo "caught: $checker fails with $bug: $why"
    fi
  done
done
[ $missed -eq 0 ] && echo "teeth: every injected bug caught (loom and Miri; the claim bug by loom)"
exit $missed
