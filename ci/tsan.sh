#!/usr/bin/env bash
# ThreadSanitizer (nightly, -Zbuild-std) on the threaded tests. Judged by the exit code: TSan can
# print `test result: ok` and still exit 66.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain install nightly --profile minimal --component rust-src >/dev/null 2>&1 ||
  rustup component add --toolchain nightly rust-src
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread"
export TSAN_OPTIONS="halt_on_error=1 exitcode=66"
export CARGO_TARGET_DIR=target/tsan
set +e
cargo +nightly test -Zbuild-std --target "$host" -p multicast-buffer-tests \
  --test stress --test misuse --test drops --test lifecycle "$@"
status=$?
# The adapter's blocking and async waits (fences, parking, wakers) on threads.
cargo +nightly test -Zbuild-std --target "$host" -p multicast-buffer --all-features --test waiting "$@"
adapter=$?
[ $status -ne 0 ] || status=$adapter
set -e
echo "tsan: exit code $status"
exit $status
