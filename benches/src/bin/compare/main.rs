//! Side-by-side comparison of our buffer with its peers: throughput, latency and the wake-up
//! latency of a blocked consumer; tables on stdout, Markdown reports and SVG charts in a folder.
//!
//! - **Throughput** (`throughput.rs`): one producer thread, `N` consumer threads (1, 2, 4),
//!   payloads `u64` and `Arc<[u8; 64]>`, capacities 1024 and 4096. Every contender waits by the
//!   same policy when full or empty (spin a few times, then yield: see
//!   `multicast_buffer_benches::wait`). The contenders run round-robin inside each repetition
//!   (A B C .. A B C ..), so that drift in the machine's state spreads over all of them. A trial
//!   is timed from the start barrier to the moment the last consumer has its last value, and
//!   counts only if every consumer received every value in order; a contender that fails once is
//!   not reported for that configuration.
//! - **Latency** (`latency.rs`): the same contenders and code, with a probe that stamps each
//!   value just before it is published and records, in each consumer, when it arrived (an HDR
//!   histogram per consumer; see `multicast_buffer_benches::latency`), paced at a low fixed rate
//!   and saturated; and the wake-up latency of a consumer parked in its blocking receive (see
//!   `multicast_buffer_benches::wakeup`).
//!
//! ```text
//! cargo run --release -p multicast-buffer-benches --bin compare -- [--quick] [--help]
//! ```
//!
//! Writes `COMPARE.md`, `LATENCY.md`, `throughput.svg`, `latency.svg` and `wakeup.svg` to
//! `target/compare/` (or `--out-dir DIR`). Exits with status 1 if any contender lost,
//! duplicated or reordered a value, or stalled.

mod latency;
mod throughput;

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use multicast_buffer_benches::contenders::{registry, AnyContender, Kind};
use multicast_buffer_benches::payload::Payload;
use multicast_buffer_benches::wakeup::wake_registry;

const USAGE: &str = "\
compare: side-by-side comparison of multicast-buffer with peer crates: throughput, latency
percentiles, wake-up latency of a blocked consumer; tables on stdout, Markdown and SVG charts
in --out-dir

USAGE:
    cargo run --release -p multicast-buffer-benches --bin compare -- [OPTIONS]

WHAT TO RUN (default: everything):
    --throughput         only the throughput comparison
    --latency            only the latency runs (paced, saturated, wake-up)
    --quick              a smoke run of everything (CI): small sizes, too short to publish;
                         still fails if any contender loses, duplicates or reorders a value

THROUGHPUT:
    --messages N         messages per trial (default 1000000; --quick 100000)
    --runs R             timed runs per contender and configuration (default 7; --quick 3)
    --no-warmup          skip the untimed warm-up round of each configuration
    --consumers LIST     consumer counts, comma-separated (default 1,2,4)
    --capacity LIST      capacities, comma-separated powers of two (default 1024,4096)
    --payload LIST       u64 and/or arc (default u64,arc)

LATENCY (u64 payloads):
    --latency-consumers LIST   consumer counts (default 1,2)
    --latency-capacity N       capacity (default 1024)
    --interval-us N            paced: one value every N microseconds (default 10)
    --paced-messages N         paced: values per trial (default 50000; --quick 2000)
    --saturated-messages N     saturated: values per trial (default 200000; --quick 20000)
    --latency-runs R           trials per contender and configuration, merged (default 3;
                               --quick 1)
    --wake-consumers LIST      wake-up: consumer counts (default 1)
    --wake-samples N           wake-up: values per trial (default 2000; --quick 50)
    --wake-gap-us N            wake-up: the producer sleeps this long before each value
                               (default 1000)

EVERYTHING:
    --only LIST          peers whose name contains one of these words (ours is always run)
    --ours LIST          only the ours-variants whose name contains one of these words
    --timeout SECS       a trial that runs longer counts as stalled (default 30)
    --out-dir DIR        where the reports and charts go (default target/compare)
    --list               list the contenders and exit
    -h, --help           this text

The documented command that regenerates every table and chart in benches/:
    cargo run --release -p multicast-buffer-benches --bin compare -- --out-dir benches
";

/// The options of one run.
#[derive(Debug, Clone)]
struct Options {
    throughput: bool,
    latency: bool,
    quick: bool,
    messages: usize,
    runs: usize,
    warmup: bool,
    consumers: Vec<usize>,
    capacities: Vec<usize>,
    payloads: Vec<String>,
    latency_consumers: Vec<usize>,
    latency_capacity: usize,
    interval: Duration,
    paced_messages: usize,
    saturated_messages: usize,
    latency_runs: usize,
    wake_consumers: Vec<usize>,
    wake_samples: usize,
    wake_gap: Duration,
    only: Vec<String>,
    ours: Vec<String>,
    timeout: Duration,
    out_dir: PathBuf,
    list: bool,
    /// The command line, for the reports.
    command: String,
    /// The load average when the run started, for the reports.
    load_at_start: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            throughput: true,
            latency: true,
            quick: false,
            messages: 1_000_000,
            runs: 7,
            warmup: true,
            consumers: vec![1, 2, 4],
            capacities: vec![1024, 4096],
            payloads: vec!["u64".into(), "arc".into()],
            latency_consumers: vec![1, 2],
            latency_capacity: 1024,
            interval: Duration::from_micros(10),
            paced_messages: 50_000,
            saturated_messages: 200_000,
            latency_runs: 3,
            wake_consumers: vec![1],
            wake_samples: 2_000,
            wake_gap: Duration::from_micros(1_000),
            only: Vec::new(),
            ours: Vec::new(),
            timeout: Duration::from_secs(30),
            out_dir: default_out_dir(),
            list: false,
            command: String::new(),
            load_at_start: String::new(),
        }
    }
}

