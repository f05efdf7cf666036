//! Side-by-side cross-thread comparison of our buffer with its peers.
//!
//! One producer thread, `N` consumer threads (1, 2, 4), payloads `u64` and `Arc<[u8; 64]>`,
//! capacities 1024 and 4096. Every contender waits by the same policy when full or empty (spin a
//! few times, then yield: see `multicast_buffer_benches::wait`). The contenders run round-robin
//! inside each repetition (A B C .. A B C ..), so that drift in the machine's state spreads over
//! all of them. A trial is timed from the start barrier to the moment the last consumer has its
//! last value, and counts only if every consumer received every value in order; a contender
//! that fails once is not reported for that configuration.
//!
//! ```text
//! cargo run --release -p multicast-buffer-benches --bin compare -- [--quick] [--help]
//! ```
//!
//! Writes the tables to stdout and, as Markdown, to `target/compare.md` (or `--out PATH`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use multicast_buffer_benches::contenders::{registry, AnyContender, Kind};
use multicast_buffer_benches::harness::Setup;
use multicast_buffer_benches::payload::{expected_checksum, Payload, Record};

const USAGE: &str = "\
compare: side-by-side cross-thread comparison of multicast-buffer with peer crates

USAGE:
    cargo run --release -p multicast-buffer-benches --bin compare -- [OPTIONS]

OPTIONS:
    --quick              100,000 messages, 3 runs (a smoke run: too short to publish)
    --messages N         messages per trial (default 1000000)
    --runs R             timed runs per contender and configuration (default 7)
    --no-warmup          skip the untimed warm-up round of each configuration
    --consumers LIST     consumer counts, comma-separated (default 1,2,4)
    --capacity LIST      capacities, comma-separated powers of two (default 1024,4096)
    --payload LIST       u64 and/or arc (default u64,arc)
    --only LIST          peers whose name contains one of these words (ours is always run)
    --ours LIST          only the ours-variants whose name contains one of these words
                         (default: all of them: ours-index, ours-handles, ours-batch)
    --timeout SECS       a trial that runs longer counts as stalled (default 30)
    --out PATH           the Markdown report (default target/compare.md)
    --list               list the contenders and exit
    -h, --help           this text
";

/// The options of one run.
#[derive(Debug, Clone)]
struct Options {
    messages: usize,
    runs: usize,
    warmup: bool,
    consumers: Vec<usize>,
    capacities: Vec<usize>,
    payloads: Vec<String>,
    only: Vec<String>,
    ours: Vec<String>,
    timeout: Duration,
    out: PathBuf,
    list: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            messages: 1_000_000,
            runs: 7,
            warmup: true,
            consumers: vec![1, 2, 4],
            capacities: vec![1024, 4096],
            payloads: vec!["u64".into(), "arc".into()],
            only: Vec::new(),
            ours: Vec::new(),
            timeout: Duration::from_secs(30),
            out: default_out(),
            list: false,
        }
    }
}

fn default_out() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        manifest.parent().unwrap_or(manifest).join("target")
    });
    target.join("compare.md")
}

fn parse_list<T: std::str::FromStr>(flag: &str, text: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| item.trim().parse().map_err(|_| format!("{flag}: cannot parse {item:?}")))
        .collect()
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => {
                options.messages = 100_000;
                options.runs = 3;
            }
            "--messages" => {
                options.messages = value()?.parse().map_err(|_| "--messages: not a number")?;
            }
            "--runs" => options.runs = value()?.parse().map_err(|_| "--runs: not a number")?,
            "--no-warmup" => options.warmup = false,
            "--consumers" => options.consumers = parse_list("--consumers", &value()?)?,
            "--capacity" => options.capacities = parse_list("--capacity", &value()?)?,
            "--payload" => options.payloads = parse_list("--payload", &value()?)?,
            "--only" => options.only = parse_list("--only", &value()?)?,
            "--ours" => options.ours = parse_list("--ours", &value()?)?,
            "--timeout" => {
                let secs: u64 = value()?.parse().map_err(|_| "--timeout: not a number")?;
                options.timeout = Duration::from_secs(secs);
            }
            "--out" => options.out = PathBuf::from(value()?),
            "--list" => options.list = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if options.messages == 0 || options.runs == 0 {
        return Err("--messages and --runs must be at least 1".into());
    }
    if let Some(bad) = options.capacities.iter().find(|c| !c.is_power_of_two()) {
        return Err(format!("--capacity: {bad} is not a power of two"));
    }
    if let Some(bad) = options.consumers.iter().find(|&&n| n == 0) {
        return Err(format!("--consumers: {bad} is not a consumer count"));
    }
    if let Some(bad) = options.payloads.iter().find(|p| !matches!(p.as_str(), "u64" | "arc")) {
        return Err(format!("--payload: {bad:?} is neither u64 nor arc"));
    }
    Ok(options)
}

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

