//! What the emulated AWS limits allow a hot product, and the goals a run of the hot-product phase
//! is judged by: pure functions over the figures of the stack's `GET /_local/conditions` and
//! `GET /_local/partitions` (`localstack/src/conditions`, `localstack/src/partitions`).
//!
//! A product's stock shard 0 lives in the product item `<id>`, which every order also reads for
//! its price; shards 1..S are the items `<id>#<k>` (`shared/src/adapters/dynamodb/stock_layout.rs`).
//! So the product's keys are two groups with different loads: the product item, and the S - 1
//! shard items, over which orders spread evenly (a random shard per order). Each group allows
//! `keys × units per key per second ÷ units per order` orders a second, for writes and for reads;
//! the product is allowed the smallest of these rates. With the load spread evenly over all S keys
//! this is the plain `S × limit ÷ units per order`.

use serde_json::Value;

/// The goals a run is judged by.
pub mod goals {
    /// Orders/s at least this share of what the emulated limits allow.
    pub const MIN_FRACTION_OF_ALLOWED: f64 = 0.8;
    /// Refusals (409 other than a sold-out, 503, 429) while stock remained under this share of
    /// order attempts.
    pub const MAX_REFUSAL_SHARE: f64 = 0.01;
}

/// The figures of `GET /_local/conditions` a run reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConditionsFigures {
    /// `dynamodb.transact`'s emulated latency, median and p99 (ms): the transaction window.
    pub transact_median_ms: Option<f64>,
    /// See [`ConditionsFigures::transact_median_ms`].
    pub transact_p99_ms: Option<f64>,
    /// Requests the latency emulation delayed.
    pub delayed_requests: u64,
    /// Transactions cancelled with `TransactionConflict`.
    pub transactions_cancelled: u64,
    /// Single-item writes refused with `TransactionConflictException` (a transaction held the
    /// item).
    pub single_writes_refused: u64,
    /// Transactions the conflict emulation saw.
    pub transactions_seen: u64,
    /// Write units per second one partition key takes, scale applied.
    pub write_units_per_key: Option<f64>,
    /// Read units per second one partition key takes, scale applied.
    pub read_units_per_key: Option<f64>,
    /// `PARTITION_SCALE`.
    pub scale: Option<f64>,
    /// Writes refused as throttled.
    pub throttled_writes: u64,
    /// Reads refused as throttled.
    pub throttled_reads: u64,
}

impl ConditionsFigures {
    /// Reads the report; a figure it lacks is `None` or 0.
    pub fn from_report(report: &Value) -> Self {
        let count = |value: &Value| value.as_u64().unwrap_or(0);
        let transact = &report["latency"]["classes"]["dynamodb.transact"];
        let partitions = &report["partitions"];
        let scale = partitions["scale"].as_f64();
        ConditionsFigures {
            transact_median_ms: transact["median_ms"].as_f64(),
            transact_p99_ms: transact["p99_ms"].as_f64(),
            delayed_requests: count(&report["latency"]["delayed_requests"]),
            transactions_cancelled: count(&report["conflicts"]["transactions_cancelled"]),
            single_writes_refused: count(&report["conflicts"]["single_writes_refused"]),
            transactions_seen: count(&report["conflicts"]["transactions_seen"]),
            write_units_per_key: partitions["write_units_per_second"].as_f64(),
            read_units_per_key: partitions["read_units_per_second"].as_f64(),
            scale,
            throttled_writes: count(&partitions["throttled_writes"]),
            throttled_reads: count(&partitions["throttled_reads"]),
        }
    }

    /// Transaction conflicts met: cancelled transactions and refused single writes.
    pub fn conflicts(&self) -> u64 {
        self.transactions_cancelled + self.single_writes_refused
    }

    /// Throttles met: refused writes and reads.
    pub fn throttles(&self) -> u64 {
        self.throttled_writes + self.throttled_reads
    }
}

