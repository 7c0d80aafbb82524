//! `make bench`: the local stack binary started once per lock mode as a child process
//! (`stack_process`), its addresses read from its banner, every scenario run against it (`run`),
//! the stack stopped with SIGTERM; then the hot-product phase under AWS conditions, a stack per
//! run (`hot`); then the report. `--only` runs one phase and keeps the report's other sections;
//! `--only partitions` reruns the older phase of the flash sale over 1 and 16 shards under the
//! partition limit alone (`partitions`), which the whole bench no longer runs.

use std::path::PathBuf;

use crate::client::Api;
use crate::hot::{self, HotPlan};
use crate::outcome::Verdict;
use crate::partitions::{self, PartitionPlan};
use crate::report::{self, ModeRun};
use crate::run::{run_all, run_id};
use crate::scenarios::{Scenario, Sizes, Target};
use crate::stack_process::{StackLog, StackProcess};

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
