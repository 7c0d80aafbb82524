//! The partition phase of `make bench` (alone: `load-test bench --only partitions`): one local
//! stack with DynamoDB's per-partition write limit emulated (`PARTITION_LIMIT=on`, a scaled-down
//! `PARTITION_WRITE_UNITS`, `STOCK_LOCKS=off`), the flash sale of one hot product with 1 stock shard
//! then 16, buyers retrying throttled answers; each sale's figures are joined by what the stack's
//! `/_local/partitions` saw: the product's hottest shard key and the orders table's index keys.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::config::TableNames;

use crate::client::{Api, get_json};
use crate::outcome::ScenarioResult;
use crate::run::{emit, run_id};
use crate::scenarios::{Scenario, Sizes, Target};
use crate::stack_process::{StackLog, StackProcess};

/// Keys the stack is asked about per table and index: enough for every shard of a product.
const REPORT_TOP: usize = 100;

/// What the phase runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPlan {
    /// `PARTITION_WRITE_UNITS`: write units per second each key takes.
    pub write_units: u32,
    /// Per sale: the product's stock shards and stock.
    pub sales: Vec<(u32, u64)>,
}

impl PartitionPlan {
    /// `make bench`'s: 200 units/s a key, so one shard written in a transaction (2 units an
    /// order) caps near 100 orders/s, well below what this machine does without the limit; stock
    /// for some 25 s at that cap, and for about 20 s with 16 shards at the machine's pace (some
    /// 500 orders/s).
    pub fn full() -> Self {
        PartitionPlan {
            write_units: 200,
            sales: vec![(1, 2_500), (16, 10_000)],
        }
    }

    /// A few seconds per sale.
    pub fn quick() -> Self {
        PartitionPlan {
            write_units: 200,
            sales: vec![(1, 500), (16, 1_000)],
        }
    }

    /// Orders per second one product shard allows: each order writes the shard item once, in a
    /// transaction, at two units (items under 1 KB).
    pub fn orders_per_shard(&self) -> f64 {
        f64::from(self.write_units) / 2.0
    }
}

