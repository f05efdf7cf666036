#!/usr/bin/env bash
# Formatting and clippy (warnings are errors here, not in the source).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p multicast-buffer-core --all-targets --features alloc,defmt -- -D warnings
cargo clippy -p multicast-buffer-core --lib --no-default-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
