//! Runs `multicast-buffer-core` on a Cortex-M core under QEMU, with the SysTick interrupt on one
//! side of a `static` buffer and thread mode on the other:
//!
//! - test A: thread mode publishes, the SysTick handler consumes (both consumer indices);
//! - test B: the SysTick handler publishes, thread mode consumes (both consumer indices).
//!
//! Each checks that every value reaches every consumer exactly once and in order, and that
//! backpressure ([`TryPublishError::Full`](multicast_buffer_core::TryPublishError::Full)) hands
//! the refused value back, which is then retried. The log is defmt over semihosting; the
//! semihosting exit status is 0 on success and 1 on a failed check, a panic, a fault or a
//! timeout. Every wait is bounded, so a bug fails the run instead of hanging it.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering::Relaxed};

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::debug;
use defmt_semihosting as _;
use multicast_buffer_core::{InlineBuffer, TryConsumeError};

const CAP: usize = 16;
const CONSUMERS: usize = 2;
type Bus = InlineBuffer<u32, CAP, CONSUMERS>;

/// Values published in each test.
const COUNT: u32 = 1000;
/// SysTick period, in core clock cycles.
const RELOAD: u32 = 4_000;
/// Values each consumer reads per call at most: different speeds give different lags.
const READ_BATCH: [u32; CONSUMERS] = [3, 2];
/// Values the SysTick handler publishes per tick at most (test B).
const PUBLISH_BATCH: u32 = 4;
/// A wait fails after this many SysTick periods...
const TIMEOUT_TICKS: u32 = 5_000;
/// ...or after this many polls, should SysTick not run at all.
const SPIN_LIMIT: u32 = 20_000_000;

static BUS_A: Bus = InlineBuffer::new();
static BUS_B: Bus = InlineBuffer::new();

// State shared between thread mode and the SysTick handler. Each variable has a single writer,
// so load + store replaces read-modify-write (which thumbv6m lacks). Relaxed: one core, and the
// buffer's own atomics order the values themselves.

const IDLE: u8 = 0;
const TEST_A: u8 = 1;
const TEST_B: u8 = 2;
/// What the SysTick handler does. Written by thread mode.
static MODE: AtomicU8 = AtomicU8::new(IDLE);
/// SysTick periods so far. Written by the handler.
static TICKS: AtomicU32 = AtomicU32::new(0);
/// Test A: the next value each consumer expects. Written by the handler.
static A_NEXT: [AtomicU32; CONSUMERS] = [const { AtomicU32::new(0) }; CONSUMERS];
/// Test B: the next value to publish. Written by the handler.
static B_NEXT: AtomicU32 = AtomicU32::new(0);
/// Test B: how often the buffer refused a value as `Full`. Written by the handler.
static B_REFUSALS: AtomicU32 = AtomicU32::new(0);

#[entry]
fn main() -> ! {
    let mut core = defmt::unwrap!(cortex_m::Peripherals::take());
    defmt::info!(
        "{=str}: {=usize} slots, {=usize} consumers, {=u32} values per test",
        env!("BOARD"),
        CAP,
        CONSUMERS,
        COUNT
    );
    let syst = &mut core.SYST;
    // The core clock: QEMU's lm3s6965evb gives SysTick no external reference clock.
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD - 1);
    test_a(syst);
    test_b(syst);
    defmt::info!("all tests passed");
    exit(true)
}

/// Thread mode publishes, the SysTick handler consumes.
fn test_a(syst: &mut SYST) {
    defmt::info!("test A: thread mode publishes, SysTick consumes");
    // With no consumer running, fill the buffer: the next value must come back as `Full`.
    for value in 0..CAP as u32 {
        defmt::unwrap!(BUS_A.try_publish(value));
    }
    let refused = defmt::unwrap!(BUS_A.try_publish(CAP as u32).err(), "a full buffer took a value");
    defmt::assert!(refused.is_full(), "expected Full, got {}", refused);
    defmt::assert_eq!(refused.into_inner(), CAP as u32, "Full handed back a different value");
    let mut refusals = 1;

    let start = TICKS.load(Relaxed);
    start_ticks(syst, TEST_A);
    for value in CAP as u32..COUNT {
        let mut pending = value;
        wait("a free slot", || match BUS_A.try_publish(pending) {
            Ok(()) => true,
            Err(refused) => {
                defmt::assert!(refused.is_full(), "single producer refused: {}", refused);
                // Retry with the value the error handed back.
                pending = refused.into_inner();
                defmt::assert_eq!(pending, value, "Full handed back a different value");
                refusals += 1;
                false
            }
        });
    }
    wait("both consumers to read every value", || {
        A_NEXT.iter().all(|next| next.load(Relaxed) == COUNT)
    });
    stop_ticks(syst);
    check_drained(&BUS_A);
    defmt::info!(
        "test A passed: {=u32} values to each consumer in order; refused as Full and retried {=u32} times; {=u32} ticks",
        COUNT,
        refusals,
        TICKS.load(Relaxed).wrapping_sub(start)
    );
}

