//! `docs/benchmarks.md`: the headline figures per lock mode side by side, each scenario's table,
//! the cost of an order, the performance goals met or missed, the figures other tools left in
//! `target/bench/*.json`, and the SVG charts next to the report.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::outcome::{ScenarioResult, show};
use crate::scenarios::Sizes;
use crate::stats::BUCKET_EDGES_MS;
use crate::svg::{self, Series};

mod cost;
mod extras;
mod goals;
mod hot;
mod partitions;

use cost::cost_section;
use extras::extras_section;
pub use extras::{Extra, read_extras};
use goals::goals_section;
pub use hot::update as update_hot;
pub use partitions::update as update_partitions;

use crate::hot::HotPhase;
use crate::partitions::PartitionPhase;
use crate::stack_process::StackLog;

/// The results of one lock mode.
#[derive(Debug, Clone)]
pub struct ModeRun {
    /// `locks-on` / `locks-off`.
    pub label: String,
    /// Every scenario's result.
    pub results: Vec<ScenarioResult>,
    /// The stack's log summary.
    pub log: StackLog,
}

impl ModeRun {
    fn result(&self, scenario: &str) -> Option<&ScenarioResult> {
        self.results.iter().find(|r| r.scenario == scenario)
    }

    fn number(&self, scenario: &str, key: &str) -> Option<f64> {
        self.result(scenario).and_then(|r| r.number(key))
    }
}

/// Everything the report is made of.
pub struct ReportInput<'a> {
    /// One run per lock mode.
    pub runs: &'a [ModeRun],
    /// Figures of other tools.
    pub extras: &'a [Extra],
    /// Whether the sizes were shrunk.
    pub quick: bool,
    /// When the bench started.
    pub started_at: DateTime<Utc>,
    /// When `make bench` started (its builds come first), from `<extra-dir>/make-bench-started`.
    pub make_started_at: Option<DateTime<Utc>>,
    /// The sizes used.
    pub sizes: &'a Sizes,
    /// The partition phase, when it ran; otherwise the report keeps the section it had.
    pub partitions: Option<&'a PartitionPhase>,
    /// The hot-product phase, when it ran; otherwise the report keeps the section it had.
    pub hot: Option<&'a HotPhase>,
}

/// Writes the markdown to `out` and the charts to the folder named after it (`docs/benchmarks/`).
pub fn write(out: &Path, input: &ReportInput<'_>) -> anyhow::Result<()> {
    let (stem, dir) = chart_dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let charts = charts(input.runs);
    for (name, _, svg) in &charts {
        std::fs::write(dir.join(name), svg)?;
    }
    let links: Vec<(String, String)> = charts
        .iter()
        .map(|(name, title, _)| (title.clone(), format!("{stem}/{name}")))
        .collect();
    let commit = commit();
    let mut markdown = markdown(input, &machine(), &commit, &links);
    let partitions = match input.partitions {
        Some(phase) => {
            let (name, _, svg) = partitions::chart(phase);
            std::fs::write(dir.join(&name), svg)?;
            Some(partitions::section(
                phase,
                &commit,
                Some(&format!("{stem}/{name}")),
            ))
        }
        None => std::fs::read_to_string(out)
            .ok()
            .and_then(|old| partitions::existing_section(&old)),
    };
    if let Some(section) = partitions {
        markdown = partitions::replace_section(&markdown, &section);
    }
    let hot = match input.hot {
        Some(phase) => {
            let (name, _, svg) = hot::chart(phase);
            std::fs::write(dir.join(&name), svg)?;
            Some(hot::section(
                phase,
                &commit,
                &machine(),
                Some(&format!("{stem}/{name}")),
            ))
        }
        None => std::fs::read_to_string(out)
            .ok()
            .and_then(|old| hot::existing_section(&old)),
    };
    if let Some(section) = hot {
        markdown = replace_between(&markdown, &section, hot::BEGIN, hot::END);
    }
    std::fs::write(out, markdown).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// `document` with the section between `begin` and `end` replaced by `section` (markers
/// included), or `section` appended: how a phase run alone (`--only`) updates its part.
pub(super) fn replace_between(document: &str, section: &str, begin: &str, end: &str) -> String {
    match (document.find(begin), document.find(end)) {
        (Some(from), Some(to)) if from < to => {
            let to = to + end.len();
            let rest = document[to..].strip_prefix('\n').unwrap_or(&document[to..]);
            format!("{}{section}{rest}", &document[..from])
        }
        _ => {
            let separator = if document.is_empty() || document.ends_with("\n\n") {
                ""
            } else if document.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{document}{separator}{section}")
        }
    }
}

/// The section between `begin` and `end` of an existing document, markers included.
pub(super) fn between(document: &str, begin: &str, end: &str) -> Option<String> {
    let from = document.find(begin)?;
    let to = document.find(end)? + end.len();
    (from < to).then(|| format!("{}\n", &document[from..to]))
}

/// The report's stem (`benchmarks`) and its chart folder, named after it, next to it.
fn chart_dir(out: &Path) -> (String, std::path::PathBuf) {
    let stem = out.file_stem().map_or_else(
        || "benchmarks".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    let dir = out.parent().unwrap_or(Path::new(".")).join(&stem);
    (stem, dir)
}

/// `git rev-parse --short HEAD`, or "unknown".
fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Cores, CPU model and memory of this machine.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_owned(), |m| m.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or("unknown memory".to_owned(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        });
    format!("{cores} cores (nproc), {model}, {memory}")
}

pub(super) fn fmt(value: Option<f64>, unit: &str) -> String {
    match value {
        Some(v) if v.abs() >= 100.0 || v == v.trunc() => format!("{v:.0}{unit}"),
        Some(v) => format!("{v:.2}{unit}"),
        None => "n/a".to_owned(),
    }
}

pub(super) fn met(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured in this run",
    }
}

