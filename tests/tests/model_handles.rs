//! Model-based property test of the typed handles and the index API together, with operations
//! that panic: iterators that panic in `publish_iter`, `Clone`s that panic in a read or a batch,
//! callbacks that panic in `recv_batch`, and destructors that panic where the buffer drops a value
//! (a detached consumer's values given back, by the producer or by the consumer itself, and the
//! buffer dropped). After every operation, also after every unwind, the buffer must agree with a
//! plain reference model: what each consumer receives (in order, nothing lost or duplicated), the
//! `missed` count of a detached one, backpressure exactly when the slowest counted consumer is
//! `capacity` behind, the positions, what `state()` says is held, each value alive exactly while a
//! consumer still holds it, and every value dropped exactly once. Every panic guard of the
//! protocol lies on one of these paths.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use multicast_buffer_core::{HeapBuffer, Publisher, Subscriber, TryConsumeError};
use proptest::prelude::*;

thread_local! {
    /// Set by a step: the next clone of a payload panics.
    static CLONE_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Per value id: instances alive (originals and clones not yet dropped).
type Alive = Rc<RefCell<HashMap<u64, isize>>>;

#[derive(Debug)]
struct Tracked {
    id: u64,
    alive: Alive,
    /// The original panics when the buffer drops it (clones never do).
    bomb: bool,
}

impl Tracked {
    fn new(id: u64, alive: &Alive, bomb: bool) -> Self {
        *alive.borrow_mut().entry(id).or_default() += 1;
        Self { id, alive: Rc::clone(alive), bomb }
    }

    /// The id of a value the test received; defused (the test drops it, not the buffer).
    fn take_id(mut self) -> u64 {
        self.bomb = false;
        self.id
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        if CLONE_PANICS.with(|armed| armed.replace(false)) {
            panic!("clone of {} refused", self.id);
        }
        Self::new(self.id, &self.alive, false)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut alive = self.alive.borrow_mut();
        let count = alive.get_mut(&self.id).expect("dropped a value never made");
        *count -= 1;
        assert!(*count >= 0, "value {} dropped twice", self.id);
        drop(alive);
        // A second panic while unwinding would abort: the buffer's guards drop the rest then.
        if self.bomb && !std::thread::panicking() {
            panic!("drop of {} refused", self.id);
        }
    }
}

/// How a consumer reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Index,
    Tethered,
    Evictable,
}

#[derive(Debug, Clone)]
enum Op {
    /// `Publisher::try_publish` of a new value (whose original panics when the buffer drops it,
    /// if `bomb`).
    Publish {
        bomb: bool,
    },
    /// `Publisher::publish_iter` of up to `n` new values; the iterator panics when asked for
    /// item `panic_at`.
    PublishIter {
        n: usize,
        panic_at: Option<usize>,
    },
    /// One value for consumer `c` (`try_consume` or `try_recv`); the first clone panics if
    /// `clone_panics`.
    Consume {
        c: usize,
        clone_panics: bool,
    },
    /// `try_read` (the index API consumes instead): in place, the id copied out.
    Read {
        c: usize,
    },
    /// `recv_batch(max, ..)` (the index API consumes one), whose callback panics at the value
    /// `panic_at`, or whose first clone panics.
    Batch {
        c: usize,
        max: usize,
        panic_at: Option<usize>,
        clone_panics: bool,
    },
    Detach {
        c: usize,
    },
    Rejoin {
        c: usize,
    },
    /// `Subscriber::set_evictable` (handles; nothing for the index API).
    SetEvictable {
        c: usize,
        evictable: bool,
    },
}

fn ops(consumers: usize) -> impl Strategy<Value = Vec<Op>> {
    let c = 0..consumers;
    let op = prop_oneof![
        3 => Just(Op::Publish { bomb: false }),
        1 => Just(Op::Publish { bomb: true }),
        2 => (0..6usize, prop::option::of(0..6usize))
            .prop_map(|(n, panic_at)| Op::PublishIter { n, panic_at }),
        6 => (c.clone(), prop::bool::weighted(0.2))
            .prop_map(|(c, clone_panics)| Op::Consume { c, clone_panics }),
        1 => c.clone().prop_map(|c| Op::Read { c }),
        3 => (c.clone(), 0..6usize, prop::option::of(0..4usize), prop::bool::weighted(0.2))
            .prop_map(|(c, max, panic_at, clone_panics)| Op::Batch { c, max, panic_at, clone_panics }),
        1 => c.clone().prop_map(|c| Op::Detach { c }),
        1 => c.clone().prop_map(|c| Op::Rejoin { c }),
        1 => (c, any::<bool>()).prop_map(|(c, evictable)| Op::SetEvictable { c, evictable }),
    ];
    prop::collection::vec(op, 0..120)
}

