#!/usr/bin/env bash
# The docs of the two published crates as docs.rs builds them: nightly, `--cfg docsrs` (which
# marks each feature-gated item with the feature it needs), the features listed under
# `[package.metadata.docs.rs]` in each crate's Cargo.toml, and warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
# Installed if missing (an installed nightly is left as it is).
rustup run nightly rustdoc --version >/dev/null 2>&1 ||
  rustup toolchain install nightly --profile minimal
# docs.rs gives `--cfg docsrs` to rustdoc; giving it to rustc too checks that the dependencies
# build that way as well.
export RUSTFLAGS="--cfg docsrs" RUSTDOCFLAGS="--cfg docsrs -D warnings"
export CARGO_TARGET_DIR=target/docs
for manifest in core/Cargo.toml std-adapter/Cargo.toml; do
  package=$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n 1)
  # The one-line `features = [...]` of [package.metadata.docs.rs], as a comma-separated list.
  features=$(sed -n '/^\[package\.metadata\.docs\.rs\]/,/^\[/ s/^features = \[\(.*\)\]/\1/p' "$manifest" |
    tr -d '" ')
  echo "== $package: features [$features]"
  cargo +nightly doc --no-deps -p "$package" ${features:+--features "$features"}
done

# Private items too, warnings as errors (a stale link in a private item's docs is caught as well
# as a public one), for the core with every feature and with none (links to the `alloc`-only
# items must not break without it), and the adapter. Their own target directory, so that the
# pages checked below are the public ones.
private() { CARGO_TARGET_DIR=target/docs-private cargo +nightly doc --no-deps --document-private-items "$@"; }
echo "== private items"
private -p multicast-buffer-core --features alloc,defmt,heapless
private -p multicast-buffer-core --no-default-features
private -p multicast-buffer

# Each feature-gated item says which feature it needs (spot checks, one per feature; the HTML
# tags are stripped, so that only rustdoc's words matter).
doc=target/docs/doc
marked() { # page, feature
  # (`grep -q` would stop reading early, and `sed` would then fail with SIGPIPE under pipefail.)
  sed 's/<[^>]*>//g' "$doc/$1" | grep "Available on crate feature $2 only" >/dev/null ||
    { echo "error: $1 does not say that it needs feature $2" >&2; exit 1; }
}
marked multicast_buffer_core/type.HeapBuffer.html alloc
marked multicast_buffer_core/struct.Heap.html alloc
marked multicast_buffer_core/struct.Subscriber.html heapless
marked multicast_buffer_core/struct.State.html defmt
marked multicast_buffer_core/enum.TryPublishError.html defmt
marked multicast_buffer_core/enum.TryConsumeError.html defmt
marked multicast_buffer_core/enum.ConfigError.html defmt
marked multicast_buffer_core/struct.NoFreeSeat.html defmt
marked multicast_buffer/struct.Recv.html async
marked multicast_buffer/channel/struct.Subscriber.html async
echo "docs: both crates document as docs.rs builds them, without warnings"
