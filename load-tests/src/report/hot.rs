//! The report's section on the hot-product phase (`crate::hot`): every run's orders/s against
//! what the emulated limits allow, conflicts, throttles, refusals, latencies, the books and the
//! verdict, with the derivation of each allowed rate and a chart of orders/s against shard count.
//! The section sits between markers, so `load-test bench --only hot` replaces it in an existing
//! report and a run without the phase keeps it.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;

use crate::hot::limits::goals;
use crate::hot::{HotPhase, HotRunResult, Window};
use crate::outcome::{ScenarioResult, show};
use crate::svg;

use super::fmt;

/// Where the section begins and ends in the document.
pub(super) const BEGIN: &str = "<!-- hot:begin -->";
pub(super) const END: &str = "<!-- hot:end -->";
/// The section's chart, in the report's chart folder.
const CHART: &str = "hot-product-orders-per-second.svg";
/// The command that reruns the section alone.
const COMMAND: &str = "target/local/load-test bench --only hot --stack-bin target/local/local-stack \
                       --out docs/benchmarks.md --extra-dir target/bench";

/// The shard counts of the phase, in order of first appearance.
fn shard_counts(phase: &HotPhase) -> Vec<u32> {
    let mut counts: Vec<u32> = Vec::new();
    for run in &phase.runs {
        if !counts.contains(&run.run.shards) {
            counts.push(run.run.shards);
        }
    }
    counts
}

/// The chart: orders/s per shard count, one bar per series (lock-free, locks, the doubled
/// window), and the allowed rate of the lock-free runs as a line.
pub(super) fn chart(phase: &HotPhase) -> (String, String, String) {
    let counts = shard_counts(phase);
    let categories: Vec<String> = counts
        .iter()
        .map(|s| crate::partitions::sale_label(*s))
        .collect();
    let mut names: Vec<String> = Vec::new();
    for run in &phase.runs {
        if !names.contains(&run.run.series()) {
            names.push(run.run.series());
        }
    }
    let value = |series: &str, shards: u32, key: &str| {
        phase
            .runs
            .iter()
            .find(|r| r.run.series() == series && r.run.shards == shards)
            .and_then(|r| r.result.number(key))
            .unwrap_or(0.0)
    };
    let bars: Vec<(String, Vec<f64>)> = names
        .iter()
        .map(|name| {
            (
                name.clone(),
                counts
                    .iter()
                    .map(|s| value(name, *s, "orders_per_s"))
                    .collect(),
            )
        })
        .collect();
    let lines = names
        .first()
        .map(|first| {
            vec![(
                format!("allowed ({first})"),
                counts
                    .iter()
                    .map(|s| value(first, *s, "allowed_orders_per_s"))
                    .collect(),
            )]
        })
        .unwrap_or_default();
    let title = "A hot product under AWS conditions: orders/s by stock shards";
    let svg = svg::bar_chart_with_lines(
        title,
        "stock shards of the product (PARTITION_SCALE per shard count)",
        "orders/s (201s, steady)",
        &categories,
        &bars,
        &lines,
    );
    (CHART.to_owned(), title.to_owned(), svg)
}

fn percent(share: Option<f64>) -> String {
    match share {
        Some(share) if share.is_finite() => format!("{:.1} %", share * 100.0),
        _ => "n/a".to_owned(),
    }
}

/// One row of the table.
fn row(run: &HotRunResult) -> String {
    let r = &run.result;
    let number = |key: &str, unit: &str| fmt(r.number(key), unit);
    let books = format!(
        "{} + {}{} = {} {}",
        number("units_sold", ""),
        number("final_stock", ""),
        match r.number("units_unsettled") {
            Some(n) if n > 0.0 => format!(" + {n:.0} unsettled"),
            _ => String::new(),
        },
        number("initial_stock", ""),
        if r.get("stock_conserved") == Some(&serde_json::Value::Bool(true)) {
            "✓"
        } else {
            "✗"
        }
    );
    let refusals = format!(
        "{} ({})",
        number("refusals_while_stock", ""),
        percent(r.number("refusal_share_while_stock"))
    );
    format!(
        "| {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} | **{}** |",
        run.run.label(),
        run.run.scale,
        number("initial_stock", ""),
        r.get("transact_window_ms").map_or("n/a".to_owned(), show),
        number("orders_per_s", ""),
        number("allowed_orders_per_s", ""),
        r.number("fraction_of_allowed")
            .map_or("n/a".to_owned(), |f| format!("{f:.2}")),
        number("conflicts", ""),
        number("throttles", ""),
        refusals,
        number("p50_ms", " ms"),
        number("p99_ms", " ms"),
        number("settle_p50_ms", " ms"),
        number("settle_p99_ms", " ms"),
        books,
        r.verdict.as_str(),
    )
}

