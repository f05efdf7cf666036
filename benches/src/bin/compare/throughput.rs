//! The throughput comparison: tables, `COMPARE.md` and `throughput.svg`.

use std::fmt::Write as _;
use std::time::Instant;

use multicast_buffer_benches::charts::{Chart, Panel, Series, YUnit};
use multicast_buffer_benches::contenders::{registry, AnyContender, Kind};
use multicast_buffer_benches::harness::Setup;
use multicast_buffer_benches::payload::{expected_checksum, Payload, Record};
use multicast_buffer_benches::wait::Policy;

use crate::{
    grouped, load_average, machine, markdown_table, print_plain, today, write_chart, write_file,
    Options, Progress,
};

/// One contender's results in one configuration.
#[derive(Debug)]
struct Row {
    name: &'static str,
    kind: Kind,
    /// Nanoseconds per message of each timed run.
    samples: Vec<f64>,
    /// Why it is not reported, once a trial failed.
    failure: Option<String>,
}

impl Row {
    fn median(&self) -> Option<f64> {
        if self.failure.is_some() || self.samples.is_empty() {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        Some(if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        })
    }

    fn min_max(&self) -> (f64, f64) {
        let min = self.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }
}

/// The results of one configuration.
#[derive(Debug)]
struct ConfigResult {
    payload: &'static str,
    consumers: usize,
    capacity: usize,
    rows: Vec<Row>,
}

impl ConfigResult {
    fn title(&self) -> String {
        format!(
            "{} · {} consumer{} · capacity {}",
            self.payload,
            self.consumers,
            if self.consumers == 1 { "" } else { "s" },
            self.capacity
        )
    }

    fn ours(&self) -> Vec<(&'static str, Option<f64>)> {
        self.rows
            .iter()
            .filter(|row| row.kind == Kind::Ours)
            .map(|r| (r.name, r.median()))
            .collect()
    }

    /// Table lines: a header, then one line per contender (plain text or Markdown).
    fn table(&self, markdown: bool) -> Vec<Vec<String>> {
        let ours = self.ours();
        let mut header: Vec<String> = vec![
            "contender".into(),
            "ns/msg (median)".into(),
            "ns/msg min–max".into(),
            "M msg/s per consumer".into(),
        ];
        header.extend(ours.iter().map(|(name, _)| format!("{name} ÷ this")));
        let mut lines = vec![header];
        for row in &self.rows {
            let name = if markdown { format!("`{}`", row.name) } else { row.name.to_string() };
            let mut line = vec![name];
            match (row.median(), &row.failure) {
                (Some(median), _) => {
                    let (min, max) = row.min_max();
                    line.push(format!("{median:.1}"));
                    line.push(format!("{min:.1}–{max:.1}"));
                    line.push(format!("{:.2}", 1e3 / median));
                    for (_, ours_median) in &ours {
                        // ours throughput / this throughput = this time / ours time.
                        line.push(match ours_median {
                            Some(ours_median) => format!("{:.2}×", median / ours_median),
                            None => "–".into(),
                        });
                    }
                }
                (None, failure) => {
                    let why = failure.as_deref().unwrap_or("no sample");
                    line.push(format!("FAILED, not reported: {why}"));
                    line.extend(std::iter::repeat_n(String::new(), 2 + ours.len()));
                }
            }
            lines.push(line);
        }
        lines
    }
}

/// How many trials [`run`] will start.
pub(crate) fn trial_count(options: &Options) -> usize {
    let rounds = options.runs + usize::from(options.warmup);
    let configs = options.capacities.len() * options.consumers.len();
    options
        .payloads
        .iter()
        .map(|payload| {
            let contenders = if payload == "u64" {
                options.contenders::<u64>().len()
            } else {
                options.contenders::<Record>().len()
            };
            configs * rounds * contenders
        })
        .sum()
}

