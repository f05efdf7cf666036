#!/usr/bin/env bash
# The defect tests on a 32-bit target (i686 Linux, run natively by a 64-bit x86 kernel), where
# positions wrap at 2^28 and the wrap test of tests/tests/defects.rs exists
# (`#[cfg(target_pointer_width = "32")]`; on 64-bit targets it is not compiled).
#
# Cost: the first run installs the rustup target (about 30 MB) and, if missing, the
# `gcc-multilib` package via apt (about 100 MB, needs root), then builds the test crate and its
# dependencies for i686 in release (about 2 minutes on 2 cores). The wrap test moves 2^28 values
# through one buffer: a few seconds in release; the other defect tests run too (the lag-limit
# race test for a few seconds). Extra arguments go to the test binary (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
target=i686-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi
# The linker needs the 32-bit C runtime and libgcc.
if ! dpkg -s gcc-multilib >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update
  $sudo apt-get install -y gcc-multilib
fi
cargo test --release --target "$target" -p multicast-buffer-tests --test defects -- "$@"
