//! Size, cold start and peak memory of Lambda binaries, measured the way Lambda runs them: each
//! run spawns the binary against a [`RuntimeApi`] of its own with its first event already queued,
//! and its cold start is the time from the spawn until that event's answer arrived (initialization
//! plus the first invocation, I/O to the in-process stack included). The minimal `lambda_runtime`
//! function (`lambda-baseline`) is measured in the same rounds, so the ratio cancels the machine.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use shared::ports::ProductCatalog;
use tokio::sync::{oneshot, watch};

use crate::events::{self, BENCH_PRODUCT, EventTemplate};
use crate::runtime_api::{Answer, Outcome, RuntimeApi};

/// The goals the report checks (docs/benchmarks.md, Goals): binary size.
pub const GOAL_SIZE_BYTES: u64 = 8 * 1024 * 1024;
/// Cold start, absolute.
pub const GOAL_COLD_START_MS: u64 = 20;
/// Cold start as a multiple of the baseline's.
pub const GOAL_COLD_START_RATIO: u64 = 2;

/// The baseline's name in the report.
pub const BASELINE_NAME: &str = "lambda-baseline";

/// A function binary to measure.
#[derive(Debug, Clone)]
pub struct Binary {
    /// The function's name: its event is `events/<name>.json`.
    pub name: String,
    /// The built executable.
    pub path: PathBuf,
}

/// What `lambda-figures` measures and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The function binaries.
    pub binaries: Vec<Binary>,
    /// The minimal `lambda_runtime` function.
    pub baseline: PathBuf,
    /// Measured runs per binary.
    pub runs: usize,
    /// Runs per binary before the measured ones (page cache, the emulators' first queries).
    pub warmup: usize,
    /// Invocations after the first, before the peak memory is read.
    pub invocations: usize,
    /// Where `<name>.json` events are.
    pub events_dir: PathBuf,
    /// The functions' settings (`events/cargo-lambda.env`).
    pub env_file: PathBuf,
    /// How long one invocation, cold start included, may take.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            binaries: vec![],
            baseline: PathBuf::new(),
            runs: 10,
            warmup: 1,
            invocations: 50,
            events_dir: PathBuf::from("events"),
            env_file: PathBuf::from("events/cargo-lambda.env"),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A binary ready to be run: its environment and its event.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Name in the report.
    pub name: String,
    /// The executable.
    pub path: PathBuf,
    /// The whole environment of the process (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// The events it is invoked with.
    pub template: EventTemplate,
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Spawn until the first answer arrived.
    pub cold_start: Duration,
    /// Spawn until the first poll for an event: the initialization alone.
    pub init: Option<Duration>,
    /// `statusCode` of the first answer, for an HTTP function.
    pub first_status: Option<u16>,
    /// The first answer's body (cut at 300 characters).
    pub first_answer: String,
    /// Later invocations that answered an error or a non-2xx status.
    pub later_failures: usize,
    /// `VmHWM` after all invocations.
    pub peak_rss_kb: Option<u64>,
}

/// Spawns `subject` once, invokes it `1 + invocations` times and reads its peak memory.
pub async fn measure_run(
    subject: &Subject,
    run: usize,
    invocations: usize,
    timeout: Duration,
) -> Result<Run, String> {
    let api = RuntimeApi::start(&subject.name)
        .await
        .map_err(|e| format!("starting the Runtime API: {e}"))?;
    let log_path = std::env::temp_dir().join(format!(
        "lambda-figures-{}-{}-{run}.log",
        std::process::id(),
        subject.name
    ));
    let log =
        File::create(&log_path).map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
    let mut command = Command::new(&subject.path);
    command
        .env_clear()
        .envs(subject.env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);

    // Lambda starts a function for an event, so the event is waiting before the process exists.
    let first = api.invoke(subject.template.payload(run, 0));
    let started = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", subject.path.display()))?;
    let mut process = Process {
        child,
        log_path,
        init_errors: api.init_errors(),
    };
    let measured = async {
        let answer = process.answer(first, timeout).await?;
        let cold_start = answer.at.duration_since(started);
        let init = api.first_poll().map(|at| at.duration_since(started));
        let first_status = check(&answer)?;
        let mut later_failures = 0;
        for invocation in 1..=invocations {
            let pending = api.invoke(subject.template.payload(run, invocation));
            if check(&process.answer(pending, timeout).await?).is_err() {
                later_failures += 1;
            }
        }
        Ok(Run {
            cold_start,
            init,
            first_status,
            first_answer: excerpt(&answer.body, 300),
            later_failures,
            peak_rss_kb: peak_rss_kb(process.child.id()),
        })
    }
    .await;
    measured.map_err(|error: String| match process.log_tail() {
        tail if tail.is_empty() => error,
        tail => format!("{error}; its output ended with: {tail}"),
    })
}