/// How long `make bench` took, when it says when it started.
fn duration_line(input: &ReportInput<'_>) -> String {
    let Some(make_started) = input.make_started_at else {
        return String::new();
    };
    let now = Utc::now();
    let minutes = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_seconds() as f64 / 60.0;
    format!(
        "- Duration: {:.1} min in all: {:.1} min of builds, criterion, the Lambda figures and the \
         transaction rate, then {:.1} min of load scenarios\n",
        minutes(make_started, now),
        minutes(make_started, input.started_at),
        minutes(input.started_at, now)
    )
}

/// One headline row's cell for one mode.
type HeadlineCell = Box<dyn Fn(&ModeRun) -> String>;

/// The markdown document.
pub fn markdown(
    input: &ReportInput<'_>,
    machine: &str,
    commit: &str,
    charts: &[(String, String)],
) -> String {
    let runs = input.runs;
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "- Date: {}\n- Commit: `{commit}`\n- Machine: {machine}\n- Command: `make bench`{}\n{}",
        input.started_at.format("%Y-%m-%d %H:%M UTC"),
        if input.quick {
            " (quick sizes: `load-test bench --quick`; not the figures of record)"
        } else {
            ""
        },
        duration_line(input)
    );
    let _ = writeln!(
        md,
        "`make bench` builds the local stack (`cargo build --profile local`) and runs \
         `load-test bench`, which starts it twice, `STOCK_LOCKS=on` then `off` (ephemeral ports, \
         `RATE_LIMIT_PER_MINUTE=0 PAYMENT_SUCCESS_RATE=1 HOLD_TTL_SECONDS=3 \
         HOLD_SWEEP_SECONDS=1`, logs at warn), and runs every scenario of `load-tests/` against \
         each but the cost scenario, which runs on a second stack per mode with the shipped \
         defaults (rate limit 120 a minute, 80 % payment success) and the endpoint's capacity \
         metering on. The \
         load generator shares the machine with the stack. Flash sale: stock \
         {}, {} buyers with their WebSockets open; high load: ramp to {} virtual users over {} s, \
         hold {} s. Then nine more stacks, under AWS conditions (`AWS_CONDITIONS=on`), run a \
         flash sale of one hot product over 1, 8 and 64 stock shards, lock-free and locked: \
         the section \"A hot product under AWS conditions\" (the older section on 1 and 16 \
         shards under the partition limit alone is rerun only by `--only partitions`).\n",
        input.sizes.flash_stock,
        input.sizes.buyers,
        input.sizes.vus,
        input.sizes.ramp.as_secs(),
        input.sizes.hold.as_secs()
    );

    // Headline.
    let _ = writeln!(md, "## Headline\n");
    header(&mut md, "figure", runs);
    let ratio = |run: &ModeRun| {
        let sale = run.number("flash-sale", "orders_per_s")?;
        let ceiling = run.number("ceiling", "orders_per_s")?;
        (ceiling > 0.0).then(|| sale / ceiling)
    };
    let rows: Vec<(&str, HeadlineCell)> = vec![
        (
            "flash-sale orders/s",
            Box::new(|r| fmt(r.number("flash-sale", "orders_per_s"), "")),
        ),
        (
            "ceiling orders/s (use case straight on the emulators)",
            Box::new(|r| fmt(r.number("ceiling", "orders_per_s"), "")),
        ),
        ("flash-sale ÷ ceiling", Box::new(move |r| fmt(ratio(r), ""))),
        (
            "flash-sale p50 / p99 of the 201s",
            Box::new(|r| {
                format!(
                    "{} / {}",
                    fmt(r.number("flash-sale", "p50_ms"), " ms"),
                    fmt(r.number("flash-sale", "p99_ms"), " ms")
                )
            }),
        ),
        (
            "LOCK_CONFLICT while stock remained (count, rate)",
            Box::new(|r| {
                format!(
                    "{} ({})",
                    fmt(r.number("flash-sale", "lock_conflicts_while_stock"), ""),
                    fmt(
                        r.number("flash-sale", "lock_conflict_rate_while_stock")
                            .map(|x| x * 100.0),
                        " %"
                    )
                )
            }),
        ),
        (
            "201 → terminal push p50 / p99",
            Box::new(|r| {
                format!(
                    "{} / {}",
                    fmt(r.number("flash-sale", "push_p50_ms"), " ms"),
                    fmt(r.number("flash-sale", "push_p99_ms"), " ms")
                )
            }),
        ),
        (
            "settled after sell-out (last terminal event)",
            Box::new(|r| fmt(r.number("flash-sale", "settled_after_sell_out_s"), " s")),
        ),
        (
            "queue drained after sell-out",
            Box::new(|r| {
                fmt(
                    r.number("flash-sale", "queue_drained_after_sell_out_s"),
                    " s",
                )
            }),
        ),
        (
            "high-load p99 at full load (all requests)",
            Box::new(|r| fmt(r.number("high-load", "full_load_p99_ms"), " ms")),
        ),
        (
            "high-load product reads/s",
            Box::new(|r| fmt(r.number("high-load", "product_reads_per_s"), "")),
        ),
        (
            "flash-sale orders/s, first vs last window",
            Box::new(|r| {
                format!(
                    "{} vs {} ({} s windows)",
                    fmt(r.number("flash-sale", "orders_per_s_first_window"), ""),
                    fmt(r.number("flash-sale", "orders_per_s_last_window"), ""),
                    fmt(r.number("flash-sale", "edge_window_s"), "")
                )
            }),
        ),
    ];
    for (name, cell) in &rows {
        let cells: Vec<String> = runs.iter().map(cell).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    }
    let _ = writeln!(md);
    for (title, path) in charts {
        let _ = writeln!(md, "![{title}]({path})\n");
    }

    // Verdicts and every scenario's table.
    let _ = writeln!(md, "## Scenarios\n");
    header(&mut md, "scenario", runs);
    for scenario in scenario_names(runs) {
        let cells: Vec<String> = runs
            .iter()
            .map(|r| {
                r.result(&scenario)
                    .map_or("not run".to_owned(), |r| r.verdict.as_str().to_owned())
            })
            .collect();
        let _ = writeln!(md, "| {scenario} | {} |", cells.join(" | "));
    }
    let _ = writeln!(md);
    for scenario in scenario_names(runs) {
        let _ = writeln!(md, "### {scenario}\n");
        let per_mode: Vec<Option<&ScenarioResult>> =
            runs.iter().map(|r| r.result(&scenario)).collect();
        for (run, result) in runs.iter().zip(&per_mode) {
            for failure in result.map(|r| r.failures.as_slice()).unwrap_or_default() {
                let _ = writeln!(md, "- **{}: {}**", run.label, failure);
            }
        }
        header(&mut md, "figure", runs);
        let mut keys: Vec<String> = Vec::new();
        for result in per_mode.iter().flatten() {
            for (key, value) in &result.figures {
                if !value.is_array()
                    && !value.is_object()
                    && key != "assumptions"
                    && !keys.contains(key)
                {
                    keys.push(key.clone());
                }
            }
        }
        for key in &keys {
            let cells: Vec<String> = per_mode
                .iter()
                .map(|r| r.and_then(|r| r.get(key)).map_or("".to_owned(), show))
                .collect();
            let _ = writeln!(md, "| {key} | {} |", cells.join(" | "));
        }
        let _ = writeln!(md);
    }

    cost_section(&mut md, runs);
    goals_section(&mut md, runs, input.extras);
    extras_section(&mut md, input.extras);

    let _ = writeln!(md, "## The stacks' logs\n");
    header(&mut md, "", runs);
    let cells = |f: &dyn Fn(&StackLog) -> String| {
        runs.iter()
            .map(|r| f(&r.log))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let _ = writeln!(
        md,
        "| WARN lines | {} |",
        cells(&|l| l.warnings.to_string())
    );
    let _ = writeln!(md, "| ERROR lines | {} |", cells(&|l| l.errors.to_string()));
    let _ = writeln!(
        md,
        "| exit after SIGTERM | {} |\n",
        cells(&|l| l.exit.clone())
    );
    for run in runs {
        for (kind, count) in run.log.warning_kinds.iter().take(5) {
            let _ = writeln!(md, "- {} WARN × {count}: {kind}", run.label);
        }
    }
    for run in runs {
        for sample in &run.log.error_samples {
            let _ = writeln!(md, "- {}: `{}`", run.label, sample.replace('`', "'"));
        }
    }
    md
}

