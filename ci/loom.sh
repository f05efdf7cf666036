#!/usr/bin/env bash
# Loom model checking of the core protocol (core/src/loom_tests.rs).
#   ci/loom.sh                       # preemption bound 2 (CI)
#   LOOM_MAX_PREEMPTIONS=3 ci/loom.sh
#   ci/loom.sh --features _bug-relaxed-orderings   # used by ci/teeth.sh: must fail
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2}
# Debug assertions on: the protocol checks its invariants (a slot read before it is published).
export RUSTFLAGS="--cfg multicast_loom -C debug-assertions ${RUSTFLAGS:-}"
extra=()
if [ "${1:-}" = "--features" ]; then extra=(--features "alloc,$2"); else extra=(--features alloc); fi
echo "loom: preemption bound $LOOM_MAX_PREEMPTIONS ${extra[*]}"
CARGO_TARGET_DIR=target/loom cargo test -p multicast-buffer-core "${extra[@]}" --lib --release loom
