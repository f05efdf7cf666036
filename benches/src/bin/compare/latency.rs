//! The latency runs: paced and saturated publish-to-receive latency, and the wake-up latency of
//! a blocked consumer; tables, `LATENCY.md`, `latency.svg` and `wakeup.svg`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use multicast_buffer_benches::charts::{Chart, Panel, Series, YUnit};
use multicast_buffer_benches::contenders::Kind;
use multicast_buffer_benches::harness::Setup;
use multicast_buffer_benches::latency::{
    clock_overhead, clock_source, format_ns, percentile_curve, Latency, Summary, PERCENTILES,
};
use multicast_buffer_benches::payload::{expected_checksum, Payload};
use multicast_buffer_benches::wait::Policy;
use multicast_buffer_benches::wakeup::{wake_registry, WakeContender, WakeSetup};

use crate::{
    grouped, load_average, machine, markdown_table, print_plain, today, write_chart, write_file,
    Options, Progress,
};

/// How the producer publishes in a latency configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rate {
    /// One value per interval.
    Paced(Duration),
    /// As fast as the queue takes them.
    Saturated,
}

impl Rate {
    fn label(self) -> String {
        match self {
            Self::Paced(interval) => format!("paced, 1 value / {} µs", interval.as_micros()),
            Self::Saturated => "saturated".into(),
        }
    }

    fn short(self) -> &'static str {
        match self {
            Self::Paced(_) => "paced",
            Self::Saturated => "saturated",
        }
    }
}

/// One contender's merged histogram in one configuration.
#[derive(Debug)]
struct Row {
    name: &'static str,
    kind: Kind,
    hist: Option<Histogram<u64>>,
    failure: Option<String>,
}

impl Row {
    fn new(name: &'static str, kind: Kind) -> Self {
        Self { name, kind, hist: None, failure: None }
    }

    fn add(&mut self, hist: &Histogram<u64>) {
        match &mut self.hist {
            Some(merged) => merged.add(hist).expect("histograms of the same bounds"),
            None => self.hist = Some(hist.clone()),
        }
    }

    /// The summary, unless the contender failed or recorded nothing.
    fn summary(&self) -> Option<Summary> {
        match (&self.failure, &self.hist) {
            (None, Some(hist)) if !hist.is_empty() => Some(Summary::of(hist)),
            _ => None,
        }
    }
}

/// The results of one configuration (a rate and a consumer count, or a wake-up run).
#[derive(Debug)]
struct Config {
    title: String,
    /// The column name in the summary table.
    column: String,
    rows: Vec<Row>,
}

impl Config {
    /// Table lines: a header, then one line per contender.
    fn table(&self, markdown: bool) -> Vec<Vec<String>> {
        let mut header = vec!["contender".to_string(), "samples".to_string()];
        header.extend(PERCENTILES.iter().map(|(label, _)| label.to_string()));
        header.extend(["max".to_string(), "mean".to_string()]);
        let mut lines = vec![header];
        for row in &self.rows {
            let name = if markdown { format!("`{}`", row.name) } else { row.name.to_string() };
            let mut line = vec![name];
            match row.summary() {
                Some(summary) => {
                    line.push(summary.samples.to_string());
                    line.extend(summary.percentiles.iter().map(|&ns| format_ns(ns)));
                    line.push(format_ns(summary.max));
                    line.push(format_ns(summary.mean.round() as u64));
                }
                None => {
                    let why = row.failure.as_deref().unwrap_or("no sample");
                    line.push(format!("FAILED, not reported: {why}"));
                    line.extend(std::iter::repeat_n(String::new(), PERCENTILES.len() + 2));
                }
            }
            lines.push(line);
        }
        lines
    }

    fn failures(&self) -> impl Iterator<Item = String> + '_ {
        self.rows.iter().filter_map(move |row| {
            let why = row.failure.as_ref()?;
            Some(format!("{} · {}: {why}", self.title, row.name))
        })
    }
}

fn consumers_label(consumers: usize) -> String {
    format!("{consumers} consumer{}", if consumers == 1 { "" } else { "s" })
}

/// The wait policy of a latency configuration with `consumers` consumers (and one producer).
fn latency_policy(consumers: usize) -> Policy {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Policy::latency_for(consumers + 1, cores)
}

fn rates(options: &Options) -> [Rate; 2] {
    [Rate::Paced(options.interval), Rate::Saturated]
}

fn wake_contenders(options: &Options) -> Vec<Box<dyn WakeContender>> {
    wake_registry().into_iter().filter(|c| options.selects(c.name(), c.kind())).collect()
}