/// A consumer's membership, as the reference model sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Member {
    /// Counted; reads from `read`.
    Running,
    /// Detached, not applied yet: still counted. The producer's next publish call (for an
    /// index seat or an evictable handle) or the consumer's own next look gives back what it
    /// has not read: an index call or an evictable handle's call at once, a tethered handle's
    /// call once it has read what it had seen (its view of the write position when it last
    /// looked: it looks at its seat before it looks at the producer again).
    Stopping,
    /// Told, its values given back; the producer's next publish call stops counting it.
    Settled,
    /// Not counted.
    Out,
    /// Asked to rejoin: counted from the producer's next publish call on.
    Joining,
}

struct Consumer {
    mode: Mode,
    sub: Option<Subscriber<&'static HeapBuffer<Tracked>>>,
    /// The next position it reads.
    read: usize,
    /// A handle's view of the write position: it looks at the producer again once it has read
    /// that far.
    seen: usize,
    member: Member,
    /// Where the next `Detached { missed }` counts from.
    told: usize,
    /// Counted after a rejoin, and it has not called since: it does not know its position, so
    /// its next call looks at its seat (and sees a detach) first.
    fresh: bool,
    /// The seat is marked tethered (the producer leaves its stop to the holder): a tethered
    /// handle's seat while it is counted or joining.
    seat_tethered: bool,
    /// Turned tethered while stopped: it reads nothing before it looks at its seat.
    blind: bool,
}

struct Model {
    capacity: usize,
    alive: Alive,
    /// Published ids, by position.
    log: Vec<u64>,
    /// The ids whose original panics when the buffer drops it.
    bombs: HashSet<u64>,
    /// Per position: the consumers still holding it.
    holders: Vec<Vec<usize>>,
    consumers: Vec<Consumer>,
    next_id: u64,
}

impl Model {
    fn counted(&self, c: usize) -> bool {
        matches!(self.consumers[c].member, Member::Running | Member::Stopping | Member::Settled)
    }

    fn readers(&self) -> Vec<usize> {
        (0..self.consumers.len()).filter(|&c| self.counted(c)).collect()
    }

    /// Free slots: `capacity` minus what the slowest counted consumer holds (0 with nobody).
    fn room(&self) -> usize {
        let readers = self.readers();
        match readers.iter().map(|&c| self.consumers[c].read).min() {
            Some(slowest) => self.capacity - (self.log.len() - slowest),
            None => 0,
        }
    }

    /// Consumer `c` gives back every position it holds from `read` on; whether a bomb went off
    /// (a value whose last holder it was).
    fn give_back(&mut self, c: usize) -> bool {
        let mut exploded = false;
        for position in self.consumers[c].read..self.log.len() {
            let holders = &mut self.holders[position];
            let before = holders.len();
            holders.retain(|&h| h != c);
            if before != holders.len() && holders.is_empty() {
                exploded |= self.bombs.contains(&self.log[position]);
            }
        }
        let consumer = &mut self.consumers[c];
        consumer.read = self.log.len();
        consumer.seen = consumer.seen.max(consumer.read);
        exploded
    }

    /// What the producer does before it publishes: applies detaches and joins, seat by seat;
    /// whether a destructor panicked (then the seats after it are left for the next call).
    fn apply(&mut self) -> bool {
        for c in 0..self.consumers.len() {
            match self.consumers[c].member {
                Member::Stopping if !self.consumers[c].seat_tethered => {
                    self.consumers[c].member = Member::Out;
                    if self.give_back(c) {
                        return true;
                    }
                }
                Member::Settled => self.consumers[c].member = Member::Out,
                Member::Joining => {
                    let len = self.log.len();
                    let consumer = &mut self.consumers[c];
                    consumer.member = Member::Running;
                    (consumer.read, consumer.seen, consumer.told) = (len, len, len);
                    consumer.fresh = true;
                }
                _ => {}
            }
        }
        false
    }

