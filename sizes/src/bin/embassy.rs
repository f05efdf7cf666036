//! The job of the size comparison, done with embassy-sync: a `static`
//! `PubSubChannel<CriticalSectionRawMutex, u32, 64, 4, 1>`, one publisher and four subscribers;
//! forever, publish (`try_publish`) until the channel refuses, then let every subscriber drain it
//! (`try_next_message_pure`, non-async). `black_box` keeps every value alive.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pubsub::PubSubChannel;
use panic_halt as _;

static BUS: PubSubChannel<CriticalSectionRawMutex, u32, 64, 4, 1> = PubSubChannel::new();

#[entry]
fn main() -> ! {
    let Ok(publisher) = BUS.publisher() else { halt() };
    let (Ok(a), Ok(b), Ok(c), Ok(d)) =
        (BUS.subscriber(), BUS.subscriber(), BUS.subscriber(), BUS.subscriber())
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
            while let Some(value) = subscriber.try_next_message_pure() {
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
