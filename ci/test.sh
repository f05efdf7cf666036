#!/usr/bin/env bash
# The README's test command (unit, integration, stress, compile-fail tests and doctests of the
# workspace's default members: everything but the benches crate), the benches crate's own unit
# tests, then the core's own tests and doctests with every feature combination that changes the
# API.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
cargo test -p multicast-buffer-benches
cargo test -p multicast-buffer-core --no-default-features
cargo test -p multicast-buffer-core --features alloc,heapless,no-cache-padding
