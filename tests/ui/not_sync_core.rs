// The same guarantee for the core's inline buffer, which firmware puts in a `static`.
use std::cell::Cell;

use multicast_buffer_core::InlineBuffer;

static BUF: InlineBuffer<Cell<u32>, 4, 1> = InlineBuffer::new();

fn main() {
    let _ = &BUF;
}