    fn push(&mut self, id: u64) {
        self.log.push(id);
        let readers = self.readers();
        self.holders.push(readers);
    }

    fn make(&mut self, bomb: bool) -> Tracked {
        let id = self.next_id;
        self.next_id += 1;
        if bomb {
            self.bombs.insert(id);
        }
        Tracked::new(id, &self.alive, bomb)
    }

    /// What consumer `c`'s next call gives, for a call that reads up to `max` values (a batch
    /// looks at the producer when its view does not cover `max`; a single read when it has read
    /// everything it saw).
    fn expect(&mut self, c: usize, max: usize) -> Expect {
        let len = self.log.len();
        let consumer = &mut self.consumers[c];
        // A tethered handle whose seat is stopped does not look at the producer again: it reads
        // what it had seen, then is told.
        let stopped = consumer.member == Member::Stopping && consumer.mode == Mode::Tethered;
        // A batch of 0 takes nothing from its view and looks at the seat, then at the producer.
        if (consumer.seen - consumer.read < max.max(1) || max == 0) && !stopped {
            consumer.seen = len;
        }
        let fresh = std::mem::replace(&mut consumer.fresh, false) || consumer.blind;
        let look = match consumer.member {
            Member::Joining => return Expect::Empty,
            Member::Out | Member::Settled => true,
            // A tethered handle reads what it saw; it looks when there is nothing more of that
            // (or when it does not know its position yet).
            // A batch of 0 always looks at the seat.
            Member::Stopping => {
                consumer.mode != Mode::Tethered
                    || consumer.read == consumer.seen
                    || fresh
                    || max == 0
            }
            Member::Running => false,
        };
        if look {
            return Expect::Detached;
        }
        if consumer.read == len {
            return Expect::Empty;
        }
        Expect::Values((consumer.seen - consumer.read).min(max.max(1)))
    }

    /// A detached consumer's call: settles a stopping seat (its values given back on this
    /// thread); returns `missed` and whether a destructor panicked. A handle counts `missed`
    /// from its last value; the index API from its last value until the first call that told
    /// it, and from that call on later (its seat's frontier moved there).
    fn told(&mut self, c: usize) -> (usize, bool) {
        let len = self.log.len();
        let mut exploded = false;
        let since = self.consumers[c].told;
        if self.consumers[c].member == Member::Stopping {
            self.consumers[c].member = Member::Settled;
            // Settled: no longer tethered (the producer applies it).
            self.consumers[c].seat_tethered = false;
            exploded = self.give_back(c);
            if self.consumers[c].mode == Mode::Index {
                self.consumers[c].told = len;
            }
        }
        let consumer = &mut self.consumers[c];
        consumer.seen = consumer.read;
        (len - since, exploded)
    }

    /// Consumer `c` read `n` values.
    fn took(&mut self, c: usize, n: usize) {
        let start = self.consumers[c].read;
        for position in start..start + n {
            self.holders[position].retain(|&h| h != c);
        }
        let consumer = &mut self.consumers[c];
        consumer.read += n;
        consumer.seen = consumer.seen.max(consumer.read);
        consumer.told = consumer.read;
    }

    /// Whether reading position `position` clones (other consumers still hold it).
    fn clones(&self, position: usize) -> bool {
        self.holders[position].len() > 1
    }
}

#[derive(Debug, PartialEq)]
enum Expect {
    /// Up to this many values (a single read: one).
    Values(usize),
    Empty,
    Detached,
}

