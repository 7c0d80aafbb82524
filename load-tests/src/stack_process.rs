//! A `local-stack` binary run as a child process: started on port 0 with the benchmark's settings
//! (or the shipped defaults), its addresses read from its banner, its WARN and ERROR lines counted
//! as it runs, stopped with SIGTERM; what it logged comes back as a [`StackLog`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long the stack may take to print its banner (a cold emulator start included).
const START_LIMIT: Duration = Duration::from_secs(180);
/// How long a SIGTERM'd stack may take to stop before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(30);

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
    // minute (`shared/src/config/mod.rs`), which a sale would meet.
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

/// What a stack logged while the scenarios ran.
#[derive(Debug, Clone, Default)]
pub struct StackLog {
    /// Lines at WARN.
    pub warnings: u64,
    /// Lines at ERROR.
    pub errors: u64,
    /// WARN lines counted by their message and operation, most frequent first.
    pub warning_kinds: Vec<(String, u64)>,
    /// The first few ERROR lines.
    pub error_samples: Vec<String>,
    /// How it exited.
    pub exit: String,
    /// Where its whole output is.
    pub log_path: String,
}

impl StackLog {
    /// Adds what a second stack of the same mode logged (the cost scenario's).
    pub fn absorb(&mut self, other: StackLog) {
        self.warnings += other.warnings;
        self.errors += other.errors;
        for (kind, count) in other.warning_kinds {
            match self.warning_kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, total)) => *total += count,
                None => self.warning_kinds.push((kind, count)),
            }
        }
        self.warning_kinds
            .sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        self.error_samples.extend(other.error_samples);
        if self.exit != other.exit {
            self.exit = format!("{}; cost stack: {}", self.exit, other.exit);
        }
        self.log_path = format!("{} and {}", self.log_path, other.log_path);
    }
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
