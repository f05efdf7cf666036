#!/usr/bin/env bash
# Checks with teeth: each injected bug (`--cfg multicast_bug="..."`, never set by default and not
# reachable through cargo features) must make its checkers fail. A checker that cannot fail
# proves nothing.
#   relaxed-orderings     every atomic ordering Relaxed                          (loom, Miri)
#   release-before-read   a consumer gives back its unit before reading the value (loom, Miri)
#   publish-before-write  the write position advances before the slot is written (loom, Miri)
#   read-before-claim     an evictable subscriber reads a value before claiming its position,
#                         so a detach can give the slot away under it (loom: the race needs a
#                         detach between two instructions, which loom explores and a few Miri
#                         schedules would only hit by chance)
#   prepare-over-held     the producer prepares a count word with a plain store while readers
#                         still hold lanes of it (the packed counts)                (loom, Miri)
#   unwind-unpublished    the panic guard of `publish_iter` moves the publisher on but not the
#                         shared write word (the bug this guard once had): the model test with
#                         panicking operations must fail                          (model test)
#   claim-without-release the index API's claim is Acquire only (no Release): a thread that
#                         reads the claimed position (a detach, a new Subscriber) may then see an
#                         older write word, and a settle gave back unpublished positions: the
#                         misuse tests of that under Miri's weak memory must fail  (Miri)
#   unwind-without-wake   the adapter's receive wakes a publisher waiting for room only when it
#                         returns, not when it unwinds (a panicking `Clone` whose claim gave a
#                         slot back): the adapter's lost-wake-up tests must fail  (wakeups test)
set -uo pipefail
cd "$(dirname "$0")/.."
bugs=(relaxed-orderings release-before-read publish-before-write read-before-claim prepare-over-held unwind-unpublished claim-without-release unwind-without-wake)
missed=0
for bug in "${bugs[@]}"; do
  case "$bug" in
    read-before-claim) checkers=(loom) ;;
    unwind-unpublished) checkers=(model) ;;
    claim-without-release) checkers=(miri) ;;
    unwind-without-wake) checkers=(wakeups) ;;
    *) checkers=(loom miri) ;;
  esac
  for checker in "${checkers[@]}"; do
    log="target/teeth-$checker-$bug.log"
    mkdir -p target
    case "$checker" in
      loom) bash ci/loom.sh --bug "$bug" >"$log" 2>&1 ;;
      miri) bash ci/miri.sh --bug "$bug" >"$log" 2>&1 ;;
      model)
        RUSTFLAGS="--cfg multicast_bug=\"$bug\"" CARGO_TARGET_DIR="target/model-bug-$bug" \
          cargo test -p multicast-buffer-tests --test model_handles >"$log" 2>&1 ;;
      wakeups)
        RUSTFLAGS="--cfg multicast_bug=\"$bug\"" CARGO_TARGET_DIR="target/wakeups-bug-$bug" \
          cargo test -p multicast-buffer --test wakeups >"$log" 2>&1 ;;
    esac
    status=$?
    if [ $status -eq 0 ]; then
      echo "MISSED: $checker passed with $bug (log: $log)"
      missed=$((missed + 1))
    elif grep -qE "could not compile|failed to build sysroot" "$log" ||
      ! grep -qE "Undefined Behavior|data race|panicked at|causality violation|test failed|Test failed" "$log"; then
      # A failure that is not the checker finding the bug (a build that failed, a missing
      # sysroot) proves nothing either.
      echo "BROKEN: $checker failed with $bug without running its checks (log: $log)"
      missed=$((missed + 1))
    else
      why=$(grep -m1 -E "Undefined Behavior|data race|panicked at|causality violation|test failed|Test failed" "$log" | cut -c1-150)
      echo "caught: $checker fails with $bug: $why"
    fi
  done
done
[ $missed -eq 0 ] && echo "teeth: every injected bug caught"
exit $missed