/// What the phase measured.
#[derive(Debug, Clone)]
pub struct PartitionPhase {
    /// The plan it ran.
    pub plan: PartitionPlan,
    /// The flash sale per shard count, with the partition figures added.
    pub sales: Vec<ScenarioResult>,
    /// The stack's log summary.
    pub log: StackLog,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// The label of the sale with `shards` stock shards.
pub fn sale_label(shards: u32) -> String {
    match shards {
        1 => "1 shard".to_owned(),
        n => format!("{n} shards"),
    }
}

/// Starts the stack with the limit on and runs each sale of `plan`, emitting its result.
pub async fn run_phase(
    stack_bin: &Path,
    jwt_secret: &str,
    base: &Sizes,
    plan: &PartitionPlan,
    json_out: Option<&Path>,
) -> anyhow::Result<PartitionPhase> {
    let started_at = Utc::now();
    let log_path =
        std::env::temp_dir().join(format!("load-test-stack-partitions-{}.log", run_id()));
    let units = plan.write_units.to_string();
    eprintln!(
        "== starting {} with PARTITION_LIMIT=on PARTITION_WRITE_UNITS={units} STOCK_LOCKS=off",
        stack_bin.display()
    );
    let env = [
        ("STOCK_LOCKS", "off"),
        ("PARTITION_LIMIT", "on"),
        ("PARTITION_WRITE_UNITS", units.as_str()),
    ];
    let stack = StackProcess::start(stack_bin, &env, &log_path).await?;
    let banner = stack.banner.clone();
    let aws = banner.aws.clone().unwrap_or_default();
    let mut target = Target {
        api: Api::new(
            banner.http.as_deref().unwrap_or_default(),
            jwt_secret,
            &run_id(),
        )?,
        ws_url: banner.ws.clone().unwrap_or_default(),
        aws_endpoint: banner.aws.clone(),
        order_queue_url: banner.queue.clone(),
        stock_locks: false,
        label: String::new(),
        jwt_secret: jwt_secret.to_owned(),
    };
    let http = reqwest::Client::new();
    let tables = TableNames::defaults();
    let mut sales = Vec::new();
    let mut failure = None;
    for &(shards, stock) in &plan.sales {
        target.label = sale_label(shards);
        // Users and idempotency keys of their own: a key reused for another product is refused.
        target.api = Api::new(
            banner.http.as_deref().unwrap_or_default(),
            jwt_secret,
            &run_id(),
        )?;
        let sizes = Sizes {
            flash_stock: stock,
            stock_shards: shards,
            retry_busy: true,
            ..base.clone()
        };
        eprintln!("-- flash-sale [{}] stock {stock} ...", target.label);
        let measured = async {
            // Payments of an earlier sale drain first: what follows is this sale's.
            target.settle_queue().await;
            partitions_report(&http, &aws, true).await?;
            let mut result = Scenario::FlashSale.run(&target, &sizes).await;
            let report = partitions_report(&http, &aws, false).await?;
            add_partition_figures(&mut result, &report, &tables);
            Ok::<_, anyhow::Error>(result)
        }
        .await;
        match measured {
            Ok(result) => {
                emit(&result, json_out)?;
                sales.push(result);
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let log = stack.stop().await?;
    if let Some(error) = failure {
        return Err(error.context("the partition phase"));
    }
    Ok(PartitionPhase {
        plan: plan.clone(),
        sales,
        log,
        started_at,
    })
}

/// `GET /_local/partitions` of the stack's AWS endpoint (`reset`: and start afresh); an error
/// when the limit is off.
pub async fn partitions_report(
    http: &reqwest::Client,
    aws_endpoint: &str,
    reset: bool,
) -> anyhow::Result<Value> {
    let reset = if reset { "&reset=true" } else { "" };
    let url = format!("{aws_endpoint}/_local/partitions?top={REPORT_TOP}{reset}");
    let report = get_json(http, &url).await.context("the partition report")?;
    anyhow::ensure!(
        report["limit"] == "on",
        "the stack's partition limit is off (a local-stack from before PARTITION_LIMIT?)"
    );
    Ok(report)
}

/// Adds what the limiter saw to a flash sale's result: the product's shard keys (the product
/// item `<id>` and its shard items `<id>#<k>` in the products table) and each index of the
/// orders table.
pub fn add_partition_figures(result: &mut ScenarioResult, report: &Value, tables: &TableNames) {
    let partitions = &report["partitions"];
    let hottest = |resource: &str| -> Vec<Value> {
        partitions[resource]["hottest"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let product = result
        .get("product_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let shard_keys: Vec<Value> = hottest(&tables.products)
        .into_iter()
        .filter(|k| {
            k["key"]
                .as_str()
                .is_some_and(|key| key == product || key.starts_with(&format!("{product}#")))
        })
        .collect();
    let number = |value: &Value, key: &str| value[key].as_f64().unwrap_or(0.0);
    let top = shard_keys
        .iter()
        .max_by(|a, b| number(a, "units").total_cmp(&number(b, "units")));
    let sale_s = result.number("sale_s").unwrap_or(0.0);
    result.put("product_keys_written", shard_keys.len() as u64);
    if let Some(top) = top {
        result.put("product_key_hottest", top["key"].clone());
        result.put("product_key_units", number(top, "units"));
        result.put(
            "product_key_peak_units_per_s",
            number(top, "peak_units_per_s"),
        );
        if sale_s > 0.0 {
            result.put(
                "product_key_mean_units_per_s",
                number(top, "units") / sale_s,
            );
        }
    }
    result.put(
        "product_keys_throttled",
        shard_keys
            .iter()
            .map(|k| number(k, "throttled"))
            .sum::<f64>(),
    );
    let prefix = format!("{}/", tables.orders);
    for (resource, index) in partitions.as_object().into_iter().flatten() {
        let Some(name) = resource.strip_prefix(&prefix) else {
            continue;
        };
        let Some(top) = index["hottest"].as_array().and_then(|keys| keys.first()) else {
            continue;
        };
        result.put(&format!("orders_index_{name}_keys"), index["keys"].clone());
        result.put(
            &format!("orders_index_{name}_hottest_key"),
            top["key"].clone(),
        );
        result.put(
            &format!("orders_index_{name}_hottest_units"),
            number(top, "units"),
        );
        result.put(
            &format!("orders_index_{name}_peak_units_per_s"),
            number(index, "peak_units_per_s"),
        );
    }
    result.put("limiter_requests", report["requests"].clone());
    result.put(
        "limiter_throttled_requests",
        report["throttled_requests"].clone(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_products_shard_keys_and_the_orders_indexes_are_read_from_the_report() {
        let mut result = ScenarioResult::pass("flash-sale", "16 shards");
        result.put("product_id", "p1");
        result.put("sale_s", 10.0);
        let report = json!({
            "limit": "on", "requests": 900, "throttled_requests": 12,
            "partitions": {
                "products": {"kind": "table", "keys": 3, "peak_units_per_s": 210.0, "hottest": [
                    {"key": "p1#3", "units": 400.0, "peak_units_per_s": 60.0, "throttled": 1},
                    {"key": "p1", "units": 380.0, "peak_units_per_s": 210.0, "throttled": 2},
                    {"key": "p10", "units": 900.0, "peak_units_per_s": 90.0, "throttled": 0},
                ]},
                "orders/unsettled": {"kind": "index", "keys": 256, "peak_units_per_s": 9.0,
                    "hottest": [{"key": "PENDING#7", "units": 30.0, "peak_units_per_s": 9.0}]},
                "orders": {"kind": "table", "keys": 500, "hottest": []},
            }
        });

        add_partition_figures(&mut result, &report, &TableNames::defaults());

        assert_eq!(result.number("product_keys_written"), Some(2.0));
        assert_eq!(result.get("product_key_hottest"), Some(&json!("p1#3")));
        assert_eq!(result.number("product_key_mean_units_per_s"), Some(40.0));
        assert_eq!(result.number("product_keys_throttled"), Some(3.0));
        assert_eq!(
            result.get("orders_index_unsettled_hottest_key"),
            Some(&json!("PENDING#7"))
        );
        assert_eq!(
            result.number("orders_index_unsettled_peak_units_per_s"),
            Some(9.0)
        );
        assert_eq!(result.number("limiter_throttled_requests"), Some(12.0));
    }

    #[test]
    fn one_shard_caps_at_half_the_units_of_a_key() {
        assert_eq!(PartitionPlan::full().orders_per_shard(), 100.0);
        assert_eq!(sale_label(1), "1 shard");
        assert_eq!(sale_label(16), "16 shards");
    }
}
