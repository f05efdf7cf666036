//! The documented behaviour of LaminarDB's `MulticastBuffer` (whose API `MulticastBuffer`
//! offers), method by method, plus where we deliberately do better.

use multicast_buffer::{DagError, MulticastBuffer, TryPublishError};

#[test]
fn new_allocates_the_requested_shape() {
    let buf = MulticastBuffer::<u64>::new(16, 3);
    assert_eq!(buf.capacity(), 16);
    assert_eq!(buf.consumer_count(), 3);
    assert_eq!(buf.write_position(), 0);
    for idx in 0..3 {
        assert_eq!(buf.read_position(idx), 0);
    }
}

#[test]
fn new_accepts_every_power_of_two() {
    for shift in 0..12 {
        assert_eq!(MulticastBuffer::<u8>::new(1 << shift, 1).capacity(), 1 << shift);
    }
}

#[test]
#[should_panic(expected = "power of two")]
fn new_panics_on_non_power_of_two() {
    MulticastBuffer::<u64>::new(6, 1);
}

#[test]
#[should_panic(expected = "greater than zero")]
fn new_panics_on_zero_capacity() {
    MulticastBuffer::<u64>::new(0, 1);
}

#[test]
#[should_panic(expected = "at most 1024 consumers")]
fn new_panics_above_the_consumer_maximum() {
    MulticastBuffer::<u64>::new(4, multicast_buffer::MAX_CONSUMERS + 1);
}

#[test]
fn try_new_reports_instead_of_panicking() {
    assert!(MulticastBuffer::<u64>::try_new(0, 1).is_err());
    assert!(MulticastBuffer::<u64>::try_new(3, 1).is_err());
    let err = MulticastBuffer::<u64>::try_new(12, 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "multicast buffer capacity must be a power of two, got 12 (the next power of two is 16)"
    );
    assert!(MulticastBuffer::<u64>::try_new(8, 2).is_ok());
}

#[test]
fn try_new_names_the_largest_capacity_as_a_power_of_two() {
    let too_large = multicast_buffer::MAX_CAPACITY * 2;
    let err = MulticastBuffer::<u8>::try_new(too_large, 1).unwrap_err();
    let max = if cfg!(target_pointer_width = "64") { "2^58" } else { "2^26" };
    assert_eq!(
        err.to_string(),
        format!("multicast buffer capacity must be at most {max} (MAX_CAPACITY), got {too_large}")
    );
    // Not a power of two, and its next one is above the maximum: no suggestion.
    let err = MulticastBuffer::<u8>::try_new(too_large - 1, 1).unwrap_err();
    assert!(!err.to_string().contains("next power of two"), "{err}");
}

/// A shape within the limits whose memory no allocator can give (2^40 slots of 512 KiB: 2^59
/// bytes, beyond any address space) is an error, not an abort of the process. Not under Miri,
/// which reports such an allocation as resource exhaustion instead of failing it.
#[test]
#[cfg(target_pointer_width = "64")]
#[cfg_attr(miri, ignore)]
fn try_new_reports_an_allocation_the_allocator_refuses() {
    let err = MulticastBuffer::<[u64; 1 << 16]>::try_new(1 << 40, 2).unwrap_err();
    assert_eq!(err, multicast_buffer::ConfigError::AllocationFailed { capacity: 1 << 40 });
    assert_eq!(
        err.to_string(),
        "could not allocate the memory for a multicast buffer of 1099511627776 slots"
    );
    // Nothing stayed allocated or broken: the next buffer is fine.
    assert!(MulticastBuffer::<u64>::try_new(1 << 10, 2).is_ok());
}

#[test]
fn publish_then_every_consumer_reads_in_order() {
    let buf = MulticastBuffer::new(8, 2);
    for i in 0..5u64 {
        buf.publish(i).unwrap();
    }
    assert_eq!(buf.write_position(), 5);
    for idx in 0..2 {
        let got: Vec<u64> = std::iter::from_fn(|| buf.consume(idx)).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        assert_eq!(buf.read_position(idx), 5);
    }
}