/// The section, markers included; `chart` is the chart's path relative to the report.
pub(super) fn section(
    phase: &HotPhase,
    commit: &str,
    machine: &str,
    chart: Option<&str>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{BEGIN}");
    let _ = writeln!(md, "## A hot product under AWS conditions\n");
    let _ = writeln!(
        md,
        "- Date: {} (commit `{commit}`), {:.1} min for the phase\n\
         - Command: `make bench`, or this section alone: `{COMMAND}`\n\
         - Measured under `AWS_CONDITIONS=on` on this machine ({machine}), with DynamoDB's \
         per-key limits scaled down by `PARTITION_SCALE` (below) so that the partitions, not \
         the machine, cap the sale\n",
        phase.started_at.format("%Y-%m-%d %H:%M UTC"),
        phase.elapsed.as_secs_f64() / 60.0,
    );
    let window = match phase.default_window {
        Some((median, p99)) => format!(
            "the default transaction window (`dynamodb.transact` {median} ms median, {p99} ms \
             p99, from `GET /_local/conditions`) and twice it (`AWS_LATENCY=dynamodb.transact={}/{}`)",
            median * 2.0,
            p99 * 2.0
        ),
        None => "the default transaction window (the stack did not report it)".to_owned(),
    };
    let _ = writeln!(
        md,
        "Each run starts its own stack with `AWS_CONDITIONS=on` (emulated latency per AWS \
         operation, transaction conflicts, per-key partition limits of {} write and {} read \
         units a second times `PARTITION_SCALE`), `PAYMENT_SUCCESS_RATE=0.8` (a failed payment \
         gives its unit back, and it is sold again), `RATE_LIMIT_PER_MINUTE=0` (off), \
         `ORDER_QUEUE_VISIBILITY_SECONDS=5` (a settlement that met a conflict is retried 5 s \
         later, not 30; the template says 60) and the bench settings above, creates one product with S stock shards, and runs {} buyer tasks \
         against it until it is sold out (or {} s pass). **Each order is placed by a fresh \
         user**: the buyer task opens the new user's WebSocket just before the order (so the \
         order's pushes arrive) and closes it at the order's terminal event, so no per-user key \
         (idempotency record, `user-orders` index, rate limit, connection) is ever hot, as in a \
         real flash sale where each buyer orders once. A refused order (409 other than \
         `INSUFFICIENT_STOCK`, 429, 503) is retried with the same key after 10-20 ms. Runs: S in \
         {{1, 8, 64}} with `STOCK_LOCKS=off` and `on` at {window}, lock-free.\n",
        fmt(Some(1000.0), ""),
        fmt(Some(3000.0), ""),
        phase.plan.buyers,
        phase.plan.sale_limit.as_secs(),
    );
    let _ = writeln!(
        md,
        "**What the emulated limits allow.** Shard 0 of a product is its item `<id>`, which every \
         order also reads for its price (eventually consistent, half a unit); shards 1..S-1 are \
         items `<id>#<k>`, one picked at random per order. `GET /_local/partitions` is read at both \
         ends of the steady window (from the end of the first second to the first sell-out, so \
         neither the first second's burst nor the re-plans and stock reads of the sell-out \
         count; the whole sale when the window held under 50 orders), and each group of the \
         product's keys gives `keys × units per key per second ÷ (units the group took ÷ orders \
         placed meanwhile)`, for writes and for reads; the product is allowed the smallest. \
         Every attempt counts: a refused order that is retried reads the price again. When the \
         binding key is saturated the fraction is 1 by construction (its units per second are its \
         limit); then what tells designs apart is the units an order costs, which set the \
         allowed rate. A fraction under 1 means the product's keys had budget left that the sale \
         did not use (orders spread unevenly over shards, retries backing off, the machine). Spread evenly over all S keys this is `S × limit ÷ \
         units per order`. Orders/s is the steady rate: 201s from the end of the first second \
         (each key's bucket starts with a second's burst) to the first sell-out.\n"
    );
    let _ = writeln!(
        md,
        "Goals (verdict PASS when all hold): orders/s ≥ {} of what the limits allow; refusals \
         while stock remained under {} % of attempts; no unit oversold (units in PAID orders + \
         units left + units in unsettled orders = initial stock, read after every order's \
         terminal event and once the last restores have landed, up to 15 s).\n",
        goals::MIN_FRACTION_OF_ALLOWED,
        goals::MAX_REFUSAL_SHARE * 100.0
    );
    let _ = writeln!(
        md,
        "| run | `PARTITION_SCALE` | stock | transaction window (ms, median/p99) | orders/s | allowed orders/s | fraction | transaction conflicts | throttles | refusals while stock remained (% of attempts) | p50 / p99 of the 201s | settlement lag p50 / p99 (201 → terminal push) | sold + left = initial | verdict |"
    );
    let _ = writeln!(md, "|---|{}", "---|".repeat(13));
    for run in &phase.runs {
        let _ = writeln!(md, "{}", row(run));
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "How each allowed rate was derived (the binding bound first):\n"
    );
    for run in &phase.runs {
        let r = &run.result;
        let _ = writeln!(
            md,
            "- {}: {} write and {} read units/s a key; {} product write units and {} read units \
             over {} orders placed in {}; {}.",
            run.run.label(),
            fmt(r.number("write_units_per_key_per_s"), ""),
            fmt(r.number("read_units_per_key_per_s"), ""),
            fmt(r.number("product_write_units"), ""),
            fmt(r.number("product_read_units"), ""),
            fmt(r.number("units_measured_orders"), ""),
            r.get("units_measured_over")
                .map_or("the sale".to_owned(), show),
            r.get("allowed_derivation")
                .map_or("no derivation".to_owned(), show),
        );
    }
    let _ = writeln!(md);
    let refused: Vec<String> = phase
        .runs
        .iter()
        .filter_map(|run| {
            let kinds = run.result.get("refusals_by_answer").map(show)?;
            (!kinds.is_empty()).then(|| format!("{}: {kinds}", run.run.label()))
        })
        .collect();
    if !refused.is_empty() {
        let _ = writeln!(
            md,
            "Refusals while stock remained, by answer: {}.\n",
            refused.join("; ")
        );
    }
    for run in &phase.runs {
        for failure in &run.result.failures {
            let _ = writeln!(md, "- **{}: {failure}**", run.run.label());
        }
    }
    let _ = writeln!(md);
    if let Some(path) = chart {
        let _ = writeln!(
            md,
            "![A hot product under AWS conditions: orders/s by stock shards]({path})\n"
        );
    }
    let _ = writeln!(md, "{}\n", conclusion(phase));
    let logs: Vec<String> = phase
        .runs
        .iter()
        .map(|run| {
            format!(
                "{} {} WARN / {} ERROR",
                run.run.label(),
                run.log.warnings,
                run.log.errors
            )
        })
        .collect();
    let _ = writeln!(md, "The stacks logged: {}.", logs.join("; "));
    let _ = writeln!(md, "{END}");
    md
}

