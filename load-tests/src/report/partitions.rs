//! The report's section on the partition phase: the flash sale of one hot product with 1 stock
//! shard and with 16 under the emulated per-partition limit, side by side, what the limiter saw
//! per key, and what to conclude. The section sits between markers, so `load-test bench --only
//! partitions` replaces it in an existing report and a run without the phase keeps it.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;

use crate::outcome::{ScenarioResult, show};
use crate::partitions::PartitionPhase;
use crate::svg::{self, Series};

use super::fmt;

/// Where the section begins and ends in the document.
pub(super) const BEGIN: &str = "<!-- partitions:begin -->";
pub(super) const END: &str = "<!-- partitions:end -->";
/// The section's chart, in the report's chart folder.
const CHART: &str = "partitions-orders-per-second.svg";

/// The section's chart: orders per second of each sale.
pub(super) fn chart(phase: &PartitionPhase) -> (String, String, String) {
    let series: Vec<Series> = phase
        .sales
        .iter()
        .filter_map(|sale| {
            let points = sale.get("per_second")?.as_array()?;
            Some(Series {
                name: sale.label.clone(),
                points: points
                    .iter()
                    .filter_map(|p| Some((p["second"].as_f64()? + 0.5, p["count"].as_f64()?)))
                    .collect(),
            })
        })
        .collect();
    let title = format!(
        "Flash sale under a {} units/s partition limit: orders/s per second",
        phase.plan.write_units
    );
    let svg = svg::line_chart(
        &title,
        "seconds since the sale started",
        "orders/s (201s)",
        &series,
    );
    (CHART.to_owned(), title, svg)
}

/// The section, markers included; `chart` is the chart's path relative to the report.
pub(super) fn section(phase: &PartitionPhase, commit: &str, chart: Option<&str>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{BEGIN}");
    let plan = &phase.plan;
    let per_shard = plan.orders_per_shard();
    let _ = writeln!(
        md,
        "## Past one partition: a hot product over 1 and 16 stock shards\n"
    );
    let _ = writeln!(
        md,
        "- Date: {} (commit `{commit}`); to rerun this section alone: `load-test bench --only partitions`\n",
        phase.started_at.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        md,
        "One local stack started with `PARTITION_LIMIT=on PARTITION_WRITE_UNITS={} STOCK_LOCKS=off` \
         (and the bench settings above): the AWS endpoint charges every write to its partition key \
         values and refuses a key past {} write units a second, as DynamoDB refuses a hot key of an \
         on-demand table past 1,000 (`docs/decisions.md`). The limit is scaled down five times so \
         that one partition caps well below what this machine does without it: an order writes its \
         product's shard item once, in a transaction, at 2 units, so one shard allows about {} \
         orders/s and 16 shards {}. The flash sale then runs twice on it, one hot product with 1 \
         stock shard, then a new one with 16, each with {} buyers whose WebSockets are open and who \
         retry a 503 `SERVICE_UNAVAILABLE` or 409 `LOCK_CONFLICT` (what the API answers when \
         DynamoDB throttles past its retries) with the same idempotency key after 10-20 ms, as a \
         real client would. Key figures come from the stack's `GET /_local/partitions`, reset \
         before each sale.\n",
        plan.write_units,
        plan.write_units,
        fmt(Some(per_shard), ""),
        fmt(Some(per_shard * 16.0), ""),
        phase
            .sales
            .first()
            .and_then(|s| s.number("buyers"))
            .map_or("the".to_owned(), |n| format!("{n:.0}")),
    );

    let labels: Vec<&str> = phase.sales.iter().map(|s| s.label.as_str()).collect();
    let _ = writeln!(md, "| figure | {} |", labels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(labels.len()));
    let row = |md: &mut String, name: &str, cell: &dyn Fn(&ScenarioResult) -> String| {
        let cells: Vec<String> = phase.sales.iter().map(cell).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    };
    let number = |sale: &ScenarioResult, key: &str, unit: &str| fmt(sale.number(key), unit);
    // Two figures of a sale in one cell: `a / b`.
    let pair = |sale: &ScenarioResult, first: &str, second: &str, unit: &str| {
        format!(
            "{} / {}",
            number(sale, first, unit),
            number(sale, second, unit)
        )
    };
    row(&mut md, "verdict", &|s| s.verdict.as_str().to_owned());
    row(&mut md, "stock, stock shards", &|s| {
        format!(
            "{}, {}",
            number(s, "initial_stock", ""),
            number(s, "stock_shards", "")
        )
    });
    row(&mut md, "**orders/s**", &|s| {
        format!("**{}**", number(s, "orders_per_s", ""))
    });
    row(
        &mut md,
        "orders/s after the first second (its burst spent)",
        &|s| fmt(after_first_second(s), ""),
    );
    row(&mut md, "orders/s the limit allows the product", &|s| {
        fmt(s.number("stock_shards").map(|n| n * per_shard), "")
    });
    row(&mut md, "sale (s)", &|s| number(s, "sale_s", " s"));
    row(&mut md, "p50 / p99 of the 201s", &|s| {
        pair(s, "p50_ms", "p99_ms", " ms")
    });
    row(&mut md, "p99 from a key's first try to its 201", &|s| {
        number(s, "p99_with_retries_ms", " ms")
    });
    row(
        &mut md,
        "throttled answers (503 + 409 `LOCK_CONFLICT`), retried",
        &|s| {
            format!(
                "{} ({} × 503)",
                number(s, "throttled_answers", ""),
                number(s, "unavailable_503", "")
            )
        },
    );
    row(&mut md, "writes the limiter refused / charged", &|s| {
        pair(s, "limiter_throttled_requests", "limiter_requests", "")
    });
    row(&mut md, "product keys written (item + shard items)", &|s| {
        number(s, "product_keys_written", "")
    });
    row(
        &mut md,
        "hottest product-shard key: units/s mean over the sale / most in one second",
        &|s| {
            pair(
                s,
                "product_key_mean_units_per_s",
                "product_key_peak_units_per_s",
                "",
            )
        },
    );
    row(
        &mut md,
        "hottest product-shard key: units, refusals",
        &|s| {
            format!(
                "{}, {}",
                number(s, "product_key_units", ""),
                number(s, "product_keys_throttled", "")
            )
        },
    );
    for index in index_names(&phase.sales) {
        row(
            &mut md,
            &format!(
                "orders `{index}` index: hottest key's units, most in one second, keys written"
            ),
            &|s| {
                let key = s
                    .get(&format!("orders_index_{index}_hottest_key"))
                    .map_or("n/a".to_owned(), show);
                format!(
                    "{} (`{key}`), {}, {}",
                    number(s, &format!("orders_index_{index}_hottest_units"), ""),
                    number(s, &format!("orders_index_{index}_peak_units_per_s"), "/s"),
                    number(s, &format!("orders_index_{index}_keys"), "")
                )
            },
        );
    }
    row(&mut md, "final stock, units in live orders", &|s| {
        format!(
            "{}, {}",
            number(s, "final_stock", ""),
            number(s, "units_in_live_orders", "")
        )
    });
    let _ = writeln!(md);
    for sale in &phase.sales {
        for failure in &sale.failures {
            let _ = writeln!(md, "- **{}: {failure}**", sale.label);
        }
    }
    if let Some(path) = chart {
        let _ = writeln!(md, "![orders/s per second, 1 and 16 shards]({path})\n");
    }
    let _ = writeln!(md, "{}", conclusion(phase));
    let _ = writeln!(
        md,
        "\nThe stack logged {} WARN and {} ERROR lines and exited: {}.",
        phase.log.warnings, phase.log.errors, phase.log.exit
    );
    let _ = writeln!(md, "{END}");
    md
}

