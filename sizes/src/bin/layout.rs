//! `size_of` of the buffer types on this target, for `ci/sizes.sh`: written at compile time as
//! text lines (`<crate> <payload> <slots> <consumers> <bytes>`, and `<handle> <payload> <bytes>`)
//! into a `.layout` section, which the script copies out of the ELF. Nothing needs to run.
//!
//! The `Arc<[u8; 64]>` payload is measured as `NonNull<[u8; 64]>`: this firmware has no
//! allocator, and `Arc<T>` (for a sized `T`) is one non-null pointer, the same size and niche.
#![no_std]
#![no_main]

use core::mem::size_of;
use core::ptr::NonNull;

use cortex_m_rt::entry;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pubsub::{self, PubSubChannel};
use multicast_buffer_core::{InlineBuffer, Publisher, Subscriber};
use panic_halt as _;

/// A fixed-size text built by `const fn`s.
struct Text {
    bytes: [u8; 2048],
    len: usize,
}

impl Text {
    const fn new() -> Self {
        Self { bytes: [0; 2048], len: 0 }
    }

    const fn str(mut self, text: &str) -> Self {
        let text = text.as_bytes();
        let mut i = 0;
        while i < text.len() {
            self.bytes[self.len] = text[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    const fn num(mut self, mut n: usize) -> Self {
        let mut digits = [0u8; 20];
        let mut count = 0;
        loop {
            digits[count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while count > 0 {
            count -= 1;
            self.bytes[self.len] = digits[count];
            self.len += 1;
        }
        self
    }

    /// One line: `key bytes`.
    const fn line(self, key: &str, bytes: usize) -> Self {
        self.str(key).str(" ").num(bytes).str("\n")
    }
}

type Ptr = NonNull<[u8; 64]>;
type Embassy<const CAP: usize, const SUBS: usize> =
    PubSubChannel<CriticalSectionRawMutex, u32, CAP, SUBS, 1>;

const TEXT: Text = Text::new()
    .line("target thumbv7em-none-eabihf", 0)
    .line("ours u32 64 1", size_of::<InlineBuffer<u32, 64, 1>>())
    .line("ours u32 128 1", size_of::<InlineBuffer<u32, 128, 1>>())
    .line("ours u32 64 2", size_of::<InlineBuffer<u32, 64, 2>>())
    .line("ours u32 64 4", size_of::<InlineBuffer<u32, 64, 4>>())
    .line("ours u64 64 1", size_of::<InlineBuffer<u64, 64, 1>>())
    .line("ours u64 128 1", size_of::<InlineBuffer<u64, 128, 1>>())
    .line("ours u64 64 2", size_of::<InlineBuffer<u64, 64, 2>>())
    .line("ours u64 64 4", size_of::<InlineBuffer<u64, 64, 4>>())
    .line("ours arc 64 1", size_of::<InlineBuffer<Ptr, 64, 1>>())
    .line("ours arc 128 1", size_of::<InlineBuffer<Ptr, 128, 1>>())
    .line("ours arc 64 2", size_of::<InlineBuffer<Ptr, 64, 2>>())
    .line("ours arc 64 4", size_of::<InlineBuffer<Ptr, 64, 4>>())
    .line("publisher u32", size_of::<Publisher<&InlineBuffer<u32, 64, 4>>>())
    .line("subscriber u32", size_of::<Subscriber<&InlineBuffer<u32, 64, 4>>>())
    .line("embassy u32 64 1", size_of::<Embassy<64, 1>>())
    .line("embassy u32 128 1", size_of::<Embassy<128, 1>>())
    .line("embassy u32 64 2", size_of::<Embassy<64, 2>>())
    .line("embassy u32 64 4", size_of::<Embassy<64, 4>>())
    .line(
        "embassy-publisher u32",
        size_of::<pubsub::Publisher<'static, CriticalSectionRawMutex, u32, 64, 4, 1>>(),
    )
    .line(
        "embassy-subscriber u32",
        size_of::<pubsub::Subscriber<'static, CriticalSectionRawMutex, u32, 64, 4, 1>>(),
    );

/// The text, in a section of its own for `llvm-objcopy --only-section=.layout`.
#[link_section = ".layout"]
static LAYOUT: [u8; 2048] = TEXT.bytes;

#[entry]
fn main() -> ! {
    // Referenced, so that the linker keeps the section.
    core::hint::black_box(&LAYOUT);
    loop {
        cortex_m::asm::nop();
    }
}
