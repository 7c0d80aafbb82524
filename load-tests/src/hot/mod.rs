//! The hot-product phase of `make bench` (alone: `load-test bench --only hot`): a flash sale of one
//! product under AWS conditions (`AWS_CONDITIONS=on`: emulated latency per operation, transaction
//! conflicts, per-key partition limits; `localstack/src/conditions`) over 1, 8 and 64 stock
//! shards, lock-free and with stock locks at the default transaction window, and lock-free again
//! at twice that window. Each run gets its own stack, its own `PARTITION_SCALE` and stock; its
//! orders/s are set against what the emulated limits allow the product (`limits`), and it is
//! judged by the goals of [`limits::goals`].

pub mod limits;
pub mod sale;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use shared::config::TableNames;

use crate::client::{Api, get_json};
use crate::outcome::ScenarioResult;
use crate::run::{emit, run_id};
use crate::stack_process::{StackLog, StackProcess};

use self::limits::{ConditionsFigures, GoalFigures};
use self::sale::SaleSpec;

/// Keys asked of `/_local/partitions` per table: every shard of a 64-shard product and more.
const REPORT_TOP: usize = 100;
/// DynamoDB's write units per second per partition key, before `PARTITION_SCALE`: what the limit
/// is taken to be when the stack's report does not say.
const AWS_WRITE_UNITS: f64 = 1000.0;
/// DynamoDB's read units per second per partition key, before `PARTITION_SCALE`.
const AWS_READ_UNITS: f64 = 3000.0;

/// The transaction window of a run: the stack's default `dynamodb.transact` latency, or a
/// multiple of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    /// The emulation's default.
    Default,
    /// The default's median and p99 times this factor (`AWS_LATENCY`).
    Times(f64),
}

/// One run of the phase: a stack and a sale on it.
#[derive(Debug, Clone, PartialEq)]
pub struct HotRun {
    /// The product's stock shards.
    pub shards: u32,
    /// `STOCK_LOCKS`.
    pub stock_locks: bool,
    /// The transaction window.
    pub window: Window,
    /// `PARTITION_SCALE`.
    pub scale: f64,
    /// The product's stock.
    pub stock: u64,
}

impl HotRun {
    /// `S=8 lock-free`, `S=8 locks`, `S=8 lock-free 2x window`.
    pub fn label(&self) -> String {
        let mut label = format!(
            "S={} {}",
            self.shards,
            if self.stock_locks {
                "locks"
            } else {
                "lock-free"
            }
        );
        if let Window::Times(factor) = self.window {
            label.push_str(&format!(" {factor}x window"));
        }
        label
    }

    /// The series of the chart this run belongs to.
    pub fn series(&self) -> String {
        match (self.stock_locks, self.window) {
            (false, Window::Default) => "lock-free".to_owned(),
            (true, Window::Default) => "locks".to_owned(),
            (false, Window::Times(f)) => format!("lock-free, {f}x window"),
            (true, Window::Times(f)) => format!("locks, {f}x window"),
        }
    }
}

/// What the phase runs.
#[derive(Debug, Clone, PartialEq)]
pub struct HotPlan {
    /// The runs, in order; a run at a multiple of the window comes after a default one (which
    /// reads the default from the stack).
    pub runs: Vec<HotRun>,
    /// Buyer tasks per sale.
    pub buyers: usize,
    /// Buying stops after this long even with stock left.
    pub sale_limit: Duration,
    /// Longest wait for the terminal events after buying stopped.
    pub settle_wait: Duration,
}

/// Per shard count: `PARTITION_SCALE` and stock, from runs of the phase on this machine (a
/// WebSocket opened per order; the stack and the buyers share 2 cores). One shard is bound by its
/// key's writes: 200 units/s at some 4.5-5 units an order (the product item holds the product,
/// shard 0 and the journal entries of the moves in flight, past 1 KB when saturated), about 40-45
/// orders/s. 8 shards at 60 units/s a key allow some 185 orders/s, which this machine reaches; 64
/// shards at 6 units/s a key allow some 140, near the machine's pace there (every order meets a
/// dozen throttled keys before a free one, each a request to serve: it reached 0.79-0.92). The
/// stocks last some 12-25 s at that rate, a fifth of the payments failing and giving their unit
/// back to be sold again.
const SHARD_PLANS: [(u32, f64, u64); 3] = [(1, 0.2, 500), (8, 0.06, 2_000), (64, 0.006, 3_000)];

/// `ORDER_QUEUE_VISIBILITY_SECONDS` of the phase's stacks: a settlement that met a transaction
/// conflict is retried when its message becomes visible again; at the local default of 30 s a
/// run would wait that long for its last orders, and the phase would not fit in 8 minutes.
const VISIBILITY_SECONDS: &str = "5";

impl HotPlan {
    /// `make bench`'s: S in {1, 8, 64} lock-free and with locks at the default window, and
    /// lock-free at twice the default window.
    pub fn full() -> Self {
        Self::with_stock_divisor(1)
    }

    /// The same runs with a tenth of the stock: a few seconds each.
    pub fn quick() -> Self {
        Self::with_stock_divisor(10)
    }