/// What a reader should take from the figures, computed from them.
fn conclusion(phase: &HotPhase) -> String {
    let passed = phase
        .runs
        .iter()
        .filter(|r| r.result.verdict == crate::outcome::Verdict::Pass)
        .count();
    let mut text = format!(
        "**What this shows.** {passed} of {} runs met every goal. ",
        phase.runs.len()
    );
    let fraction = |r: &ScenarioResult| r.number("fraction_of_allowed");
    for (name, locks, window) in [
        ("Lock-free", false, Window::Default),
        ("With stock locks", true, Window::Default),
        ("Lock-free at twice the window", false, Window::Times(2.0)),
    ] {
        let cells: Vec<String> = phase
            .runs
            .iter()
            .filter(|r| r.run.stock_locks == locks && r.run.window == window)
            .map(|r| {
                format!(
                    "S={} {} orders/s ({} of allowed, transaction conflicts {})",
                    r.run.shards,
                    fmt(r.result.number("orders_per_s"), ""),
                    fraction(&r.result).map_or("n/a".to_owned(), |f| format!("{f:.2}")),
                    fmt(r.result.number("conflicts"), ""),
                )
            })
            .collect();
        if !cells.is_empty() {
            let _ = write!(text, "{name}: {}. ", cells.join(", "));
        }
    }
    let oversold = phase
        .runs
        .iter()
        .filter(|r| r.result.get("stock_conserved") != Some(&serde_json::Value::Bool(true)))
        .count();
    text.push_str(&if oversold == 0 {
        "In every run the units sold and the units left add up to the initial stock.".to_owned()
    } else {
        format!(
            "In {oversold} run{} the units did not add up: see the failures above.",
            if oversold == 1 { "" } else { "s" }
        )
    });
    text
}