/// A spawned function; killed when dropped.
struct Process {
    child: Child,
    log_path: PathBuf,
    init_errors: watch::Receiver<Option<String>>,
}

impl Process {
    /// Waits for `pending` while watching for an init error, an exit or the time-out.
    async fn answer(
        &mut self,
        pending: oneshot::Receiver<Answer>,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let deadline = Instant::now() + timeout;
        tokio::pin!(pending);
        loop {
            tokio::select! {
                answer = &mut pending => {
                    return answer.map_err(|_| "the Runtime API dropped the invocation".to_owned());
                }
                // The sender lives as long as the API; its end means the API is gone.
                Ok(()) = self.init_errors.changed() => {
                    if let Some(error) = self.init_errors.borrow_and_update().clone() {
                        return Err(format!("reported an init error: {}", cut(&error, 300)));
                    }
                }
                // Only exit and time-out detection wait on this: the answer's time is taken when
                // it arrives, not here.
                () = tokio::time::sleep(Duration::from_millis(10)) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        return Err(format!("exited ({status}) without answering"));
                    }
                    if Instant::now() >= deadline {
                        return Err(format!("no answer within {} s", timeout.as_secs()));
                    }
                }
            }
        }
    }

    /// The last lines the function printed, for a failure's report.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(3).collect();
        let tail: Vec<&str> = lines.into_iter().rev().collect();
        cut(&tail.join(" | "), 600)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// The `statusCode` of an HTTP answer (`None` for other events), or why the answer is a failure.
fn check(answer: &Answer) -> Result<Option<u16>, String> {
    match answer.outcome {
        Outcome::Error => Err(format!(
            "answered with an error: {}",
            excerpt(&answer.body, 300)
        )),
        Outcome::Response => {
            let status = serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|body| body.get("statusCode").and_then(Value::as_u64))
                .map(|status| u16::try_from(status).unwrap_or(u16::MAX));
            match status {
                Some(status) if !(200..300).contains(&status) => Err(format!(
                    "answered status {status}: {}",
                    excerpt(&answer.body, 300)
                )),
                _ => Ok(status),
            }
        }
    }
}

fn excerpt(body: &[u8], max: usize) -> String {
    cut(&String::from_utf8_lossy(body), max)
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// `VmHWM` of process `pid`: its peak resident set, in kB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// Every run of one subject, or the failure that ended them.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The subject's name.
    pub name: String,
    /// File size.
    pub size_bytes: u64,
    /// The measured runs (warm-up runs left out).
    pub runs: Vec<Run>,
    /// Why measuring stopped, if it did.
    pub failure: Option<String>,
}

impl Measured {
    fn cold_starts_ms(&self) -> Vec<f64> {
        self.runs
            .iter()
            .map(|run| run.cold_start.as_secs_f64() * 1000.0)
            .collect()
    }

    /// Median cold start in ms; `None` after a failure or without runs.
    pub fn cold_start_ms_median(&self) -> Option<f64> {
        if self.failure.is_some() {
            return None;
        }
        median(self.cold_starts_ms())
    }

    /// Fastest cold start in ms; `None` after a failure or without runs.
    pub fn cold_start_ms_min(&self) -> Option<f64> {
        if self.failure.is_some() {
            return None;
        }
        self.cold_starts_ms().into_iter().reduce(f64::min)
    }