    fn with_stock_divisor(divisor: u64) -> Self {
        let mut runs = Vec::new();
        for (stock_locks, window) in [
            (false, Window::Default),
            (true, Window::Default),
            (false, Window::Times(2.0)),
        ] {
            for (shards, scale, stock) in SHARD_PLANS {
                runs.push(HotRun {
                    shards,
                    stock_locks,
                    window,
                    scale,
                    stock: stock / divisor,
                });
            }
        }
        HotPlan {
            runs,
            buyers: 64,
            sale_limit: Duration::from_secs(35),
            settle_wait: Duration::from_secs(40),
        }
    }
}

/// One run's outcome.
#[derive(Debug, Clone)]
pub struct HotRunResult {
    /// What ran.
    pub run: HotRun,
    /// The sale's figures, verdict and missed goals.
    pub result: ScenarioResult,
    /// Its stack's log summary.
    pub log: StackLog,
}

/// What the phase measured.
#[derive(Debug, Clone)]
pub struct HotPhase {
    /// The plan it ran.
    pub plan: HotPlan,
    /// Every run, in the plan's order.
    pub runs: Vec<HotRunResult>,
    /// The default transaction window (median, p99 ms), as the first stack reported it.
    pub default_window: Option<(f64, f64)>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub elapsed: Duration,
}

/// The environment of a run's stack, beyond the bench settings of [`StackProcess::start`].
pub fn stack_env(
    run: &HotRun,
    default_window: Option<(f64, f64)>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = vec![
        ("AWS_CONDITIONS".to_owned(), "on".to_owned()),
        // A fifth of the payments fail and give their unit back, as real payments would.
        ("PAYMENT_SUCCESS_RATE".to_owned(), "0.8".to_owned()),
        (
            "STOCK_LOCKS".to_owned(),
            if run.stock_locks { "on" } else { "off" }.to_owned(),
        ),
        ("PARTITION_SCALE".to_owned(), run.scale.to_string()),
        (
            "ORDER_QUEUE_VISIBILITY_SECONDS".to_owned(),
            VISIBILITY_SECONDS.to_owned(),
        ),
    ];
    if let Window::Times(factor) = run.window {
        let (median, p99) = default_window.context(
            "a run at a multiple of the transaction window needs the default, read from an \
             earlier run's /_local/conditions",
        )?;
        env.push((
            "AWS_LATENCY".to_owned(),
            limits::transact_latency_setting(median, p99, factor),
        ));
    }
    Ok(env)
}

/// Runs every run of `plan`, one stack each, emitting each result.
pub async fn run_phase(
    stack_bin: &Path,
    jwt_secret: &str,
    plan: &HotPlan,
    json_out: Option<&Path>,
) -> anyhow::Result<HotPhase> {
    let started_at = Utc::now();
    let started = std::time::Instant::now();
    let mut default_window = None;
    let mut runs = Vec::new();
    for run in &plan.runs {
        let env = stack_env(run, default_window)?;
        let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!("== hot product [{}]: {}", run.label(), shown.join(" "));
        let env_refs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let log_path = std::env::temp_dir().join(format!("load-test-stack-hot-{}.log", run_id()));
        let stack = StackProcess::start(stack_bin, &env_refs, &log_path).await?;
        let measured = run_sale(&stack, jwt_secret, plan, run).await;
        let log = stack.stop().await?;
        let (result, conditions) =
            measured.with_context(|| format!("hot product [{}]", run.label()))?;
        if run.window == Window::Default && default_window.is_none() {
            default_window = conditions
                .transact_median_ms
                .zip(conditions.transact_p99_ms);
        }
        emit(&result, json_out)?;
        runs.push(HotRunResult {
            run: run.clone(),
            result,
            log,
        });
    }
    Ok(HotPhase {
        plan: plan.clone(),
        runs,
        default_window,
        started_at,
        elapsed: started.elapsed(),
    })
}

