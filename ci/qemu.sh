#!/usr/bin/env bash
# Runs the firmware (firmware/) under QEMU on three Cortex-M boards and decodes its defmt log:
# the core crate with the SysTick interrupt on one side of a buffer and thread mode on the other.
# Installs qemu-system-arm (apt) and defmt-print (cargo) if they are missing. Fails, naming the
# boards, if any board fails, panics, faults or times out.
set -euo pipefail
cd "$(dirname "$0")/../firmware"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if ! command -v qemu-system-arm >/dev/null; then
  echo "== installing qemu-system-arm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >/dev/null
fi
if ! command -v defmt-print >/dev/null; then
  echo "== installing defmt-print"
  cargo install defmt-print --locked
fi

# board, target, QEMU machine options
boards=(
  "lm3s6965evb thumbv7m-none-eabi -cpu cortex-m3 -machine lm3s6965evb"
  "mps2-an386 thumbv7em-none-eabihf -cpu cortex-m4 -machine mps2-an386"
  "microbit thumbv6m-none-eabi -machine microbit"
)

targets=()
for entry in "${boards[@]}"; do
  read -r _ target _ <<<"$entry"
  targets+=("$target")
done
rustup target add "${targets[@]}" >/dev/null 2>&1
echo "== building for ${targets[*]}"
cargo build --release --target-dir target "${targets[@]/#/--target=}"

failed=()
for entry in "${boards[@]}"; do
  read -r board target machine <<<"$entry"
  elf="target/$target/release/multicast-buffer-firmware"
  echo "== $board ($target)"
  log=$(mktemp)
  start=$EPOCHREALTIME
  set +e
  # shellcheck disable=SC2086 # $machine holds several options
  timeout 60 qemu-system-arm $machine -nographic -semihosting-config enable=on,target=native \
    -kernel "$elf" </dev/null | defmt-print -e "$elf" | tee "$log"
  status=("${PIPESTATUS[@]}")
  set -e
  seconds=$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $start }")
  if [[ ${status[0]} -eq 0 && ${status[1]} -eq 0 ]] && grep -q "all tests passed" "$log"; then
    echo "== $board: passed in ${seconds}s"
  else
    echo "== $board: FAILED in ${seconds}s (qemu exit ${status[0]}, defmt-print exit ${status[1]})"
    failed+=("$board")
  fi
  rm -f "$log"
done

if ((${#failed[@]})); then
  echo "qemu: failed on ${failed[*]}" >&2
  exit 1
fi
echo "qemu: all ${#boards[@]} boards passed"
