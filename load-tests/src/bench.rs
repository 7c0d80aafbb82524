//! `make bench`: the local stack binary started once per lock mode as a child process, its
//! addresses read from its banner, every scenario run against it, the stack stopped with SIGTERM;
//! then the hot-product phase under AWS conditions, a stack per run (`hot`); then the report.
//! `--only` runs one phase and keeps the report's other sections; `--only partitions` reruns the
//! older phase of the flash sale over 1 and 16 shards under the partition limit alone
//! (`partitions`), which the whole bench no longer runs.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::client::Api;
use crate::hot::{self, HotPlan};
use crate::outcome::{ScenarioResult, Verdict};
use crate::partitions::{self, PartitionPlan};
use crate::report::{self, ModeRun, StackLog};
use crate::scenarios::{Scenario, Sizes, Target};

/// How long the stack may take to print its banner (a cold emulator start included).
const START_LIMIT: Duration = Duration::from_secs(180);
/// How long a SIGTERM'd stack may take to stop before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// What `load-test bench` was asked for.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The `local-stack` binary.
    pub stack_bin: PathBuf,
    /// The markdown report; its charts go to the folder named after it, next to it.
    pub out: PathBuf,
    /// Shrunk sizes.
    pub quick: bool,
    /// Every JSON line goes here too.
    pub json_out: Option<PathBuf>,
    /// Where other tools leave their figures (`target/bench`).
    pub extra_dir: PathBuf,
    /// The scenarios to run.
    pub scenarios: Vec<Scenario>,
    /// The secret the stack signs with.
    pub jwt_secret: String,
    /// Only this phase (`--only locks|hot|partitions`); `None`: locks, then hot.
    pub only: Option<Phase>,
    /// Only the hot-product runs with these labels (`S=8 lock-free`); `None`: all.
    pub hot_runs: Option<Vec<String>>,
}

/// A phase of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every scenario in both `STOCK_LOCKS` modes.
    Locks,
    /// The flash sale over 1 and 16 stock shards under the emulated partition limit (only with
    /// `--only partitions`).
    Partitions,
    /// A hot product over 1, 8 and 64 stock shards under AWS conditions.
    Hot,
}

impl std::str::FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "locks" => Ok(Phase::Locks),
            "partitions" => Ok(Phase::Partitions),
            "hot" => Ok(Phase::Hot),
            other => Err(format!(
                "unknown phase {other:?}; expected locks, hot or partitions"
            )),
        }
    }
}

/// The addresses a stack's banner announces.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Banner {
    /// `HTTP API`.
    pub http: Option<String>,
    /// `WebSocket API` (without the `/?token=<JWT>` placeholder).
    pub ws: Option<String>,
    /// `AWS endpoint`.
    pub aws: Option<String>,
    /// `Order queue`.
    pub queue: Option<String>,
}

impl Banner {
    /// Takes what `line` announces, if anything.
    pub fn read_line(&mut self, line: &str) {
        let line = line.trim_start();
        let first_word = |rest: &str| rest.split_whitespace().next().map(str::to_owned);
        if let Some(rest) = line.strip_prefix("HTTP API") {
            self.http = first_word(rest);
        } else if let Some(rest) = line.strip_prefix("WebSocket API") {
            self.ws = first_word(rest).map(|url| {
                url.split("/?token=")
                    .next()
                    .unwrap_or(&url)
                    .trim_end_matches('/')
                    .to_owned()
            });
        } else if let Some(rest) = line.strip_prefix("AWS endpoint") {
            self.aws = first_word(rest);
        } else if let Some(rest) = line.strip_prefix("Order queue") {
            self.queue = first_word(rest);
        }
    }

    /// Whether every address was read.
    pub fn complete(&self) -> bool {
        self.http.is_some() && self.ws.is_some() && self.aws.is_some() && self.queue.is_some()
    }
}

/// What the benchmark's stacks run with, besides their ports and logging.
const BENCH_SETTINGS: &[(&str, &str)] = &[
    // Off: the buyers of a sale are few users ordering fast, and the limit is at most 10,000 a
    // minute (`shared/src/config.rs`), which a sale would meet.
    ("RATE_LIMIT_PER_MINUTE", "0"),
    ("PAYMENT_SUCCESS_RATE", "1"),
    ("HOLD_TTL_SECONDS", "3"),
    ("HOLD_SWEEP_SECONDS", "1"),
];

