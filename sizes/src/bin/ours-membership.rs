//! The run-time-membership job of the size comparison (what `firmware/` test C does), done with
//! `multicast-buffer-core`: a `static` `InlineBuffer<u32, 64, 4>` from `with_seats()` (every
//! seat vacant), one `Publisher` with a lag limit; forever, every vacant seat is taken
//! (`subscribe`), the publisher publishes until the buffer refuses, every subscriber drains it
//! (rejoining if the lag limit detached it), and one subscriber leaves (is dropped). The drain
//! loop is the fixed-consumer job's. `black_box` keeps every value (and the lag limit and the
//! leaving seat) opaque, so nothing is optimised away.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use multicast_buffer_core::{InlineBuffer, Subscriber, TryConsumeError};
use panic_halt as _;

const SEATS: usize = 4;
static BUS: InlineBuffer<u32, 64, SEATS> = InlineBuffer::with_seats();

#[entry]
fn main() -> ! {
    let Some(mut publisher) = BUS.publisher() else { halt() };
    publisher.set_lag_limit(black_box(Some(48)));
    let mut subscribers: [Option<Subscriber<&'static InlineBuffer<u32, 64, SEATS>>>; SEATS] =
        [None, None, None, None];
    let mut next = 0u32;
    loop {
        for seat in &mut subscribers {
            if seat.is_none() {
                *seat = BUS.subscribe().ok();
            }
        }
        while publisher.try_publish(black_box(next)).is_ok() {
            next = next.wrapping_add(1);
        }
        for subscriber in subscribers.iter_mut().flatten() {
            loop {
                match subscriber.try_recv() {
                    Ok(value) => {
                        black_box(value);
                    }
                    Err(TryConsumeError::Detached { .. }) => {
                        subscriber.rejoin();
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        // One subscriber leaves; its seat is taken again at the top of the loop.
        subscribers[black_box(next as usize) % SEATS] = None;
    }
}

fn halt() -> ! {
    loop {
        cortex_m::asm::nop();
    }
}
