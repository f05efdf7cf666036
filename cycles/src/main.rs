//! Counts the instructions that a publish and a consume take on a Cortex-M core, under QEMU with
//! `-icount` (virtual time advances by a fixed step per instruction executed, so a timer that
//! runs on virtual time counts instructions). `ci/cycles.sh` runs it and turns the raw timer
//! counts it prints into instructions per value.
//!
//! The timer is SysTick on the core clock, read (counting down, 24 bits) before and after each
//! timed segment. Nothing else runs: no interrupt is enabled, and the segments are a few
//! thousand instructions long against a counter that wraps only after hundreds of thousands.
//!
//! What is printed, one line each (all counts in SysTick ticks, summed over every round):
//!
//! - `calibrate nops N T`: a straight run of `N` `nop`s (inline assembly, N = 1000, 2000, 4000);
//! - `calibrate loop N T`: a `subs`/`bne` loop of `N` iterations (2N instructions);
//! - `measure NAME CONSUMERS VALUES ROUNDS PUBLISH CONSUME`: `ROUNDS` rounds of one contender,
//!   each publishing `VALUES` values (one timed segment, `PUBLISH` is its sum) and then letting
//!   every consumer take every value (one timed segment, `CONSUME`), for VALUES = 0, K and 2K
//!   (0: what a round costs without values, its timer reads and each consumer's one empty call);
//! - `done`, then a semihosting exit with status 0; a failed check prints `FAILED ...` and
//!   exits with status 1 (a panic and a HardFault too).
//!
//! Every consumer checks that it receives every value, in order, before a count is trusted.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use core::arch::asm;
use core::hint::black_box;
use core::sync::atomic::{compiler_fence, Ordering::SeqCst};

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pubsub::{self, PubSubChannel};
use heapless::spsc;
use multicast_buffer_core::{InlineBuffer, Publisher, Subscriber};

/// Values per round in the second measurement; the third publishes `2 * K` (the first none).
/// The difference between K and 2K removes every cost paid once per round (the timer reads, a
/// drain's last, empty call, loop set-up), leaving the cost per value; 0 against K does the same
/// for the first K values, which shows a cost that grows with the values waiting. At most 31:
/// heapless's `Queue<_, 64>` holds 63.
const K: u32 = 16;
/// Rounds per measurement: `ROUNDS * K` values go around the 64-slot rings several times.
const ROUNDS: u32 = 64;
/// Rounds run, and not counted, before each contender's measurements: its slow first steps
/// (preparing slots, a subscriber's first look) are then behind it.
const WARM_UP: u32 = 8;
/// Slots in every buffer.
const CAP: usize = 64;

static OURS_1: InlineBuffer<u32, CAP, 1> = InlineBuffer::new();
static OURS_4: InlineBuffer<u32, CAP, 4> = InlineBuffer::new();
static OURS_BATCH_1: InlineBuffer<u32, CAP, 1> = InlineBuffer::new();
static OURS_BATCH_4: InlineBuffer<u32, CAP, 4> = InlineBuffer::new();
type Embassy = PubSubChannel<CriticalSectionRawMutex, u32, CAP, 4, 1>;
static EMBASSY_1: Embassy = PubSubChannel::new();
static EMBASSY_4: Embassy = PubSubChannel::new();

#[entry]
fn main() -> ! {
    let mut core = cortex_m::Peripherals::take().unwrap_or_else(|| fail("peripherals taken"));
    let syst = &mut core.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(0x00FF_FFFF);
    syst.clear_current();
    syst.enable_counter();
    hprintln!("board {}", env!("BOARD"));

    calibrate();

    // Ours: fixed consumers (a buffer from `new()`, seats taken by index), one value per call.
    let mut ours = Ours::new(&OURS_1);
    run("ours-1", &mut ours);
    let mut ours = Ours::new(&OURS_4);
    run("ours-4", &mut ours);
    // Ours: the batch calls, a round's values in one call per handle.
    let mut ours = OursBatch(Ours::new(&OURS_BATCH_1));
    run("ours-batch-1", &mut ours);
    let mut ours = OursBatch(Ours::new(&OURS_BATCH_4));
    run("ours-batch-4", &mut ours);
    // embassy-sync's PubSubChannel (4 subscriber places), with 1 and with 4 subscribers.
    let mut embassy = EmbassyJob::<1>::new(&EMBASSY_1);
    run("embassy-1", &mut embassy);
    let mut embassy = EmbassyJob::<4>::new(&EMBASSY_4);
    run("embassy-4", &mut embassy);
    // heapless's spsc::Queue: one consumer, the floor.
    let mut queue: spsc::Queue<u32, CAP> = spsc::Queue::new();
    let (producer, consumer) = queue.split();
    let mut heapless = Heapless { producer, consumer, next: 0, expected: 0 };
    run("heapless-1", &mut heapless);

    hprintln!("done");
    exit(true)
}

