#!/usr/bin/env bash
# The README's test command (unit, integration, stress, compile-fail tests and doctests), then
# the core's own tests and doctests with every feature combination that changes the API.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
cargo test -p multicast-buffer-core --no-default-features
cargo test -p multicast-buffer-core --features alloc,heapless,no-cache-padding