fn print_plain(lines: &[Vec<String>]) {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines.iter().filter_map(|l| l.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)
        })
        .collect();
    for (index, line) in lines.iter().enumerate() {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 || cell.starts_with("FAILED") {
                let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
            }
        }
        println!("  {}", text.trim_end());
        if index == 0 {
            println!("  {}", "-".repeat(widths.iter().map(|w| w + 2).sum::<usize>() - 2));
        }
    }
}

fn markdown_table(lines: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        let _ = writeln!(out, "| {} |", line.join(" | "));
        if index == 0 {
            let align: Vec<&str> =
                (0..line.len()).map(|c| if c == 0 { "---" } else { "---:" }).collect();
            let _ = writeln!(out, "| {} |", align.join(" | "));
        }
    }
    out
}

/// Runs every contender on one configuration: an untimed warm-up round, then `runs` timed
/// rounds, each a round-robin over the contenders, starting one further along each round.
fn run_config<P: Payload>(
    contenders: &[Box<dyn AnyContender<P>>],
    options: &Options,
    consumers: usize,
    capacity: usize,
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
                    eprintln!("  {} FAILED: {why}", rows[index].name);
                    rows[index].failure = Some(why);
                }
            }
        }
    }
    ConfigResult { payload: P::NAME, consumers, capacity, rows }
}

fn run_payload<P: Payload>(options: &Options, results: &mut Vec<ConfigResult>) {
    let contenders: Vec<Box<dyn AnyContender<P>>> = registry::<P>()
        .into_iter()
        .filter(|c| {
            let words = if c.kind() == Kind::Ours { &options.ours } else { &options.only };
            words.is_empty() || words.iter().any(|word| c.name().contains(word.as_str()))
        })
        .collect();
    for &capacity in &options.capacities {
        for &consumers in &options.consumers {
            let started = Instant::now();
            let result = run_config(&contenders, options, consumers, capacity);
            println!("\n{}  ({:.1} s)", result.title(), started.elapsed().as_secs_f64());
            print_plain(&result.table(false));
            results.push(result);
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let threads = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cpu}, {threads} hardware threads available, {}", std::env::consts::ARCH)
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

fn main() {
    let options = match parse_args() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    if options.list {
        for contender in registry::<u64>() {
            println!(
                "{:<18} {:?}: {}",
                contender.name(),
                contender.kind(),
                contender.description()
            );
        }
        return;
    }
    let started = Instant::now();
    println!("machine: {}", machine());
    println!(
        "{} messages per trial, {} timed runs{}; ns/msg = wall time / messages; \
         ratio = ours throughput / this throughput (> 1: ours is faster)",
        options.messages,
        options.runs,
        if options.warmup { " after one warm-up round" } else { "" }
    );
    let mut results = Vec::new();
    for payload in &options.payloads {
        match payload.as_str() {
            "u64" => run_payload::<u64>(&options, &mut results),
            _ => run_payload::<Record>(&options, &mut results),
        }
    }
    let total = started.elapsed();
    let summary = summary(&results);
    println!(
        "\nsummary: each ours-variant ÷ each peer (throughput ratio, medians; > 1: ours is faster)"
    );
    print_plain(&summary);
    println!("\ntotal time {:.1} s", total.as_secs_f64());

    let mut md = String::new();
    let _ = writeln!(md, "# multicast-buffer: side-by-side comparison\n");
    let _ = writeln!(md, "- machine: {}", machine());
    let _ = writeln!(
        md,
        "- {} messages per trial; {} timed runs per contender{}, round-robin over the contenders \
         inside each run; one producer thread, N consumer threads",
        options.messages,
        options.runs,
        if options.warmup { " after one untimed warm-up round" } else { "" }
    );
    let _ = writeln!(
        md,
        "- every contender waits the same way when full or empty: {} spin-loop hints, then \
         `yield_now` on every further attempt",
        multicast_buffer_benches::wait::SPIN_TRIES
    );
    let _ = writeln!(
        md,
        "- a trial is timed from the start barrier to the last consumer's last value, and counts \
         only if every consumer got every value in order; ns/msg = wall time / messages; \
         `X ÷ this` = X's throughput / this contender's throughput (> 1: X is faster)"
    );
    let _ = writeln!(md, "- total time of this run: {:.1} s\n", total.as_secs_f64());
    let _ = writeln!(md, "## Contenders\n");
    for contender in registry::<u64>() {
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
    if let Some(dir) = options.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&options.out, md) {
        Ok(()) => println!("wrote {}", options.out.display()),
        Err(error) => eprintln!("could not write {}: {error}", options.out.display()),
    }
}
