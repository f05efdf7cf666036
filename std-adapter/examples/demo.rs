//! The main job: one producer thread fans a stream of `Arc` payloads out to N consumer threads,
//! then prints throughput, each consumer's lag and how often backpressure was hit.
//!
//! ```text
//! cargo run --release --example demo -- [CONSUMERS] [MESSAGES] [CAPACITY]
//! ```
//!
//! Defaults: 4 consumers, 1,000,000 messages, 1024 slots. Every consumer checks that it received
//! every payload, in order; the demo exits non-zero if one did not.

use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use multicast_buffer::MulticastBuffer;

/// A payload like a small record batch: a sequence number and some data.
#[derive(Debug)]
struct Batch {
    seq: u64,
    data: [u64; 7],
}

/// What one consumer saw.
#[derive(Debug)]
struct Report {
    received: u64,
    in_order: bool,
    max_lag: u64,
    elapsed: Duration,
}

fn arg(args: &[String], i: usize, name: &str, default: u64) -> Result<u64, String> {
    match args.get(i) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| format!("{name} must be a number, got {text:?}")),
    }
}

/// Spin briefly, then yield: this machine may have fewer cores than threads.
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 100 {
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        Ok::<_, String>((
            arg(&args, 0, "CONSUMERS", 4)? as usize,
            arg(&args, 1, "MESSAGES", 1_000_000)?,
            arg(&args, 2, "CAPACITY", 1024)? as usize,
        ))
    })();
    let (consumers, messages, capacity) = match parsed {
        Ok(values) => values,
        Err(err) => {
            eprintln!("error: {err}\nusage: demo [CONSUMERS] [MESSAGES] [CAPACITY]");
            return ExitCode::from(2);
        }
    };
    let buf: MulticastBuffer<Arc<Batch>> = match MulticastBuffer::try_new(capacity, consumers) {
        Ok(buf) => buf,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    println!(
        "multicast-buffer demo: 1 producer -> {consumers} consumers, {messages} Arc payloads, \
         {capacity} slots, {} CPUs",
        thread::available_parallelism().map_or(1, |n| n.get())
    );

    let start = Instant::now();
    let (backpressure, reports) = thread::scope(|s| {
        let handles: Vec<_> = (0..consumers)
            .map(|idx| {
                let buf = &buf;
                s.spawn(move || {
                    let mut report =
                        Report { received: 0, in_order: true, max_lag: 0, elapsed: Duration::ZERO };
                    let mut spins = 0;
                    while report.received < messages {
                        match buf.consume(idx) {
                            Some(batch) => {
                                report.in_order &=
                                    batch.seq == report.received && batch.data[6] == batch.seq * 7;
                                report.received += 1;
                                spins = 0;
                                if report.received % 1024 == 0 {
                                    let lag = buf.write_position() - buf.read_position(idx);
                                    report.max_lag = report.max_lag.max(lag);
                                }
                            }
                            None => backoff(&mut spins),
                        }
                    }
                    report.elapsed = start.elapsed();
                    report
                })
            })
            .collect();
        let mut backpressure = 0u64;
        let mut spins = 0;
        for seq in 0..messages {
            let mut batch = Arc::new(Batch { seq, data: [seq * 7; 7] });
            while let Err(err) = buf.try_publish(batch) {
                backpressure += 1;
                batch = err.into_inner();
                backoff(&mut spins);
            }
            spins = 0;
        }
        (backpressure, handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>())
    });
    let elapsed = start.elapsed();

    let rate = messages as f64 / elapsed.as_secs_f64();
    println!(
        "published {messages} in {:.3} s: {:.2} M messages/s, {:.2} M deliveries/s, {:.1} ns per message",
        elapsed.as_secs_f64(),
        rate / 1e6,
        rate * consumers as f64 / 1e6,
        elapsed.as_nanos() as f64 / messages as f64,
    );
    println!(
        "backpressure: hit {backpressure} times ({:.2} per message)",
        backpressure as f64 / messages as f64
    );
    println!("consumer  received  in order  max lag  final lag  finished after");
    let mut ok = true;
    for (idx, r) in reports.iter().enumerate() {
        let final_lag = buf.write_position() - buf.read_position(idx);
        println!(
            "{idx:>8}  {:>8}  {:>8}  {:>7}  {final_lag:>9}  {:>11.3} s",
            r.received,
            if r.in_order { "yes" } else { "NO" },
            r.max_lag,
            r.elapsed.as_secs_f64()
        );
        ok &= r.in_order && r.received == messages;
    }
    println!("{buf:?}");
    if ok {
        println!("ok: every consumer received every payload, in order");
        ExitCode::SUCCESS
    } else {
        println!("FAILED: a consumer missed or reordered payloads");
        ExitCode::FAILURE
    }
}