fn check(capacity: usize, modes: &[Mode], ops: &[Op]) {
    let alive: Alive = Rc::default();
    // Leaked so that the handles can borrow it for `'static`; freed by hand at the end.
    let raw = Box::into_raw(Box::new(HeapBuffer::<Tracked>::new(capacity, modes.len())));
    // SAFETY: from `Box::into_raw`, freed only at the end of this function, through `raw`, after
    // every borrow of it (the handles) is gone.
    let buf: &'static HeapBuffer<Tracked> = unsafe { &*raw };
    let mut publisher: Publisher<&'static HeapBuffer<Tracked>> = buf.publisher().unwrap();
    let mut model = Model {
        capacity,
        alive: Rc::clone(&alive),
        log: Vec::new(),
        bombs: HashSet::new(),
        holders: Vec::new(),
        consumers: modes
            .iter()
            .enumerate()
            .map(|(index, &mode)| {
                let sub = (mode != Mode::Index).then(|| {
                    let mut sub = buf.subscriber(index).unwrap();
                    sub.set_evictable(mode == Mode::Evictable);
                    sub
                });
                Consumer {
                    mode,
                    sub,
                    read: 0,
                    seen: 0,
                    member: Member::Running,
                    told: 0,
                    fresh: false,
                    seat_tethered: mode == Mode::Tethered,
                    blind: false,
                }
            })
            .collect(),
        next_id: 0,
    };
    for op in ops {
        match *op {
            Op::Publish { bomb } => {
                let exploded = model.apply();
                let value = model.make(bomb);
                let id = value.id;
                let result = catch_unwind(AssertUnwindSafe(|| publisher.try_publish(value)));
                match result {
                    Err(_) => {
                        // A destructor of a value given back panicked: the new value was
                        // dropped while unwinding.
                        assert!(exploded, "publish panicked");
                        model.bombs.remove(&id);
                    }
                    Ok(result) => {
                        assert!(!exploded, "a given-back bomb did not go off");
                        if model.room() == 0 {
                            let back = result.expect_err("accepted while full").into_inner();
                            assert_eq!(back.id, id, "the refused value came back");
                            back.take_id();
                        } else {
                            result.expect("refused while not full");
                            model.push(id);
                        }
                    }
                }
            }
            Op::PublishIter { n, panic_at } => {
                let exploded = model.apply();
                let room = if exploded { 0 } else { model.room() };
                let first = model.next_id;
                let stop = panic_at.filter(|&k| k < n && k < room);
                let taken = stop.unwrap_or(n.min(room));
                let made = Rc::new(Cell::new(0usize));
                let values = {
                    let (alive, made) = (Rc::clone(&alive), Rc::clone(&made));
                    (0..n).map(move |i| {
                        assert!(Some(i) != panic_at, "the iterator panics at {i}");
                        made.set(made.get() + 1);
                        Tracked::new(first + i as u64, &alive, false)
                    })
                };
                let result = catch_unwind(AssertUnwindSafe(|| publisher.publish_iter(values)));
                assert_eq!(made.get(), taken, "a value is taken only once its slot is free");
                match result {
                    Ok(published) => {
                        assert!(stop.is_none() && !exploded, "did not panic");
                        assert_eq!(published, taken);
                    }
                    Err(_) => assert!(stop.is_some() || exploded, "panicked"),
                }
                model.next_id += taken as u64;
                for i in 0..taken {
                    model.push(first + i as u64);
                }
            }
            Op::Consume { c, clone_panics } => single(&mut model, buf, c, clone_panics, false),
            Op::Read { c } => single(&mut model, buf, c, false, true),
            Op::Batch { c, max, panic_at, clone_panics } => {
                if model.consumers[c].mode == Mode::Index {
                    single(&mut model, buf, c, clone_panics, false);
                } else {
                    batch(&mut model, c, max, panic_at, clone_panics);
                }
            }
            Op::Detach { c } => {
                let member = model.consumers[c].member;
                let expected = matches!(member, Member::Running | Member::Joining);
                assert_eq!(buf.detach(c), expected, "detach of {c} ({member:?})");
                let len = model.log.len();
                let consumer = &mut model.consumers[c];
                match member {
                    Member::Running => consumer.member = Member::Stopping,
                    Member::Joining => {
                        consumer.member = Member::Out;
                        consumer.told = len;
                    }
                    _ => {}
                }
            }
            Op::Rejoin { c } => {
                let member = model.consumers[c].member;
                let len = model.log.len();
                let consumer = &mut model.consumers[c];
                let rejoined = match &mut consumer.sub {
                    Some(sub) => sub.rejoin(),
                    None => buf.rejoin(c),
                };
                let expected = matches!(member, Member::Stopping | Member::Settled | Member::Out);
                assert_eq!(rejoined, expected, "rejoin of {c} ({member:?})");
                match member {
                    // Not applied yet: the stop is cancelled; it continues where it stopped
                    // (after a settle: where it settled, having given back the rest).
                    Member::Stopping | Member::Settled => {
                        consumer.member = Member::Running;
                        consumer.seen = consumer.read;
                        consumer.told = consumer.read;
                        // It knows its position from the seat.
                        consumer.fresh = false;
                    }
                    Member::Out => {
                        consumer.member = Member::Joining;
                        consumer.told = len;
                    }
                    _ => {}
                }
                if expected {
                    consumer.seat_tethered = consumer.mode == Mode::Tethered;
                    consumer.blind = false;
                }
            }
            Op::SetEvictable { c, evictable } => {
                let consumer = &mut model.consumers[c];
                let Some(sub) = &mut consumer.sub else { continue };
                sub.set_evictable(evictable);
                let tethered = consumer.mode == Mode::Tethered;
                if evictable && tethered {
                    consumer.mode = Mode::Evictable;
                    // Claims need its position in the seat: the producer may apply a stop now.
                    consumer.seat_tethered = false;
                } else if !evictable && !tethered {
                    consumer.mode = Mode::Tethered;
                    if matches!(consumer.member, Member::Running | Member::Joining) {
                        consumer.seat_tethered = true;
                    } else {
                        // What it saw is not its own any more: it looks first.
                        consumer.blind = true;
                        consumer.seen = consumer.read;
                    }
                }
            }
        }
        verify(&model, buf);
    }
    // Everything left is dropped exactly once, also where destructors panic (closing applies
    // the detaches still pending).
    let _ = catch_unwind(AssertUnwindSafe(|| drop(publisher)));
    for consumer in &mut model.consumers {
        let sub = consumer.sub.take();
        let _ = catch_unwind(AssertUnwindSafe(|| drop(sub)));
    }
    // SAFETY: `raw` came from `Box::into_raw` above; every borrow of it (the handles) is gone.
    // (Not from `buf`: a pointer derived from a shared reference may not free the box.)
    let owned = unsafe { Box::from_raw(raw) };
    let _ = catch_unwind(AssertUnwindSafe(|| drop(owned)));
    assert!(alive.borrow().values().all(|&n| n == 0), "every value dropped exactly once");
}