    fn init_ms_median(&self) -> Option<f64> {
        let inits: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|run| run.init)
            .map(|init| init.as_secs_f64() * 1000.0)
            .collect();
        median(inits)
    }

    /// The highest `VmHWM` of all runs.
    fn peak_rss_kb(&self) -> Option<u64> {
        self.runs.iter().filter_map(|run| run.peak_rss_kb).max()
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "size_bytes": self.size_bytes,
            "cold_start_ms_median": self.cold_start_ms_median().map(round2),
            "cold_start_ms_min": self.cold_start_ms_min().map(round2),
            "init_ms_median": self.init_ms_median().map(round2),
            "peak_rss_kb": self.peak_rss_kb(),
            "failure": self.failure,
            "cold_start_ms_runs": self.cold_starts_ms().into_iter().map(round2).collect::<Vec<_>>(),
        })
    }

    /// [`Measured::json`] plus the ratio to the baseline's median and the answers.
    /// `baseline` is the baseline's (median, min) cold start.
    fn binary_json(&self, baseline: (Option<f64>, Option<f64>)) -> Value {
        let mut object = self.json();
        let ratio = |own: Option<f64>, baseline: Option<f64>| {
            own.zip(baseline)
                .map(|(own, baseline)| round2(own / baseline))
        };
        object["cold_start_ratio"] = json!(ratio(self.cold_start_ms_median(), baseline.0));
        // The fastest runs are the least disturbed by the rest of the machine: on a busy one the
        // ratio of the minimums is the steadier figure.
        object["cold_start_ratio_min"] = json!(ratio(self.cold_start_ms_min(), baseline.1));
        object["first_answer_status"] = json!(self.runs.first().and_then(|r| r.first_status));
        object["first_answer"] = json!(self.runs.first().map(|r| r.first_answer.clone()));
        object["later_failures"] = json!(self.runs.iter().map(|r| r.later_failures).sum::<usize>());
        object
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(match values.len() % 2 {
        1 => values[middle],
        _ => (values[middle - 1] + values[middle]) / 2.0,
    })
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Measures every subject: `warmup` unmeasured rounds, then `runs` rounds, each round running
/// every subject once in turn, so a slow patch of the machine hits all of them alike. A subject
/// that fails once is not run again.
pub async fn measure_all(
    subjects: &[Subject],
    options: &Options,
    mut progress: impl FnMut(&str),
) -> Vec<Measured> {
    let mut measured: Vec<Measured> = subjects
        .iter()
        .map(|subject| Measured {
            name: subject.name.clone(),
            size_bytes: std::fs::metadata(&subject.path).map_or(0, |m| m.len()),
            runs: vec![],
            failure: None,
        })
        .collect();
    for round in 0..options.warmup + options.runs {
        for (subject, measured) in subjects.iter().zip(&mut measured) {
            if measured.failure.is_some() {
                continue;
            }
            match measure_run(subject, round, options.invocations, options.timeout).await {
                Ok(run) if round >= options.warmup => measured.runs.push(run),
                Ok(_) => {}
                Err(failure) => {
                    progress(&format!("{}: {failure}", subject.name));
                    measured.failure = Some(failure);
                }
            }
        }
        progress(&format!(
            "round {}/{} done{}",
            round + 1,
            options.warmup + options.runs,
            if round < options.warmup {
                " (warm-up)"
            } else {
                ""
            }
        ));
    }
    measured
}

/// The `lambda.json` object.
pub fn report(runs: usize, baseline: &Measured, binaries: &[Measured]) -> Value {
    let baseline_ms = (
        baseline.cold_start_ms_median(),
        baseline.cold_start_ms_min(),
    );
    json!({
        "kind": "lambda",
        "runs": runs,
        "baseline": baseline.json(),
        "binaries": binaries.iter().map(|b| b.binary_json(baseline_ms)).collect::<Vec<_>>(),
        "goals": {
            "size_bytes": GOAL_SIZE_BYTES,
            "cold_start_ms": GOAL_COLD_START_MS,
            "cold_start_ratio": GOAL_COLD_START_RATIO,
        },
    })
}

/// A table of the report for the terminal.
pub fn table(report: &Value) -> String {
    let mut out = format!(
        "{:<18} {:>10} {:>22} {:>17} {:>10} {:>10} {:>8}\n",
        "binary", "size", "cold start median/min", "ratio median/min", "init", "peak RSS", "status"
    );
    let ms = |v: &Value| v.as_f64().map_or("-".to_owned(), |v| format!("{v:.1}"));
    let ratio = |v: &Value| v.as_f64().map_or("-".to_owned(), |v| format!("{v:.2}x"));
    let mut rows = vec![&report["baseline"]];
    rows.extend(report["binaries"].as_array().into_iter().flatten());
    for row in rows {
        let size = row["size_bytes"].as_u64().unwrap_or(0) as f64 / (1024.0 * 1024.0);
        out.push_str(&format!(
            "{:<18} {:>7.2} MB {:>19} ms {:>17} {:>7} ms {:>7} MB {:>8}\n",
            row["name"].as_str().unwrap_or("?"),
            size,
            format!(
                "{} / {}",
                ms(&row["cold_start_ms_median"]),
                ms(&row["cold_start_ms_min"])
            ),
            format!(
                "{} / {}",
                ratio(&row["cold_start_ratio"]),
                ratio(&row["cold_start_ratio_min"])
            ),
            ms(&row["init_ms_median"]),
            row["peak_rss_kb"]
                .as_u64()
                .map_or("-".to_owned(), |kb| format!("{:.1}", kb as f64 / 1024.0)),
            row["first_answer_status"]
                .as_u64()
                .map_or("-".to_owned(), |s| s.to_string()),
        ));
        if let Some(failure) = row["failure"].as_str() {
            out.push_str(&format!("  FAILED: {failure}\n"));
        }
    }
    out
}

/// The settings a function gets: the env file's, pointed at `stack`, plus what Lambda sets.
pub fn function_env(
    settings: &[(String, String)],
    stack: Option<&localstack::Stack>,
    name: &str,
) -> Vec<(String, String)> {
    let mut overrides = events::lambda_environment(name);
    if let Some(stack) = stack {
        overrides.push(("AWS_ENDPOINT_URL", stack.aws_endpoint()));
        overrides.push(("ORDER_QUEUE_URL", stack.order_queue_url().to_owned()));
        if let Some(endpoint) = &stack.config().ws_management_endpoint {
            overrides.push(("WS_MANAGEMENT_ENDPOINT", endpoint.clone()));
        }
    }
    events::with_overrides(settings, &overrides)
}

/// Starts the local stack the functions talk to: its own emulators on ephemeral ports, the env
/// file's table names, the demo products, and [`BENCH_PRODUCT`] with the largest stock allowed.
pub async fn start_stack(settings: &[(String, String)]) -> anyhow::Result<localstack::Stack> {
    let lookup = |name: &str| match name {
        // The stack's own endpoint, queue and management API replace the file's.
        "AWS_ENDPOINT_URL" | "ORDER_QUEUE_URL" | "WS_MANAGEMENT_ENDPOINT" => None,
        _ => settings
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone()),
    };
    let config = shared::Config::from_lookup(&shared::Footprint::everything(), lookup)
        .context("reading the env file's settings")?;
    let stack = localstack::Stack::start(localstack::StackOptions {
        config,
        local: localstack::LocalSettings::ephemeral(),
        seed_products: true,
        run_workers: false,
    })
    .await
    .context("starting the local stack")?;
    let sdk = shared::aws::sdk_config(stack.config()).await;
    let store = shared::adapters::dynamodb::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        stack.config().tables.clone(),
    );
    store
        .create_product(
            shared::domain::ProductId::new(BENCH_PRODUCT),
            shared::domain::NewProduct {
                name: "lambda-figures stock".into(),
                price: shared::domain::Money::parse("1.00").context("a valid price")?,
                stock: shared::domain::MAX_STOCK,
                stock_shards: 1,
            },
            chrono::Utc::now(),
        )
        .await
        .context("creating the benchmark's product")?;
    Ok(stack)
}