/// What a reader should take from the figures, computed from them.
fn conclusion(phase: &PartitionPhase) -> String {
    let units = f64::from(phase.plan.write_units);
    let per_shard = phase.plan.orders_per_shard();
    let (Some(one), Some(many)) = (phase.sales.first(), phase.sales.last()) else {
        return "No sale ran.".to_owned();
    };
    let rate = |s: &ScenarioResult| s.number("orders_per_s").unwrap_or(0.0);
    let mean = |s: &ScenarioResult| s.number("product_key_mean_units_per_s").unwrap_or(0.0);
    let shards = many.number("stock_shards").unwrap_or(1.0);
    let steady = after_first_second(one).unwrap_or_else(|| rate(one));
    let mut text = format!(
        "**What this shows.** With one shard every order writes the same product item, so the \
         product is one partition key: the sale ran at {} orders/s, and {} once the key's first \
         second of burst was spent, {} of the {} orders/s that key allows ({} units/s ÷ 2 units \
         per transactional write); the key averaged {} units/s over the whole sale. ",
        fmt(Some(rate(one)), ""),
        fmt(Some(steady), ""),
        percent(steady / per_shard),
        fmt(Some(per_shard), ""),
        phase.plan.write_units,
        fmt(Some(mean(one)), ""),
    );
    text.push_str(if mean(one) >= 0.8 * units {
        "The partition is the cap, whatever the machine could do. "
    } else {
        "The key stayed below its limit, so something else capped this sale too: read the \
         throttled answers and the machine's load before trusting the ratio below. "
    });
    let _ = write!(
        text,
        "With {} shards the same sale ran at {} orders/s, {:.1}x, where the limit allows {} \
         orders/s; its hottest shard key averaged {} units/s. ",
        fmt(Some(shards), ""),
        fmt(Some(rate(many)), ""),
        if rate(one) > 0.0 {
            rate(many) / rate(one)
        } else {
            0.0
        },
        fmt(Some(per_shard * shards), ""),
        fmt(Some(mean(many)), ""),
    );
    text.push_str(if mean(many) < 0.8 * units {
        "No partition is the limit any more: this machine is (two cores running the stack, its \
         emulators, the limiter's reads and the buyers). The shards raised the product's cap by \
         their number; the ratio measured here is what this machine could use of it. "
    } else {
        "Its keys still ran near the limit: more shards would lift the cap further. "
    });
    text.push_str(
        "Scaled to AWS's 1,000 units/s a key, one shard caps a product near 500 orders/s and 16 \
         shards near 8,000 (`docs/scaling.md`).",
    );
    for index in index_names(&phase.sales) {
        let peak = phase
            .sales
            .iter()
            .filter_map(|s| s.number(&format!("orders_index_{index}_peak_units_per_s")))
            .fold(0.0, f64::max);
        let _ = write!(
            text,
            " The orders table's `{index}` index took at most {} units in one second on any key \
             ({} of the limit).",
            fmt(Some(peak), ""),
            percent(peak / units),
        );
    }
    text
}