impl Options {
    /// Whether the registry's contender `name` of kind `kind` takes part.
    fn selects(&self, name: &str, kind: Kind) -> bool {
        let words = if kind == Kind::Ours { &self.ours } else { &self.only };
        words.is_empty() || words.iter().any(|word| name.contains(word.as_str()))
    }

    /// The contenders of the registry that take part, in table order.
    fn contenders<P: Payload>(&self) -> Vec<Box<dyn AnyContender<P>>> {
        registry::<P>().into_iter().filter(|c| self.selects(c.name(), c.kind())).collect()
    }
}

fn default_out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        manifest.parent().unwrap_or(manifest).join("target")
    });
    target.join("compare")
}

fn parse_list<T: std::str::FromStr>(flag: &str, text: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| item.trim().parse().map_err(|_| format!("{flag}: cannot parse {item:?}")))
        .collect()
}

fn parse_number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{flag}: not a number: {text:?}"))
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    options.command = if args.is_empty() {
        "cargo run --release -p multicast-buffer-benches --bin compare".into()
    } else {
        format!(
            "cargo run --release -p multicast-buffer-benches --bin compare -- {}",
            args.join(" ")
        )
    };
    // --quick first: explicit sizes given with it win.
    if args.iter().any(|arg| arg == "--quick") {
        options.quick = true;
        options.messages = 100_000;
        options.runs = 3;
        options.paced_messages = 2_000;
        options.saturated_messages = 20_000;
        options.latency_runs = 1;
        options.wake_samples = 50;
    }
    let (mut throughput_only, mut latency_only) = (false, false);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => {}
            "--throughput" => throughput_only = true,
            "--latency" => latency_only = true,
            "--messages" => options.messages = parse_number(&arg, &value()?)?,
            "--runs" => options.runs = parse_number(&arg, &value()?)?,
            "--no-warmup" => options.warmup = false,
            "--consumers" => options.consumers = parse_list(&arg, &value()?)?,
            "--capacity" => options.capacities = parse_list(&arg, &value()?)?,
            "--payload" => options.payloads = parse_list(&arg, &value()?)?,
            "--latency-consumers" => options.latency_consumers = parse_list(&arg, &value()?)?,
            "--latency-capacity" => options.latency_capacity = parse_number(&arg, &value()?)?,
            "--interval-us" => {
                options.interval = Duration::from_micros(parse_number(&arg, &value()?)?);
            }
            "--paced-messages" => options.paced_messages = parse_number(&arg, &value()?)?,
            "--saturated-messages" => options.saturated_messages = parse_number(&arg, &value()?)?,
            "--latency-runs" => options.latency_runs = parse_number(&arg, &value()?)?,
            "--wake-consumers" => options.wake_consumers = parse_list(&arg, &value()?)?,
            "--wake-samples" => options.wake_samples = parse_number(&arg, &value()?)?,
            "--wake-gap-us" => {
                options.wake_gap = Duration::from_micros(parse_number(&arg, &value()?)?);
            }
            "--only" => options.only = parse_list(&arg, &value()?)?,
            "--ours" => options.ours = parse_list(&arg, &value()?)?,
            "--timeout" => {
                options.timeout = Duration::from_secs(parse_number(&arg, &value()?)?);
            }
            "--out-dir" => options.out_dir = PathBuf::from(value()?),
            "--list" => options.list = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if throughput_only || latency_only {
        options.throughput = throughput_only;
        options.latency = latency_only;
    }
    let counts = [
        ("--messages", options.messages),
        ("--runs", options.runs),
        ("--paced-messages", options.paced_messages),
        ("--saturated-messages", options.saturated_messages),
        ("--latency-runs", options.latency_runs),
        ("--wake-samples", options.wake_samples),
    ];
    if let Some((flag, _)) = counts.iter().find(|(_, count)| *count == 0) {
        return Err(format!("{flag} must be at least 1"));
    }
    let capacities = options.capacities.iter().chain([&options.latency_capacity]);
    if let Some(bad) = capacities.into_iter().find(|c| !c.is_power_of_two()) {
        return Err(format!("capacity {bad} is not a power of two"));
    }
    let consumer_counts =
        options.consumers.iter().chain(&options.latency_consumers).chain(&options.wake_consumers);
    if let Some(bad) = consumer_counts.into_iter().find(|&&n| n == 0) {
        return Err(format!("{bad} is not a consumer count"));
    }
    if let Some(bad) = options.payloads.iter().find(|p| !matches!(p.as_str(), "u64" | "arc")) {
        return Err(format!("--payload: {bad:?} is neither u64 nor arc"));
    }
    Ok(options)
}

