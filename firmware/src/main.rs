//! Runs `multicast-buffer-core` on a Cortex-M core under QEMU, with the SysTick interrupt on one
//! side of a `static` buffer and thread mode on the other:
//!
//! - test A: thread mode publishes, the SysTick handler consumes (both consumer indices);
//! - test B: the SysTick handler publishes, thread mode consumes (both consumer indices);
//! - test C: the SysTick handler holds a `Publisher` whose notify function tells thread mode
//!   that data arrived; thread-mode `Subscriber`s take seats, leave, come back and are detached.
//!
//! Tests A and B check that every value reaches every consumer exactly once and in order, and
//! that backpressure ([`TryPublishError::Full`](multicast_buffer_core::TryPublishError::Full))
//! hands the refused value back, which is then retried. Test C is described at [`test_c`].
//!
//! The log is defmt over semihosting; the semihosting exit status is 0 on success and 1 on a
//! failed check, a panic, a fault or a timeout. Every wait is bounded (in SysTick periods), so a
//! bug fails the run instead of hanging it.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering::Relaxed};

use cortex_m::interrupt::{self, Mutex};
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::debug;
use defmt_semihosting as _;
use multicast_buffer_core::{InlineBuffer, NoFreeSeat, Publisher, Subscriber, TryConsumeError};

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

/// Test C: seats that subscribers take and leave at run time.
const SEATS: usize = 3;
type Seats = InlineBuffer<u32, CAP, SEATS>;
static BUS_C: Seats = InlineBuffer::with_seats();
/// Test C: the publisher, moved in by thread mode and used by the SysTick handler, which drops
/// it (closing the buffer) after the last value. Thread mode borrows it to set the lag limit.
static PUBLISHER: Mutex<RefCell<Option<Publisher<&'static Seats, fn()>>>> =
    Mutex::new(RefCell::new(None));
/// Test C: a consumer further behind than this is detached when the buffer is full.
const LAG_LIMIT: usize = CAP / 2;

// State shared between thread mode and the SysTick handler. Each variable has a single writer,
// so load + store replaces read-modify-write (which thumbv6m lacks). Relaxed: one core, and the
// buffer's own atomics order the values themselves.

const IDLE: u8 = 0;
const TEST_A: u8 = 1;
const TEST_B: u8 = 2;
const TEST_C: u8 = 3;
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
/// Test C: the next value to publish. Written by the handler.
static C_NEXT: AtomicU32 = AtomicU32::new(0);
/// Test C: the handler publishes while `C_NEXT` is below this. Written by thread mode.
static C_LIMIT: AtomicU32 = AtomicU32::new(0);
/// Test C: how often the buffer refused a value as `Full`. Written by the handler.
static C_REFUSALS: AtomicU32 = AtomicU32::new(0);
/// Test C: set by the publisher's notify function, cleared by thread mode.
static DATA_READY: AtomicBool = AtomicBool::new(false);
/// Test C: calls of the notify function. Written by the handler (in `notify`).
static NOTIFIES: AtomicU32 = AtomicU32::new(0);

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
    test_c(syst);
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

/// The SysTick handler publishes through a [`Publisher`] (lag limit and notify function set from
/// thread mode); thread-mode [`Subscriber`]s on vacant seats come and go:
///
/// - `steady` subscribes before the first value and stays: it must read every value in order;
/// - `transient` subscribes later (it must start no earlier than the write position at that
///   moment), leaves with a full buffer's worth unread, and subscribes again on the same seat;
///   while it is away the publisher must not see `Full` (its slots were given back);
/// - `stalled` subscribes and never reads until the lag limit detaches it: `Detached { missed }`
///   with the exact count, then it rejoins and reads to the end;
/// - with every seat taken, `subscribe` fails with `NoFreeSeat`.
///
/// Thread mode sleeps (`wfi`) until the notify function says that data arrived.
fn test_c(syst: &mut SYST) {
    defmt::info!("test C: SysTick holds a Publisher; subscribers join, leave and are detached");
    let mut steady = Reader::subscribe();
    let publisher = defmt::unwrap!(Publisher::with_notify(&BUS_C, notify as fn()));
    interrupt::free(|cs| PUBLISHER.borrow(cs).replace(Some(publisher)));
    let start = TICKS.load(Relaxed);
    start_ticks(syst, TEST_C);
    let cap = CAP as u32;
    publish_until(2 * cap, &mut [&mut steady]);

    // Two more subscribers: every seat is taken.
    let mut transient = Reader::subscribe();
    let mut stalled = Reader::subscribe();
    let stalled_from = stalled.next;
    defmt::assert_eq!(BUS_C.subscribe().err(), Some(NoFreeSeat { seats: SEATS }));
    publish_until(stalled_from + cap / 2, &mut [&mut steady, &mut transient]);

    // The stalled subscriber fills the buffer: the lag limit detaches it.
    let refusals = C_REFUSALS.load(Relaxed);
    set_lag_limit(Some(LAG_LIMIT));
    let limit = stalled_from + cap + cap / 2;
    publish_until(limit, &mut [&mut steady, &mut transient]);
    set_lag_limit(None);
    let missed = u64::from(limit - stalled_from);
    defmt::assert_eq!(stalled.sub.try_recv(), Err(TryConsumeError::Detached { missed }));
    defmt::assert_eq!(BUS_C.subscribed(), 2);
    defmt::assert!(stalled.sub.rejoin());
    stalled.next = limit;
    defmt::assert_eq!(stalled.sub.try_recv(), Err(TryConsumeError::Empty), "joined early");

    // The transient subscriber leaves holding every slot...
    let limit = limit + cap;
    publish_until(limit, &mut [&mut steady, &mut stalled]);
    let state = BUS_C.state();
    let seat = transient.sub.index();
    defmt::assert!(state.held == CAP && state.slowest_consumer == Some(seat), "{}", state);
    drop(transient);
    // ...which the publisher gets back: a buffer's worth fits while nobody reads.
    let limit = limit + cap;
    publish_until(limit, &mut []);
    defmt::assert_eq!(C_REFUSALS.load(Relaxed), refusals, "Full without a stalled subscriber");

    // It comes back on the same seat; everyone reads to the end, when the publisher goes.
    let mut transient = Reader::subscribe();
    defmt::assert_eq!(transient.sub.index(), seat);
    let rejoined_at = transient.next;
    publish_until(COUNT, &mut [&mut steady, &mut stalled, &mut transient]);
    stop_ticks(syst);
    for reader in [&mut steady, &mut stalled, &mut transient] {
        defmt::assert_eq!(reader.sub.try_recv(), Err(TryConsumeError::Closed));
    }
    let state = BUS_C.state();
    defmt::assert!(state.closed && state.held == 0, "{}", state);
    defmt::assert_eq!(NOTIFIES.load(Relaxed), COUNT, "one notification per value");
    defmt::info!(
        "test C passed: {=u32} values to the steady subscriber in order; stalled one detached after missing {=u64}; transient one rejoined seat {=usize} at {=u32}; {=u32} notifications; {=u32} ticks",
        COUNT,
        missed,
        seat,
        rejoined_at,
        NOTIFIES.load(Relaxed),
        TICKS.load(Relaxed).wrapping_sub(start)
    );
}