/// The SysTick handler publishes, thread mode consumes.
fn test_b(syst: &mut SYST) {
    defmt::info!("test B: SysTick publishes, thread mode consumes");
    let start = TICKS.load(Relaxed);
    start_ticks(syst, TEST_B);
    // Read nothing until the handler has filled the buffer and been refused.
    wait("the handler to hit backpressure", || B_REFUSALS.load(Relaxed) > 0);
    defmt::assert_eq!(BUS_B.state().held, CAP, "refused before the buffer was full");
    let mut next = [0; CONSUMERS];
    wait("every value", || {
        for (index, next) in next.iter_mut().enumerate() {
            consume(&BUS_B, index, next, READ_BATCH[index]);
        }
        next == [COUNT; CONSUMERS]
    });
    stop_ticks(syst);
    check_drained(&BUS_B);
    defmt::info!(
        "test B passed: {=u32} values to each consumer in order; refused as Full and retried {=u32} times; {=u32} ticks",
        COUNT,
        B_REFUSALS.load(Relaxed),
        TICKS.load(Relaxed).wrapping_sub(start)
    );
}

#[exception]
fn SysTick() {
    TICKS.store(TICKS.load(Relaxed).wrapping_add(1), Relaxed);
    match MODE.load(Relaxed) {
        TEST_A => {
            for (index, next) in A_NEXT.iter().enumerate() {
                let mut expected = next.load(Relaxed);
                consume(&BUS_A, index, &mut expected, READ_BATCH[index]);
                next.store(expected, Relaxed);
            }
        }
        TEST_B => {
            for _ in 0..PUBLISH_BATCH {
                let value = B_NEXT.load(Relaxed);
                if value == COUNT {
                    return;
                }
                match BUS_B.try_publish(value) {
                    Ok(()) => B_NEXT.store(value + 1, Relaxed),
                    Err(refused) => {
                        defmt::assert!(refused.is_full(), "single producer refused: {}", refused);
                        // `B_NEXT` still names it: the next tick retries it.
                        defmt::assert_eq!(
                            refused.into_inner(),
                            value,
                            "Full handed back a different value"
                        );
                        B_REFUSALS.store(B_REFUSALS.load(Relaxed) + 1, Relaxed);
                        return;
                    }
                }
            }
        }
        _ => {}
    }
}

/// Reads up to `max` values as consumer `index`, checking that each one is `*next`: every
/// value once, in order.
fn consume(bus: &Bus, index: usize, next: &mut u32, max: u32) {
    for _ in 0..max {
        match bus.try_consume(index) {
            Ok(value) => {
                defmt::assert_eq!(value, *next, "consumer {=usize}: wrong value", index);
                *next += 1;
            }
            Err(TryConsumeError::Empty) => return,
            Err(err) => defmt::panic!("consumer {=usize}: {}", index, err),
        }
    }
}

/// After a test: every value published once, read by every consumer, nothing left or held.
fn check_drained(bus: &Bus) {
    for index in 0..CONSUMERS {
        defmt::assert_eq!(bus.try_consume(index), Err(TryConsumeError::Empty));
    }
    let state = bus.state();
    defmt::assert!(state.write_position == u64::from(COUNT) && state.held == 0, "{}", state);
}

fn start_ticks(syst: &mut SYST, mode: u8) {
    MODE.store(mode, Relaxed);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

fn stop_ticks(syst: &mut SYST) {
    // First: a tick that is already pending then does nothing.
    MODE.store(IDLE, Relaxed);
    syst.disable_interrupt();
    syst.disable_counter();
}

/// Polls `done` until it returns `true`; fails the run after `TIMEOUT_TICKS` SysTick periods,
/// or `SPIN_LIMIT` polls should SysTick not run.
fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let start = TICKS.load(Relaxed);
    for _ in 0..SPIN_LIMIT {
        if done() {
            return;
        }
        if TICKS.load(Relaxed).wrapping_sub(start) > TIMEOUT_TICKS {
            break;
        }
    }
    defmt::panic!("timed out waiting for {=str}", what);
}

/// Ends the QEMU run with exit status 0 (`success`) or 1.
fn exit(success: bool) -> ! {
    debug::exit(if success { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    // Only reached without a semihosting host.
    loop {
        cortex_m::asm::wfi();
    }
}

/// Set by the first panic, so that a panic while logging it does not recurse.
static PANICKED: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    if !PANICKED.load(Relaxed) {
        PANICKED.store(true, Relaxed);
        defmt::error!("{}", defmt::Display2Format(info));
    }
    exit(false)
}

/// `defmt::panic!` and the failed `defmt::assert*!`s end here, after logging their message.
#[defmt::panic_handler]
fn defmt_panic() -> ! {
    exit(false)
}

// `unsafe fn`: the signature cortex-m-rt requires of these handlers; neither body does anything
// unsafe.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#010x}", frame.pc());
    exit(false)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    defmt::error!("unexpected interrupt {=i16}", irqn);
    exit(false)
}
