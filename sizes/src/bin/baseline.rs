//! The floor of the size comparison: the same runtime (cortex-m-rt, panic-halt) and a loop that
//! `black_box`es a counter, without any buffer. `ours` and `embassy` minus this is what the
//! buffer itself costs.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use panic_halt as _;

#[entry]
fn main() -> ! {
    let mut next = 0u32;
    loop {
        black_box(next);
        next = next.wrapping_add(1);
    }
}
