//! Model-based property test: random sequences of `publish`, `try_publish` and `consume` per
//! consumer, compared step by step with a plain reference model (a log plus a read index per
//! consumer): order, nothing lost or duplicated, backpressure exactly when the slowest consumer is
//! `capacity` behind, and every value dropped exactly once, as soon as every consumer has read it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use multicast_buffer::{DagError, MulticastBuffer, TryPublishError};
use proptest::prelude::*;

/// Per value id: instances alive (originals and clones not yet dropped).
type Alive = Rc<RefCell<HashMap<u64, isize>>>;

#[derive(Debug)]
struct Tracked {
    id: u64,
    alive: Alive,
}

impl Tracked {
    fn new(id: u64, alive: &Alive) -> Self {
        *alive.borrow_mut().entry(id).or_default() += 1;
        Self { id, alive: Rc::clone(alive) }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new(self.id, &self.alive)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut alive = self.alive.borrow_mut();
        let count = alive.get_mut(&self.id).expect("dropped a value never made");
        *count -= 1;
        assert!(*count >= 0, "value {} dropped twice", self.id);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Publish,
    TryPublish,
    Consume(usize),
}

fn ops(consumers: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        2 => Just(Op::Publish),
        2 => Just(Op::TryPublish),
        5 => (0..consumers.max(1)).prop_map(Op::Consume),
    ];
    prop::collection::vec(op, 0..200)
}

fn check(capacity: usize, consumers: usize, ops: &[Op]) {
    let alive: Alive = Rc::default();
    let buf = MulticastBuffer::new(capacity, consumers);
    // The reference model: every id accepted, in order, and each consumer's read index into it.
    let mut log: Vec<u64> = Vec::new();
    let mut read = vec![0usize; consumers];
    let mut next_id = 0u64;
    for op in ops {
        let slowest = read.iter().copied().min().unwrap_or(log.len());
        let full = consumers > 0 && log.len() - slowest == capacity;
        match op {
            Op::Publish | Op::TryPublish => {
                let id = next_id;
                next_id += 1;
                let value = Tracked::new(id, &alive);
                if matches!(op, Op::Publish) {
                    let result = buf.publish(value);
                    assert_eq!(result.is_err(), full, "publish refused exactly when full");
                    if let Err(err) = result {
                        assert_eq!(err, DagError::BackpressureFull);
                        assert_eq!(alive.borrow()[&id], 0, "the refused value was dropped");
                    }
                } else {
                    match buf.try_publish(value) {
                        Ok(()) => {
                            assert!(!full, "accepted while the slowest was {capacity} behind")
                        }
                        Err(TryPublishError::Full(back)) => {
                            assert!(full, "refused while not full");
                            assert_eq!(back.id, id, "the refused value came back");
                        }
                        Err(err) => panic!("unexpected {err}"),
                    }
                }
                if !full {
                    log.push(id);
                }
            }
            Op::Consume(_) if consumers == 0 => {}
            Op::Consume(idx) => {
                let idx = *idx;
                let got = buf.consume(idx).map(|v| v.id);
                let expected = log.get(read[idx]).copied();
                assert_eq!(got, expected, "consumer {idx} at {}", read[idx]);
                if got.is_some() {
                    read[idx] += 1;
                }
            }
        }
        // Every accepted value is alive exactly while some consumer has not read it (received
        // values are dropped at once above); with no consumers nothing is kept.
        let slowest = read.iter().copied().min().unwrap_or(log.len());
        for (position, id) in log.iter().enumerate() {
            let held = usize::from(position >= slowest);
            assert_eq!(alive.borrow()[id], held as isize, "value {id} at {position}");
        }
        assert_eq!(buf.write_position(), log.len() as u64);
        for (idx, &r) in read.iter().enumerate() {
            assert_eq!(buf.read_position(idx), r as u64);
        }
    }
    drop(buf);
    assert!(alive.borrow().values().all(|&n| n == 0), "every value dropped exactly once");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        // No regression files: they would need the file system (and Miri isolates it).
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn matches_the_reference_model(
        capacity_log2 in 0u32..4,
        (consumers, ops) in (0usize..4).prop_flat_map(|c| (Just(c), ops(c))),
    ) {
        check(1 << capacity_log2, consumers, &ops);
    }
}
