#!/usr/bin/env bash
# The two published crates, packaged as `cargo publish` would: `cargo package` checks the
# manifests and builds each crate from what its .crate file ships (the adapter against the
# packaged core, through cargo's local registry overlay). Then, per package, the files it ships
# with their sizes, a check that nothing else slipped in (CI scripts, firmware, benches, tests),
# and a build of the adapter's examples from its .crate file.
#   ci/package.sh                 # on a clean checkout, as CI runs it
#   ci/package.sh --allow-dirty   # with uncommitted changes
# Cargo warns that the adapter's `tests/waiting.rs` is not packaged: on purpose, it is the
# project's own test (run by ci/test.sh), not something a user needs.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

cargo package --workspace --exclude multicast-buffer-benches --exclude multicast-buffer-tests "$@"

# What a user gets: the library's sources, the adapter's examples, the README, the changelog,
# the licenses, and what cargo adds itself.
allowed='^(src/.*\.rs|examples/[^/]*\.rs|README\.md|CHANGELOG\.md|LICENSE-MIT|LICENSE-APACHE|Cargo\.toml|Cargo\.toml\.orig|Cargo\.lock|\.cargo_vcs_info\.json)$'
status=0
for package in multicast-buffer-core multicast-buffer; do
  crate="$target_dir/package/$package-$version.crate"
  listing=$(tar -tzvf "$crate")
  files=$(awk '{ print $NF }' <<<"$listing" | sed "s|^$package-$version/||")
  count=$(wc -l <<<"$files")
  bytes=$(awk '{ sum += $3 } END { print sum }' <<<"$listing")
  echo
  echo "== $package $version: $count files, $bytes bytes unpacked, $(wc -c <"$crate") bytes as $(basename "$crate")"
  awk -v prefix="$package-$version/" '{ name = $NF; sub("^" prefix, "", name); printf "  %8d  %s\n", $3, name }' <<<"$listing"
  for required in README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE src/lib.rs; do
    grep -qx "$required" <<<"$files" || { echo "error: $package does not ship $required" >&2; status=1; }
  done
  if extra=$(grep -Ev "$allowed" <<<"$files"); then
    echo "error: $package ships files a user does not need:" >&2
    echo "$extra" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] || exit "$status"

# The examples the adapter's README runs build from its .crate file, against the packaged core.
echo
echo "== the adapter's examples, built from the packages"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for package in multicast-buffer-core multicast-buffer; do
  tar -xzf "$target_dir/package/$package-$version.crate" -C "$work"
done
CARGO_TARGET_DIR="$PWD/$target_dir/package-examples" cargo build --examples \
  --manifest-path "$work/multicast-buffer-$version/Cargo.toml" \
  --config "patch.crates-io.multicast-buffer-core.path=\"$work/multicast-buffer-core-$version\""
echo "package: both crates package and build from what they ship"