/// One sale on `stack`: the product, the counters reset, the buyers, the stack's reports, the
/// books; the result with every figure and its verdict.
async fn run_sale(
    stack: &StackProcess,
    jwt_secret: &str,
    plan: &HotPlan,
    run: &HotRun,
) -> anyhow::Result<(ScenarioResult, ConditionsFigures)> {
    let banner = &stack.banner;
    let aws = banner.aws.clone().unwrap_or_default();
    let api = Api::new(
        banner.http.as_deref().unwrap_or_default(),
        jwt_secret,
        &run_id(),
    )?;
    let http = reqwest::Client::new();
    let conditions_url = format!("{aws}/_local/conditions");
    let partitions_url = format!("{aws}/_local/partitions?top={REPORT_TOP}");
    let spec = SaleSpec {
        label: run.label(),
        stock: run.stock,
        shards: run.shards,
        buyers: plan.buyers,
        limit: plan.sale_limit,
        settle_wait: plan.settle_wait,
    };
    let product = sale::create_product(&api, &spec).await?;
    // What creating the product cost is not the sale's.
    get_json(&http, &format!("{conditions_url}?reset=true")).await?;
    get_json(&http, &format!("{partitions_url}&reset=true")).await?;

    let bought = sale::buy(
        &api,
        banner.ws.as_deref().unwrap_or_default(),
        &partitions_url,
        &spec,
        &product,
    )
    .await?;
    let window = bought.window.clone();
    // Read before the books are checked, whose reads are not the sale's.
    let conditions_report = get_json(&http, &conditions_url).await?;
    let partitions_report = get_json(&http, &partitions_url).await?;
    let (mut result, books) = sale::check_books(&api, bought).await?;

    let conditions = ConditionsFigures::from_report(&conditions_report);
    let write_limit = conditions
        .write_units_per_key
        .unwrap_or(AWS_WRITE_UNITS * run.scale);
    let read_limit = conditions
        .read_units_per_key
        .unwrap_or(AWS_READ_UNITS * run.scale);
    let products = TableNames::defaults().products;
    // Units per order over the steady window when it held enough orders, else the whole sale.
    let (keys, orders, measured_over) = match &window {
        Some(window) => (
            limits::product_keys_between(&window.before, &window.after, &products, &product.id),
            window.orders,
            "the steady window",
        ),
        None => (
            limits::product_keys(&partitions_report, &products, &product.id),
            result.number("created_201").unwrap_or(0.0) as u64,
            "the whole sale",
        ),
    };
    result.put("units_measured_over", measured_over);
    result.put("units_measured_orders", orders);
    let allowed = limits::allowed_rate(
        &product.id,
        run.shards,
        &keys,
        orders,
        write_limit,
        read_limit,
    );
    let rate = result.number("orders_per_s").unwrap_or(0.0);
    let allowed_rate = allowed.as_ref().and_then(limits::AllowedRate::orders_per_s);
    let fraction = allowed_rate.filter(|a| *a > 0.0).map(|a| rate / a);

    result.put("stock_locks", run.stock_locks);
    result.put("partition_scale", run.scale);
    if let (Some(median), Some(p99)) = (conditions.transact_median_ms, conditions.transact_p99_ms) {
        result.put("transact_window_ms", format!("{median}/{p99}"));
    }
    result.put("write_units_per_key_per_s", write_limit);
    result.put("read_units_per_key_per_s", read_limit);
    result.put(
        "product_write_units",
        keys.iter().map(|k| k.write_units).sum::<f64>(),
    );
    result.put(
        "product_read_units",
        keys.iter().map(|k| k.read_units).sum::<f64>(),
    );
    result.put("product_keys_seen", keys.len() as u64);
    if let Some(allowed) = &allowed {
        if let Some(rate) = allowed.orders_per_s() {
            result.put("allowed_orders_per_s", rate);
        }
        result.put("allowed_derivation", allowed.derivation());
    }
    if let Some(fraction) = fraction {
        result.put("fraction_of_allowed", fraction);
    }
    result.put("conflicts", conditions.conflicts());
    result.put("transactions_cancelled", conditions.transactions_cancelled);
    result.put("single_writes_refused", conditions.single_writes_refused);
    result.put("transactions_seen", conditions.transactions_seen);
    result.put("throttles", conditions.throttles());
    result.put("throttled_writes", conditions.throttled_writes);
    result.put("throttled_reads", conditions.throttled_reads);
    result.put("delayed_requests", conditions.delayed_requests);

    let goals = GoalFigures {
        fraction_of_allowed: fraction,
        refusals_while_stock: result.number("refusals_while_stock").unwrap_or(0.0) as u64,
        attempts_while_stock: result.number("attempts_while_stock").unwrap_or(0.0) as u64,
        units_sold: books.sold,
        units_unsettled: books.unsettled,
        units_left: books.left,
        initial_stock: run.stock,
    };
    result.put("refusal_share_while_stock", goals.refusal_share());
    for missed in limits::missed_goals(&goals) {
        result.check(false, missed);
    }
    Ok((result, conditions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_plan_runs_three_shard_counts_in_three_modes_the_doubled_window_last() {
        let plan = HotPlan::full();

        assert_eq!(plan.runs.len(), 9);
        let labels: Vec<String> = plan.runs.iter().map(HotRun::label).collect();
        assert_eq!(labels[0], "S=1 lock-free");
        assert_eq!(labels[4], "S=8 locks");
        assert_eq!(labels[8], "S=64 lock-free 2x window");
        assert!(plan.runs[..6].iter().all(|r| r.window == Window::Default));
    }

    #[test]
    fn a_doubled_window_run_sets_the_transaction_latency_from_the_default() {
        let run = HotPlan::full().runs[6].clone();

        assert!(stack_env(&run, None).is_err());
        let env = stack_env(&run, Some((12.0, 40.0))).unwrap();
        assert!(env.contains(&("AWS_CONDITIONS".to_owned(), "on".to_owned())));
        assert!(env.contains(&("PARTITION_SCALE".to_owned(), "0.2".to_owned())));
        assert!(env.contains(&(
            "AWS_LATENCY".to_owned(),
            "dynamodb.transact=24/80".to_owned()
        )));
    }
}