/// One value for consumer `c`, by its API, checked against the model.
fn single(
    model: &mut Model,
    buf: &'static HeapBuffer<Tracked>,
    c: usize,
    clone_panics: bool,
    in_place: bool,
) {
    // The index API has no in-place read: it consumes.
    let in_place = in_place && model.consumers[c].mode != Mode::Index;
    let expect = model.expect(c, 1);
    let position = model.consumers[c].read;
    let clones = expect == Expect::Values(1) && !in_place && model.clones(position);
    // Read in place by its last holder, a value is dropped by the buffer when the guard goes.
    let explodes = expect == Expect::Values(1)
        && in_place
        && !model.clones(position)
        && model.bombs.contains(&model.log[position]);
    CLONE_PANICS.with(|armed| armed.set(clone_panics));
    let consumer = &mut model.consumers[c];
    let result = catch_unwind(AssertUnwindSafe(|| match &mut consumer.sub {
        Some(sub) if in_place => sub.try_read().map(|guard| guard.id),
        Some(sub) => sub.try_recv().map(Tracked::take_id),
        None => buf.try_consume(c).map(Tracked::take_id),
    }));
    CLONE_PANICS.with(|armed| armed.set(false));
    match expect {
        Expect::Values(_) if clones && clone_panics => {
            assert!(result.is_err(), "consumer {c}: the clone should have panicked");
            // Nothing changed: the same value comes next.
        }
        Expect::Values(_) if explodes => {
            assert!(result.is_err(), "consumer {c}: the released bomb did not go off");
            model.took(c, 1);
        }
        Expect::Values(_) => {
            let got = result.expect("no panic").expect("a value");
            assert_eq!(got, model.log[position], "consumer {c} at {position}");
            model.took(c, 1);
        }
        Expect::Empty => assert_eq!(result.ok(), Some(Err(TryConsumeError::Empty))),
        Expect::Detached => {
            let (missed, exploded) = model.told(c);
            if exploded {
                assert!(result.is_err(), "consumer {c}: a given-back bomb did not go off");
            } else {
                let got = result.expect("no panic");
                assert_eq!(got, Err(TryConsumeError::Detached { missed: missed as u64 }), "{c}");
            }
        }
    }
}