/// The progress line on stderr: which trial runs now, how many of how many, and an estimate
/// of the time left. On a terminal it is rewritten in place for every trial; otherwise (a CI
/// log) one line is written per configuration.
#[derive(Debug)]
struct Progress {
    total: usize,
    done: usize,
    started: Instant,
    terminal: bool,
    section: String,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            section: String::new(),
        }
    }

    /// A new configuration starts (`what`: mode, payload, consumers, ...).
    fn section(&mut self, what: String) {
        if !self.terminal {
            eprintln!("[{}/{}] {what} ...", self.done, self.total);
        }
        self.section = what;
    }

    /// The next trial starts: `what` names it inside the configuration (contender, round).
    fn trial(&mut self, what: &str) {
        self.done += 1;
        if !self.terminal {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = if self.done > 1 {
            let per_trial = elapsed / (self.done - 1) as f64;
            format!(", ~{:.0} s left", per_trial * (self.total + 1 - self.done) as f64)
        } else {
            String::new()
        };
        eprint!(
            "\r\x1b[2K[{}/{}] {} · {what}  ({elapsed:.0} s{left})",
            self.done, self.total, self.section
        );
        let _ = std::io::stderr().flush();
    }

    /// Clears the progress line (on a terminal) before a table is printed to stdout.
    fn clear(&self) {
        if self.terminal {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }

    /// A failure worth a line of its own.
    fn failure(&mut self, what: &str) {
        if self.terminal {
            eprint!("\r\x1b[2K");
        }
        eprintln!("  FAILED: {} · {what}", self.section);
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!(
                "\r\x1b[2K[{}/{}] done in {:.1} s",
                self.done,
                self.total,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

/// The CPU, hardware threads and architecture.
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

/// Today's date (UTC), as `YYYY-MM-DD`.
fn today() -> String {
    let days = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The load average (1, 5 and 15 minutes), as the kernel reports it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// A count with thousands separators: `1,000,000`.
fn grouped(count: usize) -> String {
    let digits = count.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index != 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Prints a table (header first) aligned, as plain text.
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

/// A table (header first) as Markdown, the first column left-aligned, the others right.
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

/// Writes `text` to `dir/name`, saying so on stdout.
fn write_file(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    match std::fs::write(&path, text) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(error) => eprintln!("could not write {}: {error}", path.display()),
    }
}

/// Renders `chart` to `dir/name`, saying so on stdout.
fn write_chart(dir: &Path, name: &str, chart: &multicast_buffer_benches::charts::Chart) {
    let path = dir.join(name);
    match multicast_buffer_benches::charts::render_svg(chart, &path) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(error) => eprintln!("could not write {}: {error}", path.display()),
    }
}

fn main() {
    let mut options = match parse_args() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    if options.list {
        for contender in registry::<u64>() {
            println!(
                "{:<30} {:?}: {}",
                contender.name(),
                contender.kind(),
                contender.description()
            );
        }
        for contender in wake_registry() {
            println!(
                "{:<30} {:?} (wake-up): {}",
                contender.name(),
                contender.kind(),
                contender.description()
            );
        }
        return;
    }
    if let Err(error) = std::fs::create_dir_all(&options.out_dir) {
        eprintln!("could not create {}: {error}", options.out_dir.display());
        std::process::exit(2);
    }
    let started = Instant::now();
    options.load_at_start = load_average();
    println!("machine: {} · {} · load average {}", machine(), today(), options.load_at_start);
    let mut total = 0;
    if options.throughput {
        total += throughput::trial_count(&options);
    }
    if options.latency {
        total += latency::trial_count(&options);
    }
    let mut progress = Progress::new(total);
    let mut failures: Vec<String> = Vec::new();
    if options.throughput {
        failures.extend(throughput::run(&options, &mut progress));
    }
    if options.latency {
        failures.extend(latency::run(&options, &mut progress));
    }
    progress.finish();
    println!("\ntotal time {:.1} s", started.elapsed().as_secs_f64());
    if !failures.is_empty() {
        eprintln!(
            "\n{} failed trial(s) (a value lost, duplicated or out of order, a stall, or a \
             configuration the contender cannot run):",
            failures.len()
        );
        for failure in &failures {
            eprintln!("  {failure}");
        }
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_get_separators() {
        assert_eq!(super::grouped(7), "7");
        assert_eq!(super::grouped(1_000), "1,000");
        assert_eq!(super::grouped(1_000_000), "1,000,000");
        assert_eq!(super::grouped(200_000), "200,000");
    }

    #[test]
    fn a_date_is_year_month_day() {
        let today = super::today();
        assert_eq!(today.len(), 10);
        assert!(today.starts_with("20"));
    }
}
