//! Picks the board (and so its `memory.x`) from the target: each target runs on one QEMU board.

use std::{env, fs, path::PathBuf};

fn main() {
    let target = env::var("TARGET").unwrap();
    let board = match target.as_str() {
        "thumbv7m-none-eabi" => "lm3s6965evb",
        "thumbv6m-none-eabi" => "microbit",
        other => panic!("no QEMU board for target {other}: use thumbv6m or thumbv7m"),
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let memory = format!("memory/{board}.x");
    fs::copy(&memory, out.join("memory.x")).unwrap();
    // cortex-m-rt's `link.x` includes `memory.x` from the linker search path.
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-env=BOARD={board}");
    println!("cargo:rerun-if-changed={memory}");
    println!("cargo:rerun-if-changed=build.rs");
}