/// `recv_batch` of a handle, checked against the model.
fn batch(model: &mut Model, c: usize, max: usize, panic_at: Option<usize>, clone_panics: bool) {
    let expect = model.expect(c, max);
    let start = model.consumers[c].read;
    CLONE_PANICS.with(|armed| armed.set(clone_panics));
    let mut got = Vec::new();
    let sub = model.consumers[c].sub.as_mut().unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        sub.recv_batch(max, |v| {
            got.push(v.take_id());
            assert!(Some(got.len() - 1) != panic_at, "the callback panics at {}", got.len() - 1);
        })
    }));
    CLONE_PANICS.with(|armed| armed.set(false));
    match expect {
        Expect::Values(_) if max == 0 => assert_eq!(result.ok(), Some(Ok(0))),
        Expect::Values(available) => {
            // The first value whose clone panics, if one does; the callback's panic.
            let clone_stop = (0..available).find(|&i| clone_panics && model.clones(start + i));
            let (handed, panics) = match (clone_stop, panic_at) {
                (Some(k), Some(p)) if p < k => (p + 1, true),
                (Some(k), _) => (k, true),
                (None, Some(p)) if p < available => (p + 1, true),
                _ => (available, false),
            };
            assert_eq!(result.is_err(), panics, "consumer {c}: a panic in the batch");
            let expected: Vec<u64> = (start..start + handed).map(|p| model.log[p]).collect();
            assert_eq!(got, expected, "consumer {c}: the values handed out");
            if let Ok(n) = result {
                assert_eq!(n, Ok(handed));
            }
            model.took(c, handed);
            if panics && handed < available && model.consumers[c].mode == Mode::Evictable {
                // An evictable batch that unwinds hands its unread claim back and forgets its
                // view: it looks at its seat and the producer again.
                let consumer = &mut model.consumers[c];
                consumer.seen = consumer.read;
            }
        }
        Expect::Empty => assert_eq!(result.ok(), Some(Err(TryConsumeError::Empty))),
        Expect::Detached => {
            let (missed, exploded) = model.told(c);
            if exploded {
                assert!(result.is_err(), "consumer {c}: a given-back bomb did not go off");
            } else {
                let got = result.expect("no panic");
                assert_eq!(got, Err(TryConsumeError::Detached { missed: missed as u64 }), "{c}");
            }
        }
    }
}

/// Every invariant the model can see: positions, what is held, and which values are alive.
fn verify(model: &Model, buf: &HeapBuffer<Tracked>) {
    assert_eq!(buf.write_position(), model.log.len() as u64, "write position");
    for (c, consumer) in model.consumers.iter().enumerate() {
        if consumer.member == Member::Running {
            assert_eq!(buf.read_position(c), consumer.read as u64, "read position of {c}");
        }
    }
    let held = (0..model.consumers.len())
        .filter(|&c| model.counted(c))
        .map(|c| model.log.len() - model.consumers[c].read)
        .max()
        .unwrap_or(0);
    assert_eq!(buf.state().held, held, "held");
    let alive = model.alive.borrow();
    for (position, id) in model.log.iter().enumerate() {
        let expected = isize::from(!model.holders[position].is_empty());
        assert_eq!(alive[id], expected, "value {id} at {position}: alive");
    }
}

fn modes() -> impl Strategy<Value = Vec<Mode>> {
    prop::collection::vec(
        prop_oneof![Just(Mode::Index), Just(Mode::Tethered), Just(Mode::Evictable)],
        1..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 2048 },
        // No regression files: they would need the file system (and Miri isolates it).
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn handles_match_the_reference_model_also_when_user_code_panics(
        capacity_log2 in 0u32..4,
        (modes, ops) in modes().prop_flat_map(|m| {
            let n = m.len();
            (Just(m), ops(n))
        }),
    ) {
        check(1 << capacity_log2, &modes, &ops);
    }
}