/// Test C: a subscriber and the next value it expects.
struct Reader {
    sub: Subscriber<&'static Seats>,
    next: u32,
    /// Whether it has read a value since it (re)joined: then `next` is exact, else a lower
    /// bound.
    started: bool,
}

impl Reader {
    /// Takes a vacant seat; it must start no earlier than the write position now.
    fn subscribe() -> Self {
        let next = BUS_C.write_position() as u32;
        let mut sub = defmt::unwrap!(BUS_C.subscribe());
        // Joins at the producer's next value: nothing yet.
        defmt::assert_eq!(sub.try_recv(), Err(TryConsumeError::Empty), "joined early");
        Self { sub, next, started: next == 0 }
    }

    /// Reads every value there is now, checking that each is the next.
    fn read(&mut self) {
        loop {
            match self.sub.try_recv() {
                Ok(value) => {
                    if !self.started {
                        defmt::assert!(value >= self.next, "joined before the write position");
                        self.next = value;
                        self.started = true;
                    }
                    defmt::assert_eq!(
                        value,
                        self.next,
                        "seat {=usize}: wrong value",
                        self.sub.index()
                    );
                    self.next += 1;
                }
                Err(TryConsumeError::Empty | TryConsumeError::Closed) => return,
                Err(err) => defmt::panic!("seat {=usize}: {}", self.sub.index(), err),
            }
        }
    }
}

/// Test C: lets the handler publish up to `limit` and waits until it has and each of `readers`
/// has read up to there, sleeping until the notify function signals new data.
fn publish_until(limit: u32, readers: &mut [&mut Reader]) {
    C_LIMIT.store(limit, Relaxed);
    let start = TICKS.load(Relaxed);
    loop {
        // Cleared before reading: a value published after this sets it again.
        DATA_READY.store(false, Relaxed);
        readers.iter_mut().for_each(|reader| reader.read());
        if C_NEXT.load(Relaxed) == limit && readers.iter().all(|reader| reader.next == limit) {
            return;
        }
        while !DATA_READY.load(Relaxed) {
            defmt::assert!(
                TICKS.load(Relaxed).wrapping_sub(start) <= TIMEOUT_TICKS,
                "timed out waiting for value {=u32}",
                limit
            );
            // Woken by the next SysTick at the latest.
            cortex_m::asm::wfi();
        }
    }
}

/// Test C: the publisher's notify function, called by it in the SysTick handler.
fn notify() {
    DATA_READY.store(true, Relaxed);
    NOTIFIES.store(NOTIFIES.load(Relaxed) + 1, Relaxed);
}

fn set_lag_limit(limit: Option<usize>) {
    interrupt::free(|cs| {
        defmt::unwrap!(PUBLISHER.borrow(cs).borrow_mut().as_mut()).set_lag_limit(limit);
    });
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
        TEST_C => interrupt::free(|cs| {
            let mut publisher = PUBLISHER.borrow(cs).borrow_mut();
            let Some(handle) = publisher.as_mut() else { return };
            for _ in 0..PUBLISH_BATCH {
                let value = C_NEXT.load(Relaxed);
                if value == C_LIMIT.load(Relaxed) {
                    break;
                }
                match handle.try_publish(value) {
                    Ok(()) => C_NEXT.store(value + 1, Relaxed),
                    Err(refused) => {
                        defmt::assert!(refused.is_full(), "publisher refused: {}", refused);
                        defmt::assert_eq!(refused.into_inner(), value);
                        C_REFUSALS.store(C_REFUSALS.load(Relaxed) + 1, Relaxed);
                        break;
                    }
                }
            }
            if C_NEXT.load(Relaxed) == COUNT {
                // The last value: dropping the publisher closes the buffer.
                *publisher = None;
            }
        }),
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