/// Writes `phase`'s section (and chart) into the report at `out`, keeping the rest of it.
pub fn update(out: &Path, phase: &HotPhase) -> anyhow::Result<()> {
    let (stem, dir) = super::chart_dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (name, _, svg) = chart(phase);
    std::fs::write(dir.join(&name), svg)?;
    let document = std::fs::read_to_string(out).unwrap_or_default();
    let section = section(
        phase,
        &super::commit(),
        &super::machine(),
        Some(&format!("{stem}/{name}")),
    );
    std::fs::write(out, super::replace_between(&document, &section, BEGIN, END))
        .with_context(|| format!("writing {}", out.display()))
}

/// The hot section of an existing document, markers included.
pub(super) fn existing_section(document: &str) -> Option<String> {
    super::between(document, BEGIN, END)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::{HotPlan, HotRunResult};
    use crate::stack_process::StackLog;

    fn phase() -> HotPhase {
        let plan = HotPlan::quick();
        let runs = plan
            .runs
            .iter()
            .map(|run| {
                let mut result = ScenarioResult::pass("hot-product", &run.label());
                let rate = f64::from(run.shards).min(8.0) * 20.0;
                result.put("orders_per_s", rate);
                result.put("allowed_orders_per_s", rate * 1.25);
                result.put("fraction_of_allowed", 0.8);
                result.put("initial_stock", run.stock);
                result.put("units_sold", run.stock - 10);
                result.put("final_stock", 10);
                result.put("stock_conserved", true);
                result.put("refusals_by_answer", "3 × 409 LOCK_CONFLICT");
                result.put(
                    "allowed_derivation",
                    "product item writes: 1 key × 150 units/s",
                );
                HotRunResult {
                    run: run.clone(),
                    result,
                    log: StackLog::default(),
                }
            })
            .collect();
        HotPhase {
            plan,
            runs,
            default_window: Some((10.0, 40.0)),
            started_at: chrono::Utc::now(),
            elapsed: std::time::Duration::from_secs(300),
        }
    }

    #[test]
    fn the_section_has_a_row_per_run_the_command_and_the_derivations() {
        let md = section(&phase(), "abc1234", "2 cores", Some("benchmarks/x.svg"));

        assert!(
            md.starts_with(BEGIN) && md.trim_end().ends_with(END),
            "{md}"
        );
        assert_eq!(md.matches("| S=").count(), 9, "{md}");
        assert!(md.contains("--only hot"), "{md}");
        assert!(md.contains("AWS_LATENCY=dynamodb.transact=20/80"), "{md}");
        assert!(md.contains("- S=64 locks: "), "{md}");
        assert!(md.contains("| S=8 lock-free | 0.06 | 200 |"), "{md}");
        assert!(md.contains("9 of 9 runs met every goal"), "{md}");
    }

    #[test]
    fn the_chart_has_a_group_per_shard_count_and_the_allowed_line() {
        let (name, _, svg) = chart(&phase());

        assert_eq!(name, CHART);
        assert!(svg.contains(">64 shards<") && svg.contains(">allowed (lock-free)<"));
        assert_eq!(svg.matches("<circle").count(), 3);
    }

    #[test]
    fn an_existing_hot_section_is_replaced_and_the_rest_kept() {
        let old = format!("# B\n\n{BEGIN}\nold\n{END}\n\nafter\n");
        let new = format!("{BEGIN}\nnew\n{END}\n");

        let replaced = super::super::replace_between(&old, &new, BEGIN, END);

        assert_eq!(replaced, format!("# B\n\n{BEGIN}\nnew\n{END}\n\nafter\n"));
        assert_eq!(existing_section(&replaced).as_deref(), Some(new.as_str()));
    }
}
