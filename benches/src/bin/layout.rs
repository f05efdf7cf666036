//! `size_of` of our buffer types on the host, for `ci/sizes.sh`: one line per measurement,
//! `<crate> <payload> <slots> <consumers> <bytes>` or `<handle> <payload> <bytes>`, the same
//! format as the `layout` binary of `sizes/` writes for thumbv7em-none-eabihf. The script derives
//! the bytes per slot (from 64 and 128 slots), per consumer (from 1 and 2 consumers) and the fixed
//! part.
//!
//! ```text
//! cargo run --release -p multicast-buffer-benches --bin layout
//! ```

use std::mem::size_of;
use std::sync::Arc;

use multicast_buffer_core::{HeapBuffer, InlineBuffer, Publisher, Subscriber};

type Record = Arc<[u8; 64]>;

fn line(payload: &str, slots: usize, consumers: usize, bytes: usize) {
    println!("ours {payload} {slots} {consumers} {bytes}");
}

fn main() {
    println!("target {}-{} 0", std::env::consts::ARCH, std::env::consts::OS);
    line("u32", 64, 1, size_of::<InlineBuffer<u32, 64, 1>>());
    line("u32", 128, 1, size_of::<InlineBuffer<u32, 128, 1>>());
    line("u32", 64, 2, size_of::<InlineBuffer<u32, 64, 2>>());
    line("u32", 64, 4, size_of::<InlineBuffer<u32, 64, 4>>());
    line("u64", 64, 1, size_of::<InlineBuffer<u64, 64, 1>>());
    line("u64", 128, 1, size_of::<InlineBuffer<u64, 128, 1>>());
    line("u64", 64, 2, size_of::<InlineBuffer<u64, 64, 2>>());
    line("u64", 64, 4, size_of::<InlineBuffer<u64, 64, 4>>());
    line("arc", 64, 1, size_of::<InlineBuffer<Record, 64, 1>>());
    line("arc", 128, 1, size_of::<InlineBuffer<Record, 128, 1>>());
    line("arc", 64, 2, size_of::<InlineBuffer<Record, 64, 2>>());
    line("arc", 64, 4, size_of::<InlineBuffer<Record, 64, 4>>());
    println!("publisher u32 {}", size_of::<Publisher<&InlineBuffer<u32, 64, 4>>>());
    println!("subscriber u32 {}", size_of::<Subscriber<&InlineBuffer<u32, 64, 4>>>());
    println!("publisher-arc u32 {}", size_of::<Publisher<Arc<HeapBuffer<u32>>>>());
    println!("subscriber-arc u32 {}", size_of::<Subscriber<Arc<HeapBuffer<u32>>>>());
    // The heap buffer's own struct (its slots and cursors are in two boxed slices beside it).
    println!("heapbuffer-struct u64 {}", size_of::<HeapBuffer<u64>>());
}