/// How many trials [`run`] will start.
pub(crate) fn trial_count(options: &Options) -> usize {
    let contenders = options.contenders::<u64>();
    let baselines = contenders.iter().filter(|c| c.kind() == Kind::Baseline).count();
    // Paced: every contender; saturated: all but the baseline.
    let per_count = 2 * contenders.len() - baselines;
    options.latency_consumers.len() * options.latency_runs * per_count
        + options.wake_consumers.len() * wake_contenders(options).len()
}

/// Runs every contender `options.latency_runs` times (round-robin) at one rate and consumer
/// count, merging each contender's histograms.
fn run_config(options: &Options, rate: Rate, consumers: usize, progress: &mut Progress) -> Config {
    // The baseline has no backpressure: saturated, it would measure how far its producer runs
    // ahead, not a floor. Paced, it is the floor (one cache line moved, plus the clock).
    let contenders: Vec<_> = options
        .contenders::<u64>()
        .into_iter()
        .filter(|c| rate != Rate::Saturated || c.kind() != Kind::Baseline)
        .collect();
    let messages = match rate {
        Rate::Paced(_) => options.paced_messages,
        Rate::Saturated => options.saturated_messages,
    };
    let checksum = expected_checksum::<u64>(messages as u64);
    let interval = match rate {
        Rate::Paced(interval) => Some(interval),
        Rate::Saturated => None,
    };
    let title = format!(
        "{} · {} · capacity {} · {} spins",
        rate.label(),
        consumers_label(consumers),
        options.latency_capacity,
        latency_policy(consumers).spins
    );
    progress.section(format!("latency · {title}"));
    let wait = latency_policy(consumers);
    let mut rows: Vec<Row> = contenders.iter().map(|c| Row::new(c.name(), c.kind())).collect();
    for round in 0..options.latency_runs {
        for step in 0..contenders.len() {
            let index = (round + step) % contenders.len();
            progress.trial(&format!(
                "run {}/{} · {}",
                round + 1,
                options.latency_runs,
                rows[index].name
            ));
            if rows[index].failure.is_some() {
                continue;
            }
            let setup = Setup {
                consumers,
                capacity: options.latency_capacity,
                messages: u64::messages(messages),
                deadline: Instant::now() + options.timeout,
                wait,
                probe: Latency::new(messages, interval),
            };
            let trial = contenders[index].run_latency(setup);
            match trial.verify(messages as u64, checksum) {
                Ok(_) => match trial.latency() {
                    Some(hist) => rows[index].add(&hist),
                    None => rows[index].failure = Some("recorded no latency".into()),
                },
                Err(why) => {
                    progress.failure(&format!("{}: {why}", rows[index].name));
                    rows[index].failure = Some(why);
                }
            }
        }
    }
    Config { title, column: format!("{}, {}", consumers_label(consumers), rate.short()), rows }
}

fn run_wake(options: &Options, consumers: usize, progress: &mut Progress) -> Config {
    let title = format!(
        "wake-up of a parked consumer · {} · {} µs between values",
        consumers_label(consumers),
        options.wake_gap.as_micros()
    );
    progress.section(title.clone());
    let mut rows = Vec::new();
    for contender in wake_contenders(options) {
        progress.trial(contender.name());
        let setup = WakeSetup {
            consumers,
            capacity: options.latency_capacity,
            samples: options.wake_samples,
            gap: options.wake_gap,
            deadline: Instant::now() + options.timeout,
        };
        let trial = contender.run(&setup);
        let mut row = Row::new(contender.name(), contender.kind());
        row.add(&trial.latency);
        let expected = (options.wake_samples * consumers) as u64;
        if let Some(why) = trial.error {
            progress.failure(&format!("{}: {why}", row.name));
            row.failure = Some(why);
        } else if trial.latency.len() != expected {
            let why = format!("{} samples instead of {expected}", trial.latency.len());
            progress.failure(&format!("{}: {why}", row.name));
            row.failure = Some(why);
        }
        rows.push(row);
    }
    Config { title, column: format!("wake-up, {}", consumers_label(consumers)), rows }
}