/// Runs every contender on one configuration: an untimed warm-up round, then `runs` timed
/// rounds, each a round-robin over the contenders, starting one further along each round.
fn run_config<P: Payload>(
    contenders: &[Box<dyn AnyContender<P>>],
    options: &Options,
    consumers: usize,
    capacity: usize,
    progress: &mut Progress,
) -> ConfigResult {
    let messages = options.messages as u64;
    let checksum = expected_checksum::<P>(messages);
    let mut rows: Vec<Row> = contenders
        .iter()
        .map(|c| Row { name: c.name(), kind: c.kind(), samples: Vec::new(), failure: None })
        .collect();
    let rounds = options.runs + usize::from(options.warmup);
    for round in 0..rounds {
        let timed = !(options.warmup && round == 0);
        for step in 0..contenders.len() {
            let index = (round + step) % contenders.len();
            let what = if timed {
                format!(
                    "run {}/{} · {}",
                    round + usize::from(!options.warmup),
                    options.runs,
                    rows[index].name
                )
            } else {
                format!("warm-up · {}", rows[index].name)
            };
            progress.trial(&what);
            if rows[index].failure.is_some() {
                continue;
            }
            let setup = Setup::new(
                consumers,
                capacity,
                P::messages(options.messages),
                Instant::now() + options.timeout,
            );
            let trial = contenders[index].run(setup);
            match trial.verify(messages, checksum) {
                Ok(elapsed) if timed => {
                    rows[index].samples.push(elapsed.as_nanos() as f64 / messages as f64);
                }
                Ok(_) => {}
                Err(why) => {
                    progress.failure(&format!("{}: {why}", rows[index].name));
                    rows[index].failure = Some(why);
                }
            }
        }
    }
    ConfigResult { payload: P::NAME, consumers, capacity, rows }
}

fn run_payload<P: Payload>(
    options: &Options,
    results: &mut Vec<ConfigResult>,
    progress: &mut Progress,
) {
    let contenders = options.contenders::<P>();
    for &capacity in &options.capacities {
        for &consumers in &options.consumers {
            let started = Instant::now();
            let plural = if consumers == 1 { "" } else { "s" };
            progress.section(format!(
                "throughput · {} · {consumers} consumer{plural} · capacity {capacity}",
                P::NAME
            ));
            let result = run_config(&contenders, options, consumers, capacity, progress);
            progress.clear();
            println!("\n{}  ({:.1} s)", result.title(), started.elapsed().as_secs_f64());
            print_plain(&result.table(false));
            results.push(result);
        }
    }
}

/// The name of the column that compares with the faster of the disruptor variants.
const BEST_DISRUPTOR: &str = "best disruptor";

/// One line per configuration and ours-variant: the ratio of that variant's throughput to each
/// peer's (and to the baseline's, and to the faster disruptor variant's), medians.
fn summary(results: &[ConfigResult]) -> Vec<Vec<String>> {
    // Peers (and the baseline) in registry order, across all configurations.
    let mut peers: Vec<&'static str> = Vec::new();
    for row in results.iter().flat_map(|r| &r.rows).filter(|row| row.kind != Kind::Ours) {
        if !peers.contains(&row.name) {
            peers.push(row.name);
        }
    }
    let mut header = vec!["configuration".to_string(), "ours ÷ peer".to_string()];
    header.extend(peers.iter().map(|p| p.to_string()));
    header.push(BEST_DISRUPTOR.to_string());
    let mut lines = vec![header];
    for result in results {
        let best_disruptor = result
            .rows
            .iter()
            .filter(|row| row.name.starts_with("disruptor"))
            .filter_map(Row::median)
            .min_by(f64::total_cmp);
        for (ours_name, ours) in result.ours() {
            let mut line = vec![result.title(), ours_name.to_string()];
            let ratio = |peer: Option<f64>, present: bool| match (ours, peer) {
                (Some(ours), Some(peer)) => format!("{:.2}×", peer / ours),
                (None, _) => "ours failed".into(),
                (_, None) if present => "failed".into(),
                _ => "–".into(),
            };
            for peer in &peers {
                let row = result.rows.iter().find(|row| row.name == *peer);
                line.push(ratio(row.and_then(Row::median), row.is_some()));
            }
            let any_disruptor = result.rows.iter().any(|row| row.name.starts_with("disruptor"));
            line.push(ratio(best_disruptor, any_disruptor));
            lines.push(line);
        }
    }
    lines
}

