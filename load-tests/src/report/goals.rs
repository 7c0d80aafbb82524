//! The performance goals, each with its measured figure and met or missed.

use std::fmt::Write;

use super::extras::{extra, find_number};
use super::{Extra, ModeRun, fmt, met};

pub(super) fn goals_section(md: &mut String, runs: &[ModeRun], extras: &[Extra]) {
    let _ = writeln!(md, "## Goals\n");
    let _ = writeln!(md, "| goal | measured | verdict |\n|---|---|---|");
    let per_mode = |f: &dyn Fn(&ModeRun) -> Option<f64>, unit: &str| {
        runs.iter()
            .map(|r| format!("{}: {}", r.label, fmt(f(r), unit)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all = |f: &dyn Fn(&ModeRun) -> Option<bool>| {
        let verdicts: Vec<Option<bool>> = runs.iter().map(f).collect();
        if verdicts.iter().any(Option::is_none) || verdicts.is_empty() {
            None
        } else {
            Some(verdicts.iter().all(|v| *v == Some(true)))
        }
    };
    let lock_free = runs.iter().find(|r| r.label == "locks-off");
    let lock_free_ratio = lock_free.and_then(|r| {
        Some(r.number("flash-sale", "orders_per_s")? / r.number("ceiling", "orders_per_s")?)
    });
    let _ = writeln!(
        md,
        "| lock-free flash sale ≥ 0.7 of the ceiling | {} | {} |",
        fmt(lock_free_ratio, ""),
        met(lock_free_ratio.map(|r| r >= 0.7))
    );
    let p99 = |r: &ModeRun| r.number("high-load", "full_load_p99_ms");
    let _ = writeln!(
        md,
        "| high-load p99 < 100 ms at 50 VUs | {} | {} |",
        per_mode(&p99, " ms"),
        met(all(&|r| p99(r).map(|v| v < 100.0)))
    );
    let drained = |r: &ModeRun| r.number("flash-sale", "queue_drained_after_sell_out_s");
    let _ = writeln!(
        md,
        "| queue drained within 5 s of sell-out | {} | {} |",
        per_mode(&drained, " s"),
        met(all(&|r| drained(r).map(|v| v <= 5.0)))
    );
    let push = |r: &ModeRun| r.number("flash-sale", "push_p99_ms");
    let _ = writeln!(
        md,
        "| 201 → terminal event p99 < 1 s + payment latency (≤ 200 ms) | {} | {} |",
        per_mode(&push, " ms"),
        met(all(&|r| push(r).map(|v| v < 1200.0)))
    );
    let conflicts = |r: &ModeRun| {
        r.number("flash-sale", "lock_conflict_rate_while_stock")
            .map(|x| x * 100.0)
    };
    let _ = writeln!(
        md,
        "| LOCK_CONFLICT < 0.1 % of orders while stock remains | {} | {} |",
        per_mode(&conflicts, " %"),
        met(all(&|r| conflicts(r).map(|v| v < 0.1)))
    );

    // The figures other tools measured.
    let make_run = extra(extras, "make-run").and_then(|v| find_number(v, "ratio"));
    let _ = writeln!(
        md,
        "| `make run` reads within 2x release | {} | {} |",
        fmt(make_run, "x"),
        met(make_run.map(|r| r <= 2.0))
    );
    let cpu = extra(extras, "handler-cpu").and_then(|v| {
        let new = v["create_order_new_ns"].as_f64();
        let replay = v["create_order_replay_ns"].as_f64();
        new.into_iter()
            .chain(replay)
            .reduce(f64::max)
            .map(|ns| ns / 1000.0)
    });
    let _ = writeln!(
        md,
        "| handler CPU < 50 µs (create-order, new and replay) | {} | {} |",
        fmt(cpu, " µs"),
        met(cpu.map(|c| c < 50.0))
    );
    let binaries = extra(extras, "lambda").and_then(|v| v["binaries"].as_array().cloned());
    let worst = |key: &str| {
        binaries
            .as_ref()
            .and_then(|b| b.iter().filter_map(|x| x[key].as_f64()).reduce(f64::max))
    };
    let cold = worst("cold_start_ms_median");
    let _ = writeln!(
        md,
        "| cold start < 20 ms (slowest function, median) | {} | {} |",
        fmt(cold, " ms"),
        met(cold.map(|c| c < 20.0))
    );
    let cold_ratio = worst("cold_start_ratio");
    let _ = writeln!(
        md,
        "| cold start at most 2x a minimal `lambda_runtime` function (slowest, medians) | {} | {} |",
        fmt(cold_ratio, "x"),
        met(cold_ratio.map(|r| r <= 2.0))
    );
    let size = worst("size_bytes");
    let _ = writeln!(
        md,
        "| each binary < 8 MB (largest) | {} | {} |",
        fmt(size.map(|s| s / 1e6), " MB"),
        met(size.map(|s| s < 8e6))
    );
    let _ = writeln!(md);
}
