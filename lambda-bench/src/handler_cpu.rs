//! `handler-cpu.json` from the estimates criterion left after `cargo bench --bench create_order`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

/// The criterion group of `benches/create_order.rs`.
pub const GROUP: &str = "handler_cpu";
/// A new order per iteration (unique idempotency key).
pub const CREATE_ORDER_NEW: &str = "create_order_new";
/// The same key again: the replay path.
pub const CREATE_ORDER_REPLAY: &str = "create_order_replay";
/// `block_on` of an empty future on the same runtime: what each iteration's `block_on` adds.
pub const EMPTY_BLOCK_ON: &str = "empty_block_on";

/// The goal for one create-order in the handler: 50 µs.
pub const GOAL_NS: u64 = 50_000;

/// Where criterion writes its results: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`,
/// else `target/criterion` (criterion's own order, minus its `cargo metadata` call).
pub fn default_criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("criterion")
}

/// The median point estimate, in nanoseconds, of benchmark `id` of [`GROUP`].
pub fn median_ns(criterion_dir: &Path, id: &str) -> anyhow::Result<f64> {
    let path = criterion_dir
        .join(GROUP)
        .join(id)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (run the benchmark first)", path.display()))?;
    let estimates: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    estimates["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("no median point estimate in {}", path.display()))
}

/// The report object: the three medians and the goal.
pub fn report(criterion_dir: &Path) -> anyhow::Result<Value> {
    Ok(json!({
        "kind": "handler-cpu",
        "create_order_new_ns": median_ns(criterion_dir, CREATE_ORDER_NEW)?.round(),
        "create_order_replay_ns": median_ns(criterion_dir, CREATE_ORDER_REPLAY)?.round(),
        "empty_block_on_ns": (median_ns(criterion_dir, EMPTY_BLOCK_ON)? * 10.0).round() / 10.0,
        "goal_ns": GOAL_NS,
    }))
}

/// Writes [`report`] to `out_dir/handler-cpu.json` and returns the file's path.
pub fn write_report(criterion_dir: &Path, out_dir: &Path) -> anyhow::Result<(PathBuf, Value)> {
    let report = report(criterion_dir)?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let path = out_dir.join("handler-cpu.json");
    std::fs::write(&path, format!("{report:#}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((path, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_takes_each_benchmarks_median() {
        let dir = std::env::temp_dir().join(format!("handler-cpu-test-{}", std::process::id()));
        for (id, median) in [
            (CREATE_ORDER_NEW, 12_345.6),
            (CREATE_ORDER_REPLAY, 6_000.4),
            (EMPTY_BLOCK_ON, 41.27),
        ] {
            let new = dir.join(GROUP).join(id).join("new");
            std::fs::create_dir_all(&new).unwrap();
            let estimates =
                json!({"mean": {"point_estimate": 1.0}, "median": {"point_estimate": median}});
            std::fs::write(new.join("estimates.json"), estimates.to_string()).unwrap();
        }

        let (path, report) = write_report(&dir, &dir.join("out")).unwrap();

        assert_eq!(
            report,
            json!({"kind": "handler-cpu", "create_order_new_ns": 12_346.0,
                   "create_order_replay_ns": 6_000.0, "empty_block_on_ns": 41.3, "goal_ns": 50_000})
        );
        let written: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(written, report);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