/// `AWS_LATENCY` for `factor` times the transaction window `median_ms`/`p99_ms`.
pub fn transact_latency_setting(median_ms: f64, p99_ms: f64, factor: f64) -> String {
    format!(
        "dynamodb.transact={}/{}",
        trim_number(median_ms * factor),
        trim_number(p99_ms * factor)
    )
}

/// `12` for 12.0, `12.5` for 12.5.
fn trim_number(value: f64) -> String {
    if value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// Units one partition key took over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyUnits {
    /// The key's value (`<product id>` or `<product id>#<k>`).
    pub key: String,
    /// Write units charged to it.
    pub write_units: f64,
    /// Read units charged to it.
    pub read_units: f64,
}

/// The product table's keys of `product` in a `/_local/partitions` report: the product item and
/// its shard items, with their write units (`partitions`) and read units (`reads`).
pub fn product_keys(report: &Value, products_table: &str, product: &str) -> Vec<KeyUnits> {
    let shard_prefix = format!("{product}#");
    let mut keys: Vec<KeyUnits> = Vec::new();
    for (section, kind) in [("partitions", UnitKind::Write), ("reads", UnitKind::Read)] {
        let entries = report[section][products_table]["hottest"]
            .as_array()
            .into_iter()
            .flatten();
        for entry in entries {
            let Some(key) = entry["key"].as_str() else {
                continue;
            };
            if key != product && !key.starts_with(&shard_prefix) {
                continue;
            }
            let units = entry["units"].as_f64().unwrap_or(0.0);
            let slot = match keys.iter_mut().position(|k| k.key == key) {
                Some(at) => &mut keys[at],
                None => {
                    keys.push(KeyUnits {
                        key: key.to_owned(),
                        write_units: 0.0,
                        read_units: 0.0,
                    });
                    keys.last_mut().expect("just pushed")
                }
            };
            match kind {
                UnitKind::Write => slot.write_units += units,
                UnitKind::Read => slot.read_units += units,
            }
        }
    }
    keys
}

/// What the product's keys took between two `/_local/partitions` reports of one stack (the
/// later minus the earlier, per key).
pub fn product_keys_between(
    before: &Value,
    after: &Value,
    products_table: &str,
    product: &str,
) -> Vec<KeyUnits> {
    let earlier = product_keys(before, products_table, product);
    product_keys(after, products_table, product)
        .into_iter()
        .map(|mut key| {
            if let Some(old) = earlier.iter().find(|k| k.key == key.key) {
                key.write_units -= old.write_units;
                key.read_units -= old.read_units;
            }
            key
        })
        .collect()
}

/// Writes or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// Write units, against the write limit per key.
    Write,
    /// Read units, against the read limit per key.
    Read,
}

impl UnitKind {
    /// `writes` / `reads`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Write => "writes",
            UnitKind::Read => "reads",
        }
    }
}

/// What one group of the product's keys allows, for writes or for reads.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBound {
    /// `product item` or `shard items`.
    pub group: &'static str,
    /// Writes or reads.
    pub kind: UnitKind,
    /// Keys in the group.
    pub keys: u32,
    /// Units per second one key takes.
    pub limit_per_key: f64,
    /// Units the group took per order placed.
    pub units_per_order: f64,
    /// `keys × limit_per_key ÷ units_per_order`.
    pub orders_per_s: f64,
}

impl GroupBound {
    /// `63 keys × 60 ÷ 1.52 units/order = 2487`.
    pub fn derivation(&self) -> String {
        format!(
            "{} {}: {} key{} × {} units/s ÷ {:.2} units/order = {:.0} orders/s",
            self.group,
            self.kind.as_str(),
            self.keys,
            if self.keys == 1 { "" } else { "s" },
            trim_number((self.limit_per_key * 100.0).round() / 100.0),
            self.units_per_order,
            self.orders_per_s
        )
    }
}

/// What the emulated limits allow the product, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedRate {
    /// Every group's bound that the run loaded (units per order above zero).
    pub bounds: Vec<GroupBound>,
}

