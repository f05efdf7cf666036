#!/usr/bin/env bash
# Miri (nightly): undefined behaviour, data races and leaks in the core's and the adapter's
# tests, under strict provenance; the threaded tests under several seeds; and a 32-bit leg.
#   ci/miri.sh                 # everything below
#   ci/miri.sh --bug NAME      # the threaded tests of an injected bug (ci/teeth.sh): must fail
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain install nightly --profile minimal --component miri,rust-src >/dev/null 2>&1 ||
  rustup component add --toolchain nightly miri rust-src
export CARGO_TARGET_DIR=target/miri
base="-Zmiri-strict-provenance"
miri() { cargo +nightly miri test "$@"; }

if [ "${1:-}" = "--bug" ]; then
  case "$2" in
    # Weak-memory outcomes: the misuse tests of another thread's claimed seat, several seeds.
    claim-without-release) flags="$base -Zmiri-many-seeds=0..4" tests=(--test misuse -- another_thread) ;;
    *) flags="$base" tests=(--test stress -- three_consumers_small_ring) ;;
  esac
  RUSTFLAGS="--cfg multicast_bug=\"$2\"" CARGO_TARGET_DIR="target/miri-bug-$2" MIRIFLAGS="$flags" \
    miri -p multicast-buffer-tests "${tests[@]}"
  exit
fi

echo "== miri: core unit tests and doctests, adapter, integration tests (strict provenance)"
MIRIFLAGS="$base" miri -p multicast-buffer-core --features alloc
# The crate page's examples (its README: a tokio server moving 10,000 values) are left to the
# native doctests: a tokio runtime under Miri takes tens of minutes; the API's own examples run.
MIRIFLAGS="$base" miri -p multicast-buffer -- --skip 'src/lib.rs - (line'
MIRIFLAGS="$base" miri -p multicast-buffer-tests --test seed_api --test drops --test stress --test misuse --test model --test model_handles --test contract --test membership --test lifecycle --test defects --test takeover

echo "== miri: threaded tests under several seeds"
MIRIFLAGS="$base -Zmiri-many-seeds=0..4" miri -p multicast-buffer-tests --test stress --test misuse --test lifecycle --test defects --test takeover

echo "== miri: 32-bit target (i686)"
MIRIFLAGS="$base" miri -p multicast-buffer-core --features alloc --lib --target i686-unknown-linux-gnu