/// The SysTick counter now (counting down). The fences keep the compiler from moving the timed
/// code's memory accesses across the read.
#[inline(always)]
fn now() -> u32 {
    compiler_fence(SeqCst);
    let value = SYST::get_current();
    compiler_fence(SeqCst);
    value
}

/// Ticks from `start` to `end` of the 24-bit down-counter (at most one wrap in between).
#[inline(always)]
fn ticks(start: u32, end: u32) -> u32 {
    start.wrapping_sub(end) & 0x00FF_FFFF
}

/// Straight runs of `nop`s and a counted loop: known instruction counts, for the script to find
/// the ticks per instruction and to check that they are the same at every length.
fn calibrate() {
    for (n, nops) in [(1000, nops_1000 as fn()), (2000, nops_2000), (4000, nops_4000)] {
        let start = now();
        nops();
        let end = now();
        hprintln!("calibrate nops {} {}", n, ticks(start, end));
    }
    for iterations in [1000u32, 2000, 4000] {
        let n = black_box(iterations);
        let start = now();
        // SAFETY: counts a scratch register down to zero; touches nothing else.
        unsafe {
            asm!(
                "2:",
                "subs {n}, #1",
                "bne 2b",
                n = inout(reg) n => _,
                options(nomem, nostack),
            )
        };
        let end = now();
        hprintln!("calibrate loop {} {}", iterations, ticks(start, end));
    }
}

/// Straight runs of `nop`s, each in a function of its own (a call, the `nop`s, a return): a
/// literal pool cannot be placed across them, and the call costs the same for every length.
macro_rules! nops {
    ($name:ident, $n:literal) => {
        #[inline(never)]
        fn $name() {
            // SAFETY: `nop`s only.
            unsafe {
                asm!(
                    concat!(".rept ", $n, "\n nop\n.endr"),
                    options(nomem, nostack, preserves_flags)
                )
            };
        }
    };
}
nops!(nops_1000, 1000);
nops!(nops_2000, 2000);
nops!(nops_4000, 4000);

/// One side of the comparison: a producer and its consumers over a 64-slot ring of `u32`.
trait Job {
    /// Consumers, each of which receives every value.
    const CONSUMERS: u32;
    /// Publishes `values` values (consecutive numbers); false if one was refused.
    fn publish(&mut self, values: u32) -> bool;
    /// Lets every consumer take every value available; returns how many it took in all, or
    /// `None` if a consumer saw a value out of order.
    fn drain(&mut self) -> Option<u32>;
}

/// Warms `job` up, then measures it with 0, K and 2K values per round, and prints each.
fn run<J: Job>(name: &str, job: &mut J) {
    measure(job, K, WARM_UP);
    for values in [0, K, 2 * K] {
        let (publish, consume) = measure(job, values, ROUNDS);
        hprintln!(
            "measure {} {} {} {} {} {}",
            name,
            J::CONSUMERS,
            values,
            ROUNDS,
            publish,
            consume
        );
    }
}

/// `rounds` rounds of publishing `values` values and draining them: the ticks spent publishing
/// and the ticks spent consuming, each summed over the rounds.
#[inline(never)]
fn measure<J: Job>(job: &mut J, values: u32, rounds: u32) -> (u32, u32) {
    // Through `black_box`: one copy of the code serves both sizes.
    let values = black_box(values);
    let mut publish = 0;
    let mut consume = 0;
    for _ in 0..rounds {
        let t0 = now();
        let published = job.publish(values);
        let t1 = now();
        let taken = job.drain();
        let t2 = now();
        if !published {
            fail("a publish was refused");
        }
        match taken {
            Some(taken) if taken == values * J::CONSUMERS => {}
            Some(_) => fail("a consumer missed values"),
            None => fail("a consumer saw a value out of order"),
        }
        publish += ticks(t0, t1);
        consume += ticks(t1, t2);
    }
    (publish, consume)
}

/// Ours with fixed consumers: a `Publisher` and `N` `Subscriber`s (seats by index) on a buffer
/// from `new()`; `try_publish` and `try_recv`.
struct Ours<const N: usize> {
    publisher: Publisher<&'static InlineBuffer<u32, CAP, N>>,
    subscribers: [Subscriber<&'static InlineBuffer<u32, CAP, N>>; N],
    next: u32,
    expected: [u32; N],
}

impl<const N: usize> Ours<N> {
    fn new(buffer: &'static InlineBuffer<u32, CAP, N>) -> Self {
        let publisher = buffer.publisher().unwrap_or_else(|| fail("ours: no publisher"));
        let subscribers = core::array::from_fn(|index| {
            buffer.subscriber(index).unwrap_or_else(|| fail("ours: no subscriber"))
        });
        Self { publisher, subscribers, next: 0, expected: [0; N] }
    }
}

impl<const N: usize> Job for Ours<N> {
    const CONSUMERS: u32 = N as u32;