impl AllowedRate {
    /// Orders per second the product is allowed: the smallest bound.
    pub fn orders_per_s(&self) -> Option<f64> {
        self.binding().map(|b| b.orders_per_s)
    }

    /// The bound that sets the rate.
    pub fn binding(&self) -> Option<&GroupBound> {
        self.bounds
            .iter()
            .min_by(|a, b| a.orders_per_s.total_cmp(&b.orders_per_s))
    }

    /// Every bound's derivation, the binding one first.
    pub fn derivation(&self) -> String {
        let mut bounds: Vec<&GroupBound> = self.bounds.iter().collect();
        bounds.sort_by(|a, b| a.orders_per_s.total_cmp(&b.orders_per_s));
        bounds
            .iter()
            .map(|b| b.derivation())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What the limits allow a product with `shards` stock shards whose keys took `keys` over
/// `orders` orders placed: per group (the product item; the shard items) and per kind, `keys ×
/// limit ÷ (units ÷ orders)`. `None` without orders.
pub fn allowed_rate(
    product: &str,
    shards: u32,
    keys: &[KeyUnits],
    orders: u64,
    write_limit_per_key: f64,
    read_limit_per_key: f64,
) -> Option<AllowedRate> {
    if orders == 0 {
        return None;
    }
    let item: Vec<&KeyUnits> = keys.iter().filter(|k| k.key == product).collect();
    let shard_items: Vec<&KeyUnits> = keys.iter().filter(|k| k.key != product).collect();
    let groups = [
        ("product item", 1, item),
        ("shard items", shards.saturating_sub(1), shard_items),
    ];
    let mut bounds = Vec::new();
    for (group, group_keys, members) in groups {
        if group_keys == 0 {
            continue;
        }
        for (kind, limit) in [
            (UnitKind::Write, write_limit_per_key),
            (UnitKind::Read, read_limit_per_key),
        ] {
            let units: f64 = members
                .iter()
                .map(|k| match kind {
                    UnitKind::Write => k.write_units,
                    UnitKind::Read => k.read_units,
                })
                .sum();
            if units <= 0.0 {
                continue;
            }
            let units_per_order = units / orders as f64;
            bounds.push(GroupBound {
                group,
                kind,
                keys: group_keys,
                limit_per_key: limit,
                units_per_order,
                orders_per_s: f64::from(group_keys) * limit / units_per_order,
            });
        }
    }
    Some(AllowedRate { bounds })
}

/// What a run is judged by.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalFigures {
    /// Steady orders/s over what the limits allow (`None`: not derived).
    pub fraction_of_allowed: Option<f64>,
    /// Refusals while stock remained.
    pub refusals_while_stock: u64,
    /// Order attempts while stock remained (201s and refusals).
    pub attempts_while_stock: u64,
    /// Units in PAID orders.
    pub units_sold: u64,
    /// Units in orders not settled yet (PENDING, PROCESSING).
    pub units_unsettled: u64,
    /// The product's stock at the end.
    pub units_left: u64,
    /// The product's stock at the start.
    pub initial_stock: u64,
}

impl GoalFigures {
    /// Refusals as a share of attempts while stock remained.
    pub fn refusal_share(&self) -> f64 {
        if self.attempts_while_stock == 0 {
            0.0
        } else {
            self.refusals_while_stock as f64 / self.attempts_while_stock as f64
        }
    }

