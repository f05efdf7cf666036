#!/usr/bin/env bash
# Builds the core for bare-metal targets, without and with an allocator. On targets without
# compare-and-swap the single-core backend is chosen here as a firmware would; the library itself
# never chooses one (a plain build for thumbv6m must fail, and this checks that too).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add thumbv6m-none-eabi thumbv7em-none-eabihf riscv32imc-unknown-none-elf >/dev/null

build() { # target, extra RUSTFLAGS
  local target=$1 flags=${2:-}
  for features in "" "no-cache-padding" "alloc,defmt,heapless"; do
    echo "== $target features=[$features] ${flags:+RUSTFLAGS=$flags}"
    RUSTFLAGS="$flags" CARGO_TARGET_DIR="target/no-std${flags:+-single-core}" \
      cargo build -q -p multicast-buffer-core --release --target "$target" \
      --no-default-features ${features:+--features "$features"}
  done
}

build thumbv7em-none-eabihf
build thumbv6m-none-eabi "--cfg portable_atomic_unsafe_assume_single_core"
build riscv32imc-unknown-none-elf "--cfg portable_atomic_unsafe_assume_single_core"

echo "== thumbv6m-none-eabi without a backend must fail (require-cas)"
if CARGO_TARGET_DIR=target/no-std cargo build -q -p multicast-buffer-core \
  --target thumbv6m-none-eabi 2>/dev/null; then
  echo "error: built without an atomic CAS backend; require-cas is not in force" >&2
  exit 1
fi
echo "no-std builds ok"