/// A running `local-stack` child and what its output said.
pub struct StackProcess {
    child: Child,
    /// Its addresses.
    pub banner: Banner,
    warnings: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    samples: Arc<Mutex<Vec<String>>>,
    warning_kinds: Arc<Mutex<BTreeMap<String, u64>>>,
    log_path: PathBuf,
}

impl StackProcess {
    /// Starts `bin` with the bench settings and `env` (`STOCK_LOCKS`, ...), logging its output
    /// to `log_path`; returns once its banner has been read.
    pub async fn start(bin: &Path, env: &[(&str, &str)], log_path: &Path) -> anyhow::Result<Self> {
        Self::launch(bin, BENCH_SETTINGS, env, log_path).await
    }

    /// Starts `bin` with the shipped defaults and `env`: the stack the cost scenario prices.
    pub async fn start_shipped(
        bin: &Path,
        env: &[(&str, &str)],
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        Self::launch(bin, &[], env, log_path).await
    }

    async fn launch(
        bin: &Path,
        settings: &[(&str, &str)],
        env: &[(&str, &str)],
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .envs([
                ("HTTP_PORT", "0"),
                ("WS_PORT", "0"),
                ("AWS_PORT", "0"),
                ("LOG_FORMAT", "json"),
                // Failed conditions (a busy lock, sold-out stock) are answers, not faults: the
                // emulators' own 4xx lines stay out.
                ("RUST_LOG", "warn,dynoxide=error,rustack=error"),
            ])
            .envs(settings.iter().copied())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        if let Some(parent) = log_path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let log = Arc::new(Mutex::new(
            std::fs::File::create(log_path)
                .with_context(|| format!("creating {}", log_path.display()))?,
        ));
        let warnings = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let warning_kinds = Arc::new(Mutex::new(BTreeMap::new()));
        let (lines, banner_lines) = mpsc::channel::<String>();
        let stdout = child.stdout.take().context("the stack's stdout")?;
        let stderr = child.stderr.take().context("the stack's stderr")?;
        for (stream, lines) in [
            (
                Box::new(stdout) as Box<dyn std::io::Read + Send>,
                Some(lines),
            ),
            (Box::new(stderr), None),
        ] {
            let log = Arc::clone(&log);
            let warnings = Arc::clone(&warnings);
            let errors = Arc::clone(&errors);
            let samples = Arc::clone(&samples);
            let warning_kinds = Arc::clone(&warning_kinds);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("\"level\":\"WARN\"") {
                        warnings.fetch_add(1, Ordering::Relaxed);
                        let kind = warning_kind(&line);
                        *warning_kinds
                            .lock()
                            .expect("never poisoned")
                            .entry(kind)
                            .or_insert(0) += 1;
                    } else if line.contains("\"level\":\"ERROR\"") {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let mut samples = samples.lock().expect("never poisoned");
                        if samples.len() < 5 {
                            samples.push(line.chars().take(400).collect());
                        }
                    }
                    if let Ok(mut log) = log.lock() {
                        let _ = writeln!(log, "{line}");
                    }
                    if let Some(lines) = &lines {
                        // The reader goes away after the banner; the log goes on.
                        let _ = lines.send(line);
                    }
                }
            });
        }
        let banner = tokio::task::spawn_blocking(move || {
            let mut banner = Banner::default();
            let deadline = Instant::now() + START_LIMIT;
            while !banner.complete() {
                let left = deadline.saturating_duration_since(Instant::now());
                match banner_lines.recv_timeout(left) {
                    Ok(line) => banner.read_line(&line),
                    Err(_) => break,
                }
            }
            banner
        })
        .await?;
        let mut stack = StackProcess {
            child,
            banner,
            warnings,
            errors,
            samples,
            warning_kinds,
            log_path: log_path.to_owned(),
        };
        if !stack.banner.complete() {
            let _ = stack.child.kill();
            let _ = stack.child.wait();
            bail!(
                "the stack printed no complete banner within {} s (log: {})",
                START_LIMIT.as_secs(),
                log_path.display()
            );
        }
        Ok(stack)
    }

    /// Sends SIGTERM and waits for the exit (killing it after [`STOP_LIMIT`]); what it logged.
    pub async fn stop(mut self) -> anyhow::Result<StackLog> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_LIMIT;
        let mut status = None;
        while Instant::now() < deadline {
            if let Some(exit) = self.child.try_wait()? {
                status = Some(exit);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let exit = match status {
            Some(exit) => exit.to_string(),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                format!(
                    "did not stop within {} s of SIGTERM; killed",
                    STOP_LIMIT.as_secs()
                )
            }
        };
        Ok(StackLog {
            warnings: self.warnings.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            warning_kinds: {
                let mut kinds: Vec<(String, u64)> = self
                    .warning_kinds
                    .lock()
                    .expect("never poisoned")
                    .iter()
                    .map(|(k, n)| (k.clone(), *n))
                    .collect();
                kinds.sort_by_key(|kind| std::cmp::Reverse(kind.1));
                kinds
            },
            error_samples: self.samples.lock().expect("never poisoned").clone(),
            exit,
            log_path: self.log_path.display().to_string(),
        })
    }
}