/// The throughput chart: one panel per payload and capacity, M msg/s per consumer (median,
/// with the min–max of the runs) against the consumer count.
fn chart(results: &[ConfigResult], options: &Options) -> Chart {
    let counts = &options.consumers;
    let position =
        |consumers: usize| counts.iter().position(|&c| c == consumers).unwrap_or(0) as f64;
    let mut panels: Vec<Panel> = Vec::new();
    let mut keys: Vec<(&'static str, usize)> = Vec::new();
    for result in results {
        if !keys.contains(&(result.payload, result.capacity)) {
            keys.push((result.payload, result.capacity));
        }
    }
    for (payload, capacity) in keys {
        let configs: Vec<&ConfigResult> =
            results.iter().filter(|r| r.payload == payload && r.capacity == capacity).collect();
        let mut series: Vec<Series> = Vec::new();
        for config in &configs {
            for row in &config.rows {
                let Some(median) = row.median() else { continue };
                let (min, max) = row.min_max();
                let x = position(config.consumers);
                let entry = match series.iter_mut().position(|s| s.name == row.name) {
                    Some(index) => &mut series[index],
                    None => {
                        series.push(Series {
                            name: row.name.to_string(),
                            ours: row.kind == Kind::Ours,
                            points: Vec::new(),
                            ranges: Vec::new(),
                            markers: true,
                        });
                        series.last_mut().expect("just pushed")
                    }
                };
                entry.points.push((x, 1e3 / median));
                entry.ranges.push((x, 1e3 / max, 1e3 / min));
            }
        }
        for line in &mut series {
            line.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        // Registry order, so that every panel and the legend list the contenders alike.
        let order: Vec<&'static str> = registry::<u64>().iter().map(|c| c.name()).collect();
        series.sort_by_key(|s| order.iter().position(|name| *name == s.name).unwrap_or(usize::MAX));
        panels.push(Panel { title: format!("{payload} · capacity {capacity}"), series });
    }
    Chart {
        title: "Throughput: 1 producer, N consumers (higher is better)".into(),
        subtitle: format!(
            "{} · {} · median of {} runs of {} messages, bars: min–max\n{}",
            machine(),
            today(),
            options.runs,
            grouped(options.messages),
            options.command
        ),
        x_label: "consumer threads".into(),
        y_label: "M messages/s per consumer".into(),
        x_range: (-0.4, counts.len() as f64 - 0.6),
        x_ticks: counts.iter().enumerate().map(|(i, c)| (i as f64, c.to_string())).collect(),
        y_unit: YUnit::MessagesPerSecond,
        columns: options.capacities.len().clamp(1, 2),
        panels,
    }
}

/// Runs the throughput comparison, prints its tables, writes `COMPARE.md` and `throughput.svg`;
/// returns the failures.
pub(crate) fn run(options: &Options, progress: &mut Progress) -> Vec<String> {
    let started = Instant::now();
    println!(
        "\nTHROUGHPUT: {} messages per trial, {} timed runs{}; ns/msg = wall time / messages; \
         ratio = ours throughput / this throughput (> 1: ours is faster)",
        grouped(options.messages),
        options.runs,
        if options.warmup { " after one warm-up round" } else { "" }
    );
    let round_trip_before = round_trip();
    println!("cross-core round trip before: {}", round_trip_before);
    let mut results = Vec::new();
    for payload in &options.payloads {
        match payload.as_str() {
            "u64" => run_payload::<u64>(options, &mut results, progress),
            _ => run_payload::<Record>(options, &mut results, progress),
        }
    }
    let total = started.elapsed();
    let round_trip_after = round_trip();
    println!("cross-core round trip after: {}", round_trip_after);
    let summary = summary(&results);
    println!(
        "\nsummary: each ours-variant ÷ each peer (throughput ratio, medians; > 1: ours is faster)"
    );
    print_plain(&summary);
    println!("\nthroughput: {:.1} s", total.as_secs_f64());

    let mut md = String::new();
    let _ = writeln!(md, "# multicast-buffer: side-by-side comparison (throughput)\n");
    if options.quick {
        let _ = writeln!(md, "> A `--quick` smoke run: too short to publish.\n");
    }
    let _ = writeln!(
        md,
        "- machine: {}; date: {}; load average (1, 5, 15 min) at the start of the whole run: \
         {}, at the end of this part: {}",
        machine(),
        today(),
        options.load_at_start,
        load_average()
    );
    let _ = writeln!(md, "- command: `{}`", options.command);
    let _ = writeln!(
        md,
        "- {} messages per trial; {} timed runs per contender{}, round-robin over the contenders \
         inside each run; one producer thread, N consumer threads",
        grouped(options.messages),
        options.runs,
        if options.warmup { " after one untimed warm-up round" } else { "" }
    );
    let _ = writeln!(
        md,
        "- every contender waits the same way when full or empty: {} spin-loop hints, then \
         `yield_now` on every further attempt",
        Policy::THROUGHPUT.spins
    );
    let _ = writeln!(
        md,
        "- a trial is timed from the start barrier to the last consumer's last value, and counts \
         only if every consumer got every value in order; ns/msg = wall time / messages; \
         `X ÷ this` = X's throughput / this contender's throughput (> 1: X is faster)"
    );
    let _ = writeln!(
        md,
        "- cross-core round trip (two threads passing a token through one atomic, {} round trips; \
         median of 5 batches), to tell a noisy run: before the runs {}, after them {}",
        grouped(ROUND_TRIPS as usize),
        round_trip_before,
        round_trip_after
    );
    let _ = writeln!(md, "- chart: [`throughput.svg`](throughput.svg)");
    let _ = writeln!(md, "- total time of the throughput runs: {:.1} s\n", total.as_secs_f64());
    let _ = writeln!(md, "## Contenders\n");
    for contender in options.contenders::<u64>() {
        let _ = writeln!(md, "- `{}`: {}", contender.name(), contender.description());
    }
    let _ = writeln!(
        md,
        "\n## Summary: each ours-variant ÷ each peer\n\nThroughput ratios of medians (> 1: ours is \
         faster); `{BEST_DISRUPTOR}` is the faster of the two disruptor variants in that \
         configuration.\n"
    );
    md.push_str(&markdown_table(&summary));
    for result in &results {
        let _ = writeln!(md, "\n## {}\n", result.title());
        md.push_str(&markdown_table(&result.table(true)));
    }
    write_file(&options.out_dir, "COMPARE.md", &md);
    write_chart(&options.out_dir, "throughput.svg", &chart(&results, options));

    results
        .iter()
        .flat_map(|result| {
            result.rows.iter().filter_map(move |row| {
                let why = row.failure.as_ref()?;
                Some(format!("throughput · {} · {}: {why}", result.title(), row.name))
            })
        })
        .collect()
}

/// Round trips per batch of [`round_trip`].
const ROUND_TRIPS: u32 = 20_000;

/// The time of one round trip of a token between two threads through one atomic (each side
/// spins for its turn, yielding after a while): median over 5 batches, as text ("123 ns"). On an
/// idle machine with a core per thread this is a cache line's trip to the other core and back;
/// on a loaded or oversubscribed one it shows the scheduler, so it tells a noisy run.
fn round_trip() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    let token = AtomicU32::new(0);
    let wait_for = |value: u32| {
        let mut spins = 0u32;
        while token.load(Ordering::Acquire) != value {
            spins += 1;
            if spins < 4096 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    };
    let mut batches: Vec<f64> = (0..5)
        .map(|_| {
            token.store(0, Ordering::Relaxed);
            std::thread::scope(|s| {
                s.spawn(|| {
                    for i in 0..ROUND_TRIPS {
                        wait_for(2 * i + 1);
                        token.store(2 * i + 2, Ordering::Release);
                    }
                });
                let started = Instant::now();
                for i in 0..ROUND_TRIPS {
                    token.store(2 * i + 1, Ordering::Release);
                    wait_for(2 * i + 2);
                }
                started.elapsed().as_nanos() as f64 / f64::from(ROUND_TRIPS)
            })
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    format!("{:.0} ns", batches[2])
}