/// Orders per second once the first second is over: a key's bucket starts full, so the first
/// second may take twice the limit, and what follows is the rate the limit sustains.
fn after_first_second(sale: &ScenarioResult) -> Option<f64> {
    let seconds = sale.get("per_second")?.as_array()?;
    let sale_s = sale.number("sale_s")?;
    let later: f64 = seconds
        .iter()
        .skip(1)
        .filter_map(|p| p["count"].as_f64())
        .sum();
    (sale_s > 1.5).then(|| later / (sale_s - 1.0))
}

fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.0} %", share * 100.0)
    } else {
        "n/a".to_owned()
    }
}

/// The orders table's indexes some sale has figures for, in order of appearance.
fn index_names(sales: &[ScenarioResult]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for sale in sales {
        for (key, _) in &sale.figures {
            if let Some(name) = key
                .strip_prefix("orders_index_")
                .and_then(|rest| rest.strip_suffix("_peak_units_per_s"))
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// `document` with its partition section replaced by `section`, or `section` appended.
pub(super) fn replace_section(document: &str, section: &str) -> String {
    super::replace_between(document, section, BEGIN, END)
}

/// The partition section of an existing document, markers included.
pub(super) fn existing_section(document: &str) -> Option<String> {
    super::between(document, BEGIN, END)
}

/// Writes `phase`'s section (and chart) into the report at `out`, keeping the rest of it.
pub fn update(out: &Path, phase: &PartitionPhase) -> anyhow::Result<()> {
    let (stem, dir) = super::chart_dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (name, _, svg) = chart(phase);
    std::fs::write(dir.join(&name), svg)?;
    let document = std::fs::read_to_string(out).unwrap_or_default();
    let section = section(phase, &super::commit(), Some(&format!("{stem}/{name}")));
    std::fs::write(out, replace_section(&document, &section))
        .with_context(|| format!("writing {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitions::PartitionPlan;
    use crate::stack_process::StackLog;

    fn sale(label: &str, shards: f64, rate: f64, mean: f64) -> ScenarioResult {
        let mut sale = ScenarioResult::pass("flash-sale", label);
        if shards == 1.0 {
            sale.put(
                "per_second",
                serde_json::json!([{"second": 0, "count": 200}, {"second": 1, "count": 95}]),
            );
            sale.put("sale_s", 2.0);
        }
        for (key, value) in [
            ("buyers", 64.0),
            ("stock_shards", shards),
            ("orders_per_s", rate),
            ("product_key_mean_units_per_s", mean),
            ("orders_index_unsettled_peak_units_per_s", 12.0),
            ("orders_index_unsettled_hottest_units", 40.0),
        ] {
            sale.put(key, value);
        }
        sale
    }

    fn phase() -> PartitionPhase {
        PartitionPhase {
            plan: PartitionPlan::full(),
            sales: vec![
                sale("1 shard", 1.0, 96.0, 192.0),
                sale("16 shards", 16.0, 384.0, 48.0),
            ],
            log: StackLog::default(),
            started_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_section_sets_both_sales_side_by_side_and_concludes_from_them() {
        let md = section(&phase(), "abc1234", None);

        assert!(
            md.starts_with(BEGIN) && md.trim_end().ends_with(END),
            "{md}"
        );
        assert!(md.contains("| figure | 1 shard | 16 shards |"), "{md}");
        assert!(md.contains("| **orders/s** | **96** | **384** |"), "{md}");
        assert!(
            md.contains("| orders/s the limit allows the product | 100 | 1600 |"),
            "{md}"
        );
        assert!(md.contains("95 % of the 100 orders/s"), "{md}");
        assert!(
            md.contains("| orders/s after the first second (its burst spent) | 95 | n/a |"),
            "{md}"
        );
        assert!(md.contains("4.0x"), "{md}");
        assert!(
            md.contains("`unsettled` index took at most 12 units"),
            "{md}"
        );
    }

    #[test]
    fn an_existing_section_is_replaced_and_a_missing_one_appended() {
        let old = format!("# Benchmarks\n\nbefore\n\n{BEGIN}\nold\n{END}\n\nafter\n");
        let new = format!("{BEGIN}\nnew\n{END}\n");

        let replaced = replace_section(&old, &new);
        assert_eq!(
            replaced,
            format!("# Benchmarks\n\nbefore\n\n{BEGIN}\nnew\n{END}\n\nafter\n")
        );
        assert_eq!(existing_section(&replaced).as_deref(), Some(new.as_str()));
        let appended = replace_section("# Benchmarks\n", &new);
        assert_eq!(appended, format!("# Benchmarks\n\n{new}"));
    }
}
