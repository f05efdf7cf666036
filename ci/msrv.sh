#!/usr/bin/env bash
# The minimum supported Rust version, declared once as `rust-version` in the root Cargo.toml,
# builds the two published crates' libraries: what a user compiles. Not their tests and examples,
# whose dev-dependencies set their own (tokio 1.54 needs Rust 1.85), nor the benches and tests
# crates.
set -euo pipefail
cd "$(dirname "$0")/.."
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
echo "msrv: $msrv"
rustup toolchain install "$msrv" --profile minimal >/dev/null
CARGO_TARGET_DIR=target/msrv cargo "+$msrv" check -p multicast-buffer-core --features alloc,defmt
CARGO_TARGET_DIR=target/msrv cargo "+$msrv" check -p multicast-buffer --lib
CARGO_TARGET_DIR=target/msrv cargo "+$msrv" check -p multicast-buffer --lib --no-default-features
