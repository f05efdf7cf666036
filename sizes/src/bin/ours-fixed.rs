//! The fixed-consumer job of the size comparison, done with `multicast-buffer-core`: a `static`
//! `InlineBuffer<u32, 64, 4>` from `new()` (every seat subscribed from position 0), one
//! `Publisher` and four `Subscriber`s on seats 0 to 3 (`subscriber(i)`), no membership changes
//! at run time; forever, publish until the buffer refuses, then let every subscriber drain it.
//! `black_box` keeps every value alive, so nothing is optimised away.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use multicast_buffer_core::InlineBuffer;
use panic_halt as _;

static BUS: InlineBuffer<u32, 64, 4> = InlineBuffer::new();

#[entry]
fn main() -> ! {
    let Some(mut publisher) = BUS.publisher() else { halt() };
    let (Some(a), Some(b), Some(c), Some(d)) =
        (BUS.subscriber(0), BUS.subscriber(1), BUS.subscriber(2), BUS.subscriber(3))
    else {
        halt()
    };
    let mut subscribers = [a, b, c, d];
    let mut next = 0u32;
    loop {
        while publisher.try_publish(black_box(next)).is_ok() {
            next = next.wrapping_add(1);
        }
        for subscriber in &mut subscribers {
            while let Ok(value) = subscriber.try_recv() {
                black_box(value);
            }
        }
    }
}

fn halt() -> ! {
    loop {
        cortex_m::asm::nop();
    }
}