#[test]
fn consume_returns_none_without_new_data() {
    let buf = MulticastBuffer::<u64>::new(4, 2);
    assert_eq!(buf.consume(0), None);
    buf.publish(1).unwrap();
    assert_eq!(buf.consume(0), Some(1));
    assert_eq!(buf.consume(0), None);
    assert_eq!(buf.read_position(0), 1);
}

#[test]
fn publish_reports_backpressure_while_the_slowest_consumer_holds_the_slot() {
    let buf = MulticastBuffer::new(4, 2);
    for i in 0..4u64 {
        buf.publish(i).unwrap();
    }
    assert_eq!(buf.publish(4), Err(DagError::BackpressureFull));
    assert_eq!(buf.write_position(), 4, "a refused publish does not advance");
    for _ in 0..4 {
        buf.consume(0).unwrap();
    }
    assert_eq!(buf.publish(4), Err(DagError::BackpressureFull), "consumer 1 still holds slot 0");
    assert_eq!(buf.consume(1), Some(0));
    assert_eq!(buf.publish(4), Ok(()));
    // Consumer 0 sees exactly the next value, not the refused attempts.
    assert_eq!(buf.consume(0), Some(4));
}

#[test]
fn try_publish_gives_the_value_back() {
    let buf = MulticastBuffer::new(1, 1);
    buf.try_publish(String::from("kept")).unwrap();
    match buf.try_publish(String::from("refused")) {
        Err(TryPublishError::Full(value)) => assert_eq!(value, "refused"),
        other => panic!("expected Full, got {other:?}"),
    }
}

#[test]
fn dag_error_is_a_std_error() {
    let err: Box<dyn std::error::Error + Send + Sync> = Box::new(DagError::BackpressureFull);
    assert!(err.to_string().contains("backpressure"));
    assert_eq!(format!("{:?}", DagError::BackpressureFull), "BackpressureFull");
}

#[test]
#[should_panic(expected = "consumer index 2 out of range: this buffer has 2 consumers")]
fn consume_panics_for_a_bad_index() {
    MulticastBuffer::<u64>::new(4, 2).consume(2);
}

#[test]
#[should_panic(expected = "consumer index 5 out of range: this buffer has 1 consumers")]
fn read_position_panics_for_a_bad_index() {
    MulticastBuffer::<u64>::new(4, 1).read_position(5);
}

#[test]
fn debug_shows_capacity_consumers_and_positions() {
    let buf = MulticastBuffer::new(8, 2);
    buf.publish(1u8).unwrap();
    buf.consume(0);
    assert_eq!(
        format!("{buf:?}"),
        "MulticastBuffer { capacity: 8, consumer_count: 2, write_position: 1, read_positions: [1, 0] }"
    );
}

#[test]
fn wraps_around_the_ring_many_times() {
    let buf = MulticastBuffer::new(4, 3);
    for i in 0..1000u64 {
        buf.publish(i).unwrap();
        for idx in 0..3 {
            assert_eq!(buf.consume(idx), Some(i));
        }
    }
    assert_eq!(buf.write_position(), 1000);
}

#[test]
fn zero_consumers_accept_and_drop() {
    let buf = MulticastBuffer::new(2, 0);
    for i in 0..10u64 {
        buf.publish(i).unwrap();
    }
    assert_eq!(buf.write_position(), 10);
    assert_eq!(buf.consumer_count(), 0);
}

#[test]
fn send_and_sync_for_send_sync_payloads() {
    fn both<T: Send + Sync>() {}
    fn send<T: Send>() {}
    both::<MulticastBuffer<std::sync::Arc<Vec<u8>>>>();
    both::<MulticastBuffer<u64>>();
    // `Cell` is `Send` but not `Sync`: the buffer is still `Send` (tests/ui checks it is not Sync).
    send::<MulticastBuffer<std::cell::Cell<u64>>>();
}