/// A WARN line's message with its operation and status, if the JSON has them.
fn warning_kind(line: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
        return line.chars().take(120).collect();
    };
    let fields = &json["fields"];
    let mut kind = fields["message"].as_str().unwrap_or("?").to_owned();
    for key in ["operation", "status"] {
        if let Some(value) = fields[key].as_str() {
            kind.push_str(&format!(" {key}={value}"));
        }
    }
    kind
}

/// Prints a result's table and JSON line, and appends the line to `json_out`.
pub fn emit(result: &ScenarioResult, json_out: Option<&Path>) -> anyhow::Result<()> {
    let line = result.to_json().to_string();
    print!("{}", result.table());
    println!("{line}");
    if let Some(path) = json_out {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{line}")?;
    }
    Ok(())
}

/// Runs every scenario against `target`, emitting each result.
pub async fn run_all(
    target: &Target,
    sizes: &Sizes,
    scenarios: &[Scenario],
    json_out: Option<&Path>,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let mut results = Vec::new();
    for scenario in Scenario::ALL.iter().filter(|s| scenarios.contains(s)) {
        eprintln!("-- {} [{}] ...", scenario.name(), target.label);
        let result = scenario.run(target, sizes).await;
        emit(&result, json_out)?;
        results.push(result);
    }
    Ok(results)
}

/// A short id for this run: users and products carry it.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// Both lock modes, one stack each, then the hot-product phase, then the report (`--only`: one
/// phase, the report's other sections kept). `Ok(false)` when a scenario failed.
pub async fn bench(options: &BenchOptions) -> anyhow::Result<bool> {
    let sizes = if options.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let plan = if options.quick {
        PartitionPlan::quick()
    } else {
        PartitionPlan::full()
    };
    let partition_phase = || {
        partitions::run_phase(
            &options.stack_bin,
            &options.jwt_secret,
            &sizes,
            &plan,
            options.json_out.as_deref(),
        )
    };
    let mut hot_plan = if options.quick {
        HotPlan::quick()
    } else {
        HotPlan::full()
    };
    if let Some(labels) = &options.hot_runs {
        hot_plan.runs.retain(|run| labels.contains(&run.label()));
        anyhow::ensure!(
            !hot_plan.runs.is_empty(),
            "--hot-runs {labels:?}: no run has these labels"
        );
    }
    let hot_phase = || {
        hot::run_phase(
            &options.stack_bin,
            &options.jwt_secret,
            &hot_plan,
            options.json_out.as_deref(),
        )
    };
    match options.only {
        Some(Phase::Partitions) => {
            let phase = partition_phase().await?;
            report::update_partitions(&options.out, &phase)?;
            eprintln!("wrote the partition section of {}", options.out.display());
            return Ok(phase.sales.iter().all(|r| r.verdict != Verdict::Fail));
        }
        Some(Phase::Hot) => {
            let phase = hot_phase().await?;
            report::update_hot(&options.out, &phase)?;
            eprintln!(
                "wrote the hot-product section of {} ({:.1} min)",
                options.out.display(),
                phase.elapsed.as_secs_f64() / 60.0
            );
            return Ok(phase.runs.iter().all(|r| r.result.verdict != Verdict::Fail));
        }
        Some(Phase::Locks) | None => {}
    }
    let started_at = chrono::Utc::now();
    let runs = lock_modes(options, &sizes).await?;
    let hot = match options.only {
        None => Some(hot_phase().await?),
        Some(_) => None,
    };
    let extras = report::read_extras(&options.extra_dir);
    // `make bench` writes the Unix time it started here before its builds.
    let make_started_at = std::fs::read_to_string(options.extra_dir.join("make-bench-started"))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0));
    let input = report::ReportInput {
        runs: &runs,
        extras: &extras,
        quick: options.quick,
        started_at,
        make_started_at,
        sizes: &sizes,
        partitions: None,
        hot: hot.as_ref(),
    };
    report::write(&options.out, &input)?;
    eprintln!("wrote {}", options.out.display());
    Ok(runs
        .iter()
        .flat_map(|run| &run.results)
        .chain(
            hot.iter()
                .flat_map(|phase| phase.runs.iter().map(|r| &r.result)),
        )
        .all(|result| result.verdict != Verdict::Fail))
}

