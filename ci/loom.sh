#!/usr/bin/env bash
# Loom model checking of the core protocol (core/src/loom_tests.rs).
#   ci/loom.sh                       # preemption bound 2 (CI)
#   LOOM_MAX_PREEMPTIONS=3 ci/loom.sh
#   ci/loom.sh --bug relaxed-orderings   # an injected bug (ci/teeth.sh): must fail
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2}
# Debug assertions on: the protocol checks its invariants (a slot read before it is published).
export RUSTFLAGS="--cfg multicast_loom -C debug-assertions ${RUSTFLAGS:-}"
target_dir=target/loom
if [ "${1:-}" = "--bug" ]; then
  RUSTFLAGS="$RUSTFLAGS --cfg multicast_bug=\"$2\""
  target_dir=target/loom-bug-$2
fi
echo "loom: preemption bound $LOOM_MAX_PREEMPTIONS, RUSTFLAGS=$RUSTFLAGS"
CARGO_TARGET_DIR=$target_dir cargo test -p multicast-buffer-core --features alloc --lib --release loom