/// `events_dir/<name>.json`, or `{}` for a function without a sample event; its bearer tokens
/// and webhook signature re-signed with the secrets the stack's functions read.
pub fn sample_event(
    name: &str,
    events_dir: &Path,
    secrets: &shared::Config,
) -> anyhow::Result<EventTemplate> {
    let jwt_secret = secrets.auth.jwt_secret.clone();
    let path = events_dir.join(format!("{name}.json"));
    match path.exists() {
        true => EventTemplate::load(&path, jwt_secret)
            .map(|template| template.with_webhook_secret(secrets.webhook_secret.clone())),
        false => Ok(EventTemplate::literal(json!({}), jwt_secret)),
    }
}

/// The whole measurement: a local stack, the baseline (echoing `{}`) and every binary (its sample
/// event), the report object.
pub async fn run(options: &Options, progress: impl FnMut(&str)) -> anyhow::Result<Value> {
    for path in std::iter::once(&options.baseline).chain(options.binaries.iter().map(|b| &b.path)) {
        anyhow::ensure!(path.is_file(), "no binary at {}", path.display());
    }
    let settings = events::read_env_file(&options.env_file)?;
    let stack = start_stack(&settings).await?;
    let mut subjects = vec![Subject {
        name: BASELINE_NAME.to_owned(),
        path: options.baseline.clone(),
        env: function_env(&settings, Some(&stack), BASELINE_NAME),
        template: EventTemplate::literal(json!({}), None),
    }];
    for binary in &options.binaries {
        subjects.push(Subject {
            name: binary.name.clone(),
            path: binary.path.clone(),
            env: function_env(&settings, Some(&stack), &binary.name),
            template: sample_event(&binary.name, &options.events_dir, stack.config())?,
        });
    }
    let measured = measure_all(&subjects, options, progress).await;
    stack.shutdown().await;
    let (baseline, binaries) = measured.split_first().expect("the baseline is measured");
    Ok(report(options.runs, baseline, binaries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn a_non_2xx_http_answer_is_a_failure_and_other_answers_pass() {
        let answer = |outcome, body: &str| Answer {
            outcome,
            body: body.as_bytes().to_vec().into(),
            at: Instant::now(),
        };

        assert_eq!(
            check(&answer(Outcome::Response, r#"{"statusCode":201}"#)),
            Ok(Some(201))
        );
        assert_eq!(
            check(&answer(Outcome::Response, r#"{"batchItemFailures":[]}"#)),
            Ok(None)
        );
        assert!(check(&answer(Outcome::Response, r#"{"statusCode":409}"#)).is_err());
        assert!(check(&answer(Outcome::Error, r#"{"errorType":"x"}"#)).is_err());
    }

    #[test]
    fn the_report_gives_each_binary_its_ratio_to_the_baseline() {
        let run = |ms: u64| Run {
            cold_start: Duration::from_millis(ms),
            init: Some(Duration::from_millis(ms / 2)),
            first_status: Some(201),
            first_answer: String::new(),
            later_failures: 0,
            peak_rss_kb: Some(ms * 100),
        };
        let measured = |name: &str, runs: Vec<Run>, failure: Option<&str>| Measured {
            name: name.into(),
            size_bytes: 10,
            runs,
            failure: failure.map(str::to_owned),
        };
        let baseline = measured("lambda-baseline", vec![run(2), run(4), run(3)], None);
        let fast = measured("fast", vec![run(6), run(9)], None);
        let broken = measured(
            "broken",
            vec![],
            Some("exited (exit status: 1) without answering"),
        );

        let report = report(3, &baseline, &[fast, broken]);

        assert_eq!(report["baseline"]["cold_start_ms_median"], 3.0);
        assert_eq!(report["binaries"][0]["cold_start_ms_median"], 7.5);
        assert_eq!(report["binaries"][0]["cold_start_ms_min"], 6.0);
        assert_eq!(report["binaries"][0]["cold_start_ratio"], 2.5);
        assert_eq!(report["binaries"][0]["cold_start_ratio_min"], 3.0);
        assert_eq!(report["binaries"][0]["peak_rss_kb"], 900);
        assert_eq!(report["binaries"][0]["first_answer_status"], 201);
        assert_eq!(report["binaries"][1]["cold_start_ms_median"], Value::Null);
        assert_eq!(report["binaries"][1]["cold_start_ratio"], Value::Null);
        assert!(table(&report).contains("FAILED: exited"));
    }
}
