// A buffer of `Cell`s (`Send` but not `Sync`) must not be shareable between threads: consumers
// clone the same value through `&T` at once.
use std::cell::Cell;

use multicast_buffer::MulticastBuffer;

fn assert_sync<T: Sync>(_: &T) {}

fn main() {
    let buf = MulticastBuffer::<Cell<u64>>::new(4, 2);
    assert_sync(&buf);
}