/// The p50 / p99 of every contender in every configuration: one row per contender, one column
/// per configuration.
fn summary_table(configs: &[&Config], markdown: bool) -> Vec<Vec<String>> {
    let mut names: Vec<(&'static str, Kind)> = Vec::new();
    for row in configs.iter().flat_map(|config| &config.rows) {
        if !names.iter().any(|(name, _)| *name == row.name) {
            names.push((row.name, row.kind));
        }
    }
    let mut header = vec!["contender".to_string()];
    header.extend(configs.iter().map(|config| format!("{}: p50 / p99", config.column)));
    let mut lines = vec![header];
    for (name, kind) in names {
        let mut line = vec![match (markdown, kind) {
            (true, Kind::Ours) => format!("**`{name}`**"),
            (true, _) => format!("`{name}`"),
            (false, _) => name.to_string(),
        }];
        for config in configs {
            let row = config.rows.iter().find(|row| row.name == name);
            line.push(match row.map(|row| (row.summary(), row.failure.is_some())) {
                Some((Some(summary), _)) => {
                    format!("{} / {}", format_ns(summary.p50()), format_ns(summary.p99()))
                }
                Some((None, true)) => "failed".into(),
                _ => "–".into(),
            });
        }
        lines.push(line);
    }
    lines
}

/// The latency labels of the x axis: x = log10(1 / (1 - q)).
const QUANTILE_TICKS: [&str; 7] = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"];

/// A percentile-distribution chart of `configs`, one panel each.
fn chart(title: &str, subtitle: String, configs: &[&Config], columns: usize) -> Chart {
    let mut widest = 1.0f64;
    let panels: Vec<Panel> = configs
        .iter()
        .map(|config| Panel {
            title: config.title.clone(),
            series: config
                .rows
                .iter()
                .filter(|row| row.summary().is_some())
                .filter_map(|row| {
                    let points = percentile_curve(row.hist.as_ref()?);
                    widest = widest.max(points.last().map_or(0.0, |p| p.0));
                    Some(Series {
                        name: row.name.to_string(),
                        ours: row.kind == Kind::Ours,
                        points,
                        ranges: Vec::new(),
                        markers: false,
                    })
                })
                .collect(),
        })
        .collect();
    let last = (widest.ceil() as usize).min(QUANTILE_TICKS.len() - 1);
    Chart {
        title: title.into(),
        subtitle,
        x_label: "percentile (of all values, all consumers)".into(),
        y_label: "latency".into(),
        x_range: (0.0, last as f64),
        x_ticks: (0..=last).map(|x| (x as f64, QUANTILE_TICKS[x].to_string())).collect(),
        y_unit: YUnit::Nanoseconds,
        columns,
        panels,
    }
}

/// Runs the latency and wake-up configurations, prints their tables, writes `LATENCY.md`,
/// `latency.svg` and `wakeup.svg`; returns the failures.
pub(crate) fn run(options: &Options, progress: &mut Progress) -> Vec<String> {
    let started = Instant::now();
    let clock = Summary::of(&clock_overhead(1_000_000));
    let source = clock_source().unwrap_or_else(|| "unknown".into());
    let clock_line = format!(
        "clock: std::time::Instant (clock source {source}); two back-to-back reads differ by \
         p50 {} / p99 {} / max {}: every sample includes about one such read",
        format_ns(clock.p50()),
        format_ns(clock.p99()),
        format_ns(clock.max)
    );
    println!("\nLATENCY: {clock_line}");
    let mut configs = Vec::new();
    for &consumers in &options.latency_consumers {
        for rate in rates(options) {
            let config = run_config(options, rate, consumers, progress);
            progress.clear();
            println!("\n{}", config.title);
            print_plain(&config.table(false));
            configs.push(config);
        }
    }
    let mut wakes = Vec::new();
    for &consumers in &options.wake_consumers {
        let config = run_wake(options, consumers, progress);
        progress.clear();
        println!("\n{}", config.title);
        print_plain(&config.table(false));
        wakes.push(config);
    }
    let latency_refs: Vec<&Config> = configs.iter().collect();
    let wake_refs: Vec<&Config> = wakes.iter().collect();
    println!("\nsummary: p50 / p99 (publish to receive, each consumer)");
    print_plain(&summary_table(&latency_refs, false));
    if !wakes.is_empty() {
        println!("\nsummary: wake-up of a parked consumer, p50 / p99");
        print_plain(&summary_table(&wake_refs, false));
    }
    let total = started.elapsed();
    println!("\nlatency: {:.1} s", total.as_secs_f64());

    let md = report(options, &clock_line, &configs, &wakes, total);
    write_file(&options.out_dir, "LATENCY.md", &md);
    let subtitle = |what: &str| format!("{} · {}\n{what}\n{}", machine(), today(), options.command);
    if !configs.is_empty() {
        let what = format!(
            "{} values paced / {} saturated per trial, {} trials merged; clock read p50 {}",
            grouped(options.paced_messages),
            grouped(options.saturated_messages),
            options.latency_runs,
            format_ns(clock.p50())
        );
        let chart = chart(
            "Latency, publish to each consumer: percentile distribution (lower is better)",
            subtitle(&what),
            &latency_refs,
            2,
        );
        write_chart(&options.out_dir, "latency.svg", &chart);
    }
    if !wakes.is_empty() {
        let what = format!(
            "{} values, {} µs apart; clock read p50 {}",
            grouped(options.wake_samples),
            options.wake_gap.as_micros(),
            format_ns(clock.p50())
        );
        let chart = chart(
            "Wake-up latency of a parked consumer (lower is better)",
            subtitle(&what),
            &wake_refs,
            wakes.len().clamp(1, 2),
        );
        write_chart(&options.out_dir, "wakeup.svg", &chart);
    }
    configs.iter().chain(&wakes).flat_map(Config::failures).collect()
}

fn report(
    options: &Options,
    clock_line: &str,
    configs: &[Config],
    wakes: &[Config],
    total: Duration,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# multicast-buffer: latency\n");
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
    let _ = writeln!(md, "- {clock_line}");
    let _ = writeln!(
        md,
        "- latency = the time from just before the producer offers value `i` to the queue to the \
         moment a consumer has it (a timestamp in a side array indexed by `i`; the consumer reads \
         the clock as soon as its receive call hands the value over), recorded for every value \
         and every consumer in an HDR histogram (3 significant digits); every value is checked \
         (in order, none lost or duplicated) before a trial counts"
    );
    let _ = writeln!(
        md,
        "- paced: one value every {} µs (the producer waits for each value's turn, yielding while \
         more than 2 µs remain), {} values per trial, so that queueing does not dominate; the \
         baseline (no queue) is the floor: one cache line moved between cores, plus the clock. \
         Saturated: as fast as the queue takes them, {} values per trial; a value's latency then \
         includes the producer's wait for room and the time it sits in a full queue, so it is \
         about capacity × the consumer's time per value wherever the consumer is the slower side, \
         and small where the producer is (the baseline, which has no backpressure, is left out). \
         {} trials per contender and configuration, round-robin over the contenders, merged; \
         u64 values, capacity {}",
        options.interval.as_micros(),
        grouped(options.paced_messages),
        grouped(options.saturated_messages),
        options.latency_runs,
        options.latency_capacity
    );
    let _ = writeln!(
        md,
        "- every contender waits the same way when empty or full: a number of spin-loop hints, \
         then `yield_now` on every further attempt. {} spins where the producer and every \
         consumer have a hardware thread of their own (so that a waiting consumer is polling, \
         not inside `yield_now`, when the value comes), {} (the throughput runs' policy) where \
         they do not ({} hardware threads here); each table's title says which",
        Policy::LATENCY.spins,
        Policy::THROUGHPUT.spins,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    let _ = writeln!(
        md,
        "- wake-up: one value in flight; the producer waits until every consumer has the \
         previous value, sleeps {} µs (so that each consumer is parked in its blocking receive), \
         then publishes; {} values per trial",
        options.wake_gap.as_micros(),
        options.wake_samples
    );
    let _ = writeln!(
        md,
        "- charts: [`latency.svg`](latency.svg), [`wakeup.svg`](wakeup.svg) (x: percentile on a \
         log10(1 / (1 − q)) scale, as HdrHistogram plots it)"
    );
    let _ = writeln!(md, "- total time of the latency runs: {:.1} s\n", total.as_secs_f64());
    let refs: Vec<&Config> = configs.iter().collect();
    if !refs.is_empty() {
        let _ = writeln!(md, "## Summary: p50 / p99, publish to receive\n");
        md.push_str(&markdown_table(&summary_table(&refs, true)));
    }
    let wake_refs: Vec<&Config> = wakes.iter().collect();
    if !wake_refs.is_empty() {
        let _ = writeln!(md, "\n## Summary: wake-up of a parked consumer, p50 / p99\n");
        md.push_str(&markdown_table(&summary_table(&wake_refs, true)));
    }
    for config in configs.iter().chain(wakes) {
        let _ = writeln!(md, "\n## {}\n", config.title);
        md.push_str(&markdown_table(&config.table(true)));
    }
    let _ = writeln!(md, "\n## Contenders\n");
    for contender in options.contenders::<u64>() {
        let _ = writeln!(md, "- `{}`: {}", contender.name(), contender.description());
    }
    for contender in wake_contenders(options) {
        let _ = writeln!(md, "- `{}` (wake-up): {}", contender.name(), contender.description());
    }
    md
}