    /// Whether every unit is accounted for and none sold twice: sold + unsettled + left =
    /// initial.
    pub fn stock_conserved(&self) -> bool {
        self.units_sold + self.units_unsettled + self.units_left == self.initial_stock
    }
}

/// The goals a run missed, one line each; PASS when empty.
pub fn missed_goals(figures: &GoalFigures) -> Vec<String> {
    let mut missed = Vec::new();
    match figures.fraction_of_allowed {
        Some(fraction) if fraction >= goals::MIN_FRACTION_OF_ALLOWED => {}
        Some(fraction) => missed.push(format!(
            "orders/s reached {:.2} of what the limits allow, under the goal of {}",
            fraction,
            goals::MIN_FRACTION_OF_ALLOWED
        )),
        None => missed.push("no allowed rate could be derived (no orders placed?)".to_owned()),
    }
    if figures.refusal_share() >= goals::MAX_REFUSAL_SHARE {
        missed.push(format!(
            "{} refusals while stock remained ({:.2} % of {} attempts), goal under {} %",
            figures.refusals_while_stock,
            figures.refusal_share() * 100.0,
            figures.attempts_while_stock,
            goals::MAX_REFUSAL_SHARE * 100.0
        ));
    }
    if figures.units_sold + figures.units_unsettled > figures.initial_stock {
        missed.push(format!(
            "oversold: {} units sold or unsettled for a stock of {}",
            figures.units_sold + figures.units_unsettled,
            figures.initial_stock
        ));
    } else if !figures.stock_conserved() {
        missed.push(format!(
            "units not conserved: {} sold + {} unsettled + {} left ≠ {} initial",
            figures.units_sold, figures.units_unsettled, figures.units_left, figures.initial_stock
        ));
    }
    missed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(key: &str, write_units: f64, read_units: f64) -> KeyUnits {
        KeyUnits {
            key: key.to_owned(),
            write_units,
            read_units,
        }
    }

    #[test]
    fn one_shard_is_allowed_its_key_limit_over_the_units_an_order_takes() {
        // 1000 orders wrote the product item 2400 units (transactions at 2, restores) and read
        // it 500 (an eventually consistent price read each).
        let keys = [key("p", 2400.0, 500.0)];

        let allowed = allowed_rate("p", 1, &keys, 1000, 150.0, 450.0).unwrap();

        assert_eq!(allowed.bounds.len(), 2);
        let binding = allowed.binding().unwrap();
        assert_eq!(binding.kind, UnitKind::Write);
        assert_eq!(binding.group, "product item");
        assert!((allowed.orders_per_s().unwrap() - 62.5).abs() < 1e-9);
        assert!(
            allowed
                .derivation()
                .starts_with("product item writes: 1 key × 150 units/s ÷ 2.40 units/order = 62"),
            "{}",
            allowed.derivation()
        );
    }

    #[test]
    fn with_many_shards_the_product_items_price_reads_can_bind_before_the_shards_writes() {
        // 64 shards: the item holds shard 0 and takes every price read; 63 shard items share the
        // rest of the writes.
        let mut keys = vec![key("p", 60.0, 2000.0)];
        for k in 1..64 {
            keys.push(key(&format!("p#{k}"), 60.0, 0.0));
        }

        let allowed = allowed_rate("p", 64, &keys, 4000, 30.0, 90.0).unwrap();

        // Shard items: 63 × 30 ÷ (3780 / 4000) = 2000; item reads: 90 ÷ 0.5 = 180.
        let binding = allowed.binding().unwrap();
        assert_eq!(
            (binding.group, binding.kind),
            ("product item", UnitKind::Read)
        );
        assert!((allowed.orders_per_s().unwrap() - 180.0).abs() < 1e-9);
        let shards = allowed
            .bounds
            .iter()
            .find(|b| b.group == "shard items")
            .unwrap();
        assert_eq!(shards.keys, 63);
        assert!((shards.orders_per_s - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn evenly_spread_units_give_s_times_the_limit_over_units_per_order() {
        let keys: Vec<KeyUnits> = std::iter::once(key("p", 100.0, 0.0))
            .chain((1..8).map(|k| key(&format!("p#{k}"), 100.0, 0.0)))
            .collect();

        let allowed = allowed_rate("p", 8, &keys, 400, 50.0, 150.0).unwrap();

        // 800 units over 400 orders: 2 units/order; 8 × 50 ÷ 2 = 200.
        assert!((allowed.orders_per_s().unwrap() - 200.0).abs() < 1e-9);
    }

    #[test]
    fn no_orders_allow_nothing_to_be_derived() {
        assert_eq!(allowed_rate("p", 1, &[], 0, 1.0, 1.0), None);
    }

    #[test]
    fn the_products_keys_are_read_from_the_partition_report_and_others_ignored() {
        let report = json!({
            "partitions": {"products": {"hottest": [
                {"key": "p", "units": 10.0},
                {"key": "p#2", "units": 6.0},
                {"key": "p2", "units": 99.0},
                {"key": "p2#1", "units": 99.0},
            ]}},
            "reads": {"products": {"hottest": [
                {"key": "p2", "units": 50.0},
                {"key": "p", "units": 4.0},
            ]}},
        });

        let keys = product_keys(&report, "products", "p");

        assert_eq!(keys, vec![key("p", 10.0, 4.0), key("p#2", 6.0, 0.0)]);
    }

    #[test]
    fn units_between_two_reports_are_the_later_minus_the_earlier_per_key() {
        let before = json!({"partitions": {"products": {"hottest": [{"key": "p", "units": 4.0}]}}});
        let after = json!({
            "partitions": {"products": {"hottest": [
                {"key": "p", "units": 10.0}, {"key": "p#1", "units": 3.0},
            ]}},
            "reads": {"products": {"hottest": [{"key": "p", "units": 2.5}]}},
        });

        let keys = product_keys_between(&before, &after, "products", "p");

        assert_eq!(keys, vec![key("p", 6.0, 2.5), key("p#1", 3.0, 0.0)]);
    }

    #[test]
    fn the_conditions_report_gives_conflicts_and_throttles() {
        let report = json!({
            "latency": {"on": true, "delayed_requests": 7,
                "classes": {"dynamodb.transact": {"median_ms": 12.0, "p99_ms": 40.0}}},
            "conflicts": {"on": true, "transactions_cancelled": 3, "single_writes_refused": 2,
                "transactions_seen": 90},
            "partitions": {"on": true, "write_units_per_second": 150.0,
                "read_units_per_second": 450.0, "scale": 0.15,
                "throttled_writes": 4, "throttled_reads": 1},
        });

        let figures = ConditionsFigures::from_report(&report);

        assert_eq!(figures.conflicts(), 5);
        assert_eq!(figures.throttles(), 5);
        assert_eq!(figures.transact_median_ms, Some(12.0));
        assert_eq!(figures.write_units_per_key, Some(150.0));
        assert_eq!(
            transact_latency_setting(12.0, 40.0, 2.0),
            "dynamodb.transact=24/80"
        );
        assert_eq!(
            transact_latency_setting(7.5, 30.0, 2.0),
            "dynamodb.transact=15/60"
        );
    }

    fn passing() -> GoalFigures {
        GoalFigures {
            fraction_of_allowed: Some(0.85),
            refusals_while_stock: 9,
            attempts_while_stock: 1000,
            units_sold: 900,
            units_unsettled: 0,
            units_left: 100,
            initial_stock: 1000,
        }
    }

    #[test]
    fn a_run_at_the_limit_without_refusals_or_oversell_passes() {
        assert_eq!(missed_goals(&passing()), Vec::<String>::new());
    }

    #[test]
    fn each_goal_missed_is_named() {
        let slow = GoalFigures {
            fraction_of_allowed: Some(0.5),
            ..passing()
        };
        let refused = GoalFigures {
            refusals_while_stock: 10,
            ..passing()
        };
        let oversold = GoalFigures {
            units_sold: 1001,
            units_left: 0,
            ..passing()
        };
        let lost = GoalFigures {
            units_left: 90,
            ..passing()
        };

        assert!(missed_goals(&slow)[0].contains("0.50 of what the limits allow"));
        assert!(missed_goals(&refused)[0].contains("1.00 % of 1000 attempts"));
        assert!(missed_goals(&oversold)[0].starts_with("oversold"));
        assert!(missed_goals(&lost)[0].starts_with("units not conserved"));
        assert_eq!(
            missed_goals(&GoalFigures {
                fraction_of_allowed: None,
                ..passing()
            })
            .len(),
            1
        );
    }
}