pub(super) fn header(md: &mut String, first: &str, runs: &[ModeRun]) {
    let labels: Vec<&str> = runs.iter().map(|r| r.label.as_str()).collect();
    let _ = writeln!(md, "| {first} | {} |", labels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(runs.len()));
}

fn scenario_names(runs: &[ModeRun]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for result in runs.iter().flat_map(|r| &r.results) {
        if !names.contains(&result.scenario) {
            names.push(result.scenario.clone());
        }
    }
    names
}

/// The three charts: (file name, title, SVG).
fn charts(runs: &[ModeRun]) -> Vec<(String, String, String)> {
    let series = |key: &str| -> Vec<Series> {
        runs.iter()
            .filter_map(|run| {
                let points = run.result("flash-sale")?.get("per_second")?.as_array()?;
                Some(Series {
                    name: run.label.clone(),
                    points: points
                        .iter()
                        .filter_map(|p| Some((p["second"].as_f64()? + 0.5, p[key].as_f64()?)))
                        .collect(),
                })
            })
            .collect()
    };
    let mut out = Vec::new();
    let title = "Flash sale: orders/s per second".to_owned();
    out.push((
        "flash-sale-orders-per-second.svg".to_owned(),
        title.clone(),
        svg::line_chart(
            &title,
            "seconds since the sale started",
            "orders/s (201s)",
            &series("count"),
        ),
    ));
    let title = "Flash sale: p99 latency of the 201s per second".to_owned();
    out.push((
        "flash-sale-p99-per-second.svg".to_owned(),
        title.clone(),
        svg::line_chart(
            &title,
            "seconds since the sale started",
            "p99 (ms)",
            &series("p99_ms"),
        ),
    ));
    let categories: Vec<String> = BUCKET_EDGES_MS
        .iter()
        .enumerate()
        .map(|(i, edge)| {
            if edge.is_finite() {
                format!("≤{edge}")
            } else {
                format!(">{}", BUCKET_EDGES_MS[i - 1])
            }
        })
        .collect();
    let bars: Vec<(String, Vec<f64>)> = runs
        .iter()
        .filter_map(|run| {
            let buckets = run
                .result("flash-sale")?
                .get("latency_buckets")?
                .as_array()?;
            Some((
                run.label.clone(),
                buckets
                    .iter()
                    .map(|b| b["count"].as_f64().unwrap_or(0.0))
                    .collect(),
            ))
        })
        .collect();
    let title = "Flash sale: latency of the 201s (log-scale buckets)".to_owned();
    out.push((
        "flash-sale-latency-histogram.svg".to_owned(),
        title.clone(),
        svg::bar_chart(
            &title,
            "latency bucket (ms, upper edge)",
            "201 answers",
            &categories,
            &bars,
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_extras_are_kept_as_key_value_tables() {
        let mut md = String::new();
        extras_section(
            &mut md,
            &[Extra {
                kind: "mystery".into(),
                file: "m.json".into(),
                value: json!({"kind": "mystery", "speed": 3, "rows": [{"a": 1}, {"a": 2}]}),
            }],
        );
        assert!(md.contains("### mystery"));
        assert!(md.contains("| speed | 3 |"));
        assert!(md.contains("| a |"));
    }

    #[test]
    fn the_goals_read_the_lambda_and_cpu_extras() {
        let extras = vec![
            Extra {
                kind: "lambda".into(),
                file: "lambda.json".into(),
                value: json!({"kind": "lambda", "binaries": [{"name": "create-order", "size_bytes": 5_000_000, "cold_start_ms_median": 12.0, "cold_start_ratio": 1.5}]}),
            },
            Extra {
                kind: "handler-cpu".into(),
                file: "cpu.json".into(),
                value: json!({"kind": "handler-cpu", "create_order_new_ns": 30000, "create_order_replay_ns": 9000}),
            },
        ];
        let mut md = String::new();
        goals_section(&mut md, &[], &extras);
        assert!(
            md.contains("| handler CPU < 50 µs (create-order, new and replay) | 30 µs | met |"),
            "{md}"
        );
        assert!(
            md.contains("| cold start < 20 ms (slowest function, median) | 12 ms | met |"),
            "{md}"
        );
        assert!(md.contains("(slowest, medians) | 1.50x | met |"), "{md}");
        assert!(md.contains("5 MB | met"), "{md}");
    }
}