/// Every scenario against a fresh stack per `STOCK_LOCKS` mode; the cost scenario on a second
/// stack of that mode with the shipped defaults, which is what it prices.
async fn lock_modes(options: &BenchOptions, sizes: &Sizes) -> anyhow::Result<Vec<ModeRun>> {
    let mut runs = Vec::new();
    let (cost, others): (Vec<Scenario>, Vec<Scenario>) = options
        .scenarios
        .iter()
        .partition(|scenario| **scenario == Scenario::Cost);
    for (label, stock_locks) in [("locks-on", true), ("locks-off", false)] {
        let locks = if stock_locks { "on" } else { "off" };
        let env = [("STOCK_LOCKS", locks)];
        let mut results = Vec::new();
        let mut log: Option<StackLog> = None;
        for (scenarios, shipped) in [(&others, false), (&cost, true)] {
            if scenarios.is_empty() {
                continue;
            }
            let log_path =
                std::env::temp_dir().join(format!("load-test-stack-{label}-{}.log", run_id()));
            eprintln!(
                "== starting {} with STOCK_LOCKS={locks}{}",
                options.stack_bin.display(),
                if shipped {
                    " and the shipped defaults"
                } else {
                    ""
                }
            );
            let stack = if shipped {
                StackProcess::start_shipped(&options.stack_bin, &env, &log_path).await?
            } else {
                StackProcess::start(&options.stack_bin, &env, &log_path).await?
            };
            let banner = stack.banner.clone();
            eprintln!(
                "   HTTP {} | WS {} | AWS {}",
                banner.http.as_deref().unwrap_or(""),
                banner.ws.as_deref().unwrap_or(""),
                banner.aws.as_deref().unwrap_or("")
            );
            let target = Target {
                api: Api::new(
                    banner.http.as_deref().unwrap_or_default(),
                    &options.jwt_secret,
                    &run_id(),
                )?,
                ws_url: banner.ws.clone().unwrap_or_default(),
                aws_endpoint: banner.aws.clone(),
                order_queue_url: banner.queue.clone(),
                stock_locks,
                label: label.to_owned(),
                jwt_secret: options.jwt_secret.clone(),
            };
            let ran = run_all(&target, sizes, scenarios, options.json_out.as_deref()).await;
            let stopped = stack.stop().await?;
            results.extend(ran?);
            log = Some(match log {
                None => stopped,
                Some(mut first) => {
                    first.absorb(stopped);
                    first
                }
            });
        }
        let Some(log) = log else {
            continue;
        };
        runs.push(ModeRun {
            label: label.to_owned(),
            results,
            log,
        });
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_gives_every_address() {
        let mut banner = Banner::default();
        for line in [
            "Local stack ready.",
            "",
            "  HTTP API       http://127.0.0.1:40001",
            "  WebSocket API  ws://127.0.0.1:40002/?token=<JWT>  (management API: http://127.0.0.1:40002/@connections/{connectionId})",
            "  AWS endpoint   http://127.0.0.1:40003  (DynamoDB and SQS; export AWS_ENDPOINT_URL=...)",
        ] {
            banner.read_line(line);
        }
        assert!(!banner.complete());
        banner.read_line("  Order queue    http://127.0.0.1:40003/000000000000/orders");
        assert!(banner.complete());
        assert_eq!(banner.http.as_deref(), Some("http://127.0.0.1:40001"));
        assert_eq!(banner.ws.as_deref(), Some("ws://127.0.0.1:40002"));
        assert_eq!(banner.aws.as_deref(), Some("http://127.0.0.1:40003"));
    }
}