    fn publish(&mut self, values: u32) -> bool {
        for _ in 0..values {
            if self.publisher.try_publish(self.next).is_err() {
                return false;
            }
            self.next = self.next.wrapping_add(1);
        }
        true
    }

    fn drain(&mut self) -> Option<u32> {
        let mut taken = 0;
        let mut in_order = true;
        for (subscriber, expected) in self.subscribers.iter_mut().zip(&mut self.expected) {
            while let Ok(value) = subscriber.try_recv() {
                in_order &= value == *expected;
                *expected = expected.wrapping_add(1);
                taken += 1;
            }
        }
        in_order.then_some(taken)
    }
}

/// Ours with the batch calls: `publish_iter` of a round's values, `recv_batch` of everything
/// available, one call per handle per round.
struct OursBatch<const N: usize>(Ours<N>);

impl<const N: usize> Job for OursBatch<N> {
    const CONSUMERS: u32 = N as u32;

    fn publish(&mut self, values: u32) -> bool {
        let this = &mut self.0;
        let end = this.next.wrapping_add(values);
        let published = this.publisher.publish_iter(this.next..end);
        this.next = this.next.wrapping_add(published as u32);
        published == values as usize
    }

    fn drain(&mut self) -> Option<u32> {
        let this = &mut self.0;
        let mut taken = 0;
        let mut in_order = true;
        for (subscriber, expected) in this.subscribers.iter_mut().zip(&mut this.expected) {
            let _ = subscriber.recv_batch(usize::MAX, |value| {
                in_order &= value == *expected;
                *expected = expected.wrapping_add(1);
                taken += 1;
            });
        }
        in_order.then_some(taken)
    }
}

/// embassy-sync's `PubSubChannel` with `N` subscribers: `try_publish` and
/// `try_next_message_pure`.
struct EmbassyJob<const N: usize> {
    publisher: pubsub::Publisher<'static, CriticalSectionRawMutex, u32, CAP, 4, 1>,
    subscribers: [pubsub::Subscriber<'static, CriticalSectionRawMutex, u32, CAP, 4, 1>; N],
    next: u32,
    expected: [u32; N],
}

impl<const N: usize> EmbassyJob<N> {
    fn new(channel: &'static Embassy) -> Self {
        let publisher = channel.publisher().unwrap_or_else(|_| fail("embassy: no publisher"));
        let subscribers = core::array::from_fn(|_| {
            channel.subscriber().unwrap_or_else(|_| fail("embassy: no subscriber"))
        });
        Self { publisher, subscribers, next: 0, expected: [0; N] }
    }
}

impl<const N: usize> Job for EmbassyJob<N> {
    const CONSUMERS: u32 = N as u32;

    fn publish(&mut self, values: u32) -> bool {
        for _ in 0..values {
            if self.publisher.try_publish(self.next).is_err() {
                return false;
            }
            self.next = self.next.wrapping_add(1);
        }
        true
    }

    fn drain(&mut self) -> Option<u32> {
        let mut taken = 0;
        let mut in_order = true;
        for (subscriber, expected) in self.subscribers.iter_mut().zip(&mut self.expected) {
            while let Some(value) = subscriber.try_next_message_pure() {
                in_order &= value == *expected;
                *expected = expected.wrapping_add(1);
                taken += 1;
            }
        }
        in_order.then_some(taken)
    }
}

/// heapless's `spsc::Queue`, split: `Producer::enqueue` and `Consumer::dequeue`.
struct Heapless<'a> {
    producer: spsc::Producer<'a, u32>,
    consumer: spsc::Consumer<'a, u32>,
    next: u32,
    expected: u32,
}

impl Job for Heapless<'_> {
    const CONSUMERS: u32 = 1;

    fn publish(&mut self, values: u32) -> bool {
        for _ in 0..values {
            if self.producer.enqueue(self.next).is_err() {
                return false;
            }
            self.next = self.next.wrapping_add(1);
        }
        true
    }

    fn drain(&mut self) -> Option<u32> {
        let mut taken = 0;
        let mut in_order = true;
        while let Some(value) = self.consumer.dequeue() {
            in_order &= value == self.expected;
            self.expected = self.expected.wrapping_add(1);
            taken += 1;
        }
        in_order.then_some(taken)
    }
}

/// Prints why and exits with status 1.
fn fail(why: &str) -> ! {
    hprintln!("FAILED {}", why);
    exit(false)
}

fn exit(success: bool) -> ! {
    debug::exit(if success { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    // Only reached without a semihosting host.
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    hprintln!("FAILED panic: {}", info);
    exit(false)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("FAILED HardFault at pc {:#010x}", frame.pc());
    exit(false)
}
