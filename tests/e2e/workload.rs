//! A seeded random workload over the whole stack (orders, cancels, holds, checkouts, expiries,
//! webhooks before and after their orders, the payment consumer, an admin re-sharding products
//! with stock in them), then stock conservation (initial = available + units in unsettled or
//! PAID orders + units in ACTIVE holds) for every product once everything is quiet. The products
//! have 16, 4 and 1 stock shards to begin with.
//! `WORKLOAD_SEED=<u64>` replays a run's choices (not its timing).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::Value;
use shared::domain::OrderStatus;
use tokio::time::Instant;

use crate::support::{Reply, TestStack, derived_order_id, spawn_pipeline, webhook_body};

/// Initial stock of each product: the smallest runs out during a run, so refusals happen too.
const INITIAL_STOCK: [u32; 3] = [1200, 400, 80];
/// Stock shards of each product at the start; the admin re-shards them during the run.
const INITIAL_SHARDS: [u16; 3] = [16, 4, 1];
/// Concurrent shoppers.
const SHOPPERS: usize = 10;
/// How long the shoppers act.
const RUN_FOR: Duration = Duration::from_secs(20);
/// How long everything may take to settle after they stop.
const QUIET_WITHIN: Duration = Duration::from_secs(40);
/// The order status a JSON value names, if it names one.
fn status(value: &Value) -> Option<OrderStatus> {
    value.as_str()?.parse().ok()
}

/// What one shopper did: the holds it took and the answers nobody should get.
struct ShopperLog {
    user: String,
    holds: Vec<String>,
    counts: BTreeMap<String, usize>,
    surprises: Vec<String>,
}

impl ShopperLog {
    /// Counts `reply` under `action`; an answer outside `expected` (status, error_code) is a
    /// surprise, reported with the request.
    fn record(&mut self, action: &str, request: &str, reply: &Reply, expected: &[(u16, &str)]) {
        let status = reply.status.as_u16();
        *self
            .counts
            .entry(format!("{action} {status} {}", reply.code()))
            .or_default() += 1;
        if !expected
            .iter()
            .any(|(s, code)| *s == status && (code.is_empty() || *code == reply.code()))
        {
            self.surprises.push(format!(
                "{} {action} {request} -> {status} {}",
                self.user, reply.body
            ));
        }
    }
}

async fn shopper(
    stack: &TestStack,
    products: &[String],
    seed: u64,
    index: usize,
    until: Instant,
) -> ShopperLog {
    let user = format!("shopper-{index}");
    let mut rng = StdRng::seed_from_u64(
        seed.wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    );
    let mut log = ShopperLog {
        user: user.clone(),
        holds: vec![],
        counts: BTreeMap::new(),
        surprises: vec![],
    };
    let mut orders: Vec<String> = vec![];
    let mut open_holds: Vec<String> = vec![];
    let mut early_keys: Vec<String> = vec![];
    let mut next = 0;
    // Webhook keys are the provider's, one namespace for every user: the user is part of each.
    let mut fresh_key = |prefix: &str| {
        next += 1;
        format!("{user}-{prefix}-{next}")
    };

    while Instant::now() < until {
        let product = products[rng.random_range(0..products.len())].as_str();
        let quantity = rng.random_range(1..=3_i64);
        match rng.random_range(0..100) {
            0..25 => {
                let key = fresh_key("order");
                let mut lines = vec![(product, quantity)];
                let second = products[rng.random_range(0..products.len())].as_str();
                if second != product && rng.random_bool(0.3) {
                    lines.push((second, 1));
                }
                let reply = stack.order_retrying(&user, &key, &lines).await;
                let request = format!("POST /orders {key} {lines:?}");
                log.record(
                    "order",
                    &request,
                    &reply,
                    &[(201, ""), (409, "INSUFFICIENT_STOCK")],
                );
                if reply.status == StatusCode::CREATED {
                    orders.push(reply.body["data"]["id"].as_str().unwrap().to_owned());
                }
            }
            25..35 if !orders.is_empty() => {
                let id = &orders[rng.random_range(0..orders.len())];
                let reply = stack.cancel(&user, id).await;
                let request = format!("POST /orders/{id}/cancel");
                log.record(
                    "cancel",
                    &request,
                    &reply,
                    &[(200, ""), (422, "ORDER_NOT_CANCELLABLE")],
                );
            }
            35..55 => {
                let reply = stack.hold(&user, product, quantity).await;
                let request = format!("POST /holds {product} x{quantity}");
                log.record(
                    "hold",
                    &request,
                    &reply,
                    &[
                        (201, ""),
                        (409, "INSUFFICIENT_STOCK"),
                        (409, "HOLD_LIMIT_REACHED"),
                    ],
                );
                if reply.status == StatusCode::CREATED {
                    let id = reply.body["data"]["hold_id"].as_str().unwrap().to_owned();
                    log.holds.push(id.clone());
                    open_holds.push(id);
                }
            }
            55..70 if !open_holds.is_empty() => {
                // Some holds are never picked and expire; some are picked after their window.
                let hold = open_holds.swap_remove(rng.random_range(0..open_holds.len()));
                let key = fresh_key("checkout");
                let reply = stack.order_from_hold(&user, &key, &hold).await;
                let request = format!("POST /orders {key} hold {hold}");
                log.record(
                    "checkout",
                    &request,
                    &reply,
                    &[(201, ""), (409, "HOLD_NOT_ACTIVE")],
                );
                if reply.status == StatusCode::CREATED {
                    orders.push(reply.body["data"]["id"].as_str().unwrap().to_owned());
                }
            }
            70..82 if !orders.is_empty() => {
                let id = orders[rng.random_range(0..orders.len())].clone();
                let body = webhook_body(&fresh_key("evt"), &id, rng.random_bool(0.5));
                let (reply, _) = stack.webhook(&body).await;
                log.record("webhook", &body, &reply, &[(200, "")]);
                if reply.status == StatusCode::OK
                    && !status(&reply.body["data"]["order_status"])
                        .is_some_and(OrderStatus::is_terminal)
                {
                    log.surprises.push(format!(
                        "{user} webhook {body} -> 200 without a terminal status: {}",
                        reply.body
                    ));
                }
            }
            82..90 => {
                let key = fresh_key("early");
                let id = derived_order_id(&user, &key);
                let body = webhook_body(&fresh_key("evt"), &id, rng.random_bool(0.5));
                let (reply, _) = stack.webhook(&body).await;
                log.record("early webhook", &body, &reply, &[(202, "")]);
                early_keys.push(key);
            }
            90..100 if !early_keys.is_empty() => {
                let key = early_keys.swap_remove(rng.random_range(0..early_keys.len()));
                let reply = stack
                    .order_retrying(&user, &key, &[(product, quantity)])
                    .await;
                let request = format!("POST /orders {key} (webhook stored) {product} x{quantity}");
                log.record(
                    "order after webhook",
                    &request,
                    &reply,
                    &[(201, ""), (409, "INSUFFICIENT_STOCK")],
                );
                if reply.status == StatusCode::CREATED {
                    orders.push(reply.body["data"]["id"].as_str().unwrap().to_owned());
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..80))).await;
    }
    log
}

/// Every order and every tracked hold, read back.
struct Snapshot {
    orders: Vec<(String, Value)>,
    holds: Vec<(String, Value)>,
}

impl Snapshot {
    async fn read(stack: &TestStack, logs: &[ShopperLog]) -> Snapshot {
        let mut orders = vec![];
        let mut holds = vec![];
        for log in logs {
            let token = stack.token(&log.user);
            for order in stack.all_orders(&log.user).await {
                orders.push((log.user.clone(), order));
            }
            for id in &log.holds {
                holds.push((log.user.clone(), stack.read_hold_data(&token, id).await));
            }
        }
        Snapshot { orders, holds }
    }

    /// What is not settled yet: orders PENDING/PROCESSING and holds still ACTIVE.
    fn unsettled(&self) -> Vec<String> {
        let orders = self
            .orders
            .iter()
            .filter(|(_, o)| status(&o["status"]).is_some_and(|s| !s.is_terminal()))
            .map(|(user, o)| format!("{user} order {} {}", o["id"], o["status"]));
        let holds = self
            .holds
            .iter()
            .filter(|(_, h)| h["status"] == "ACTIVE")
            .map(|(user, h)| format!("{user} hold {} expires {}", h["hold_id"], h["expires_at"]));
        orders.chain(holds).collect()
    }

    /// Units per product held by orders PENDING/PROCESSING/PAID plus ACTIVE holds.
    fn held(&self) -> HashMap<String, u64> {
        let mut held: HashMap<String, u64> = HashMap::new();
        for (_, order) in &self.orders {
            if status(&order["status"]).is_some_and(OrderStatus::holds_stock) {
                for item in order["items"].as_array().unwrap() {
                    *held
                        .entry(item["product_id"].as_str().unwrap().to_owned())
                        .or_default() += item["quantity"].as_u64().unwrap();
                }
            }
        }
        for (_, hold) in &self.holds {
            if hold["status"] == "ACTIVE" {
                *held
                    .entry(hold["product_id"].as_str().unwrap().to_owned())
                    .or_default() += hold["quantity"].as_u64().unwrap();
            }
        }
        held
    }
}

/// An admin re-sharding a random product to a random shard count every half second or so; the
/// layouts it set, each answered 200 with the total unchanged by the re-shard itself.
async fn reshard(
    stack: &TestStack,
    products: &[String],
    seed: u64,
    until: Instant,
) -> Vec<(usize, u16)> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5348_4152_4453);
    let admin = stack.admin_token();
    let mut done = vec![];
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..800))).await;
        let index = rng.random_range(0..products.len());
        let shards = [1_u16, 2, 4, 8, 16][rng.random_range(0..5)];
        let reply = stack
            .send(
                "PUT",
                &format!("/products/{}", products[index]),
                Some(&admin),
                Some(serde_json::json!({"stock_shards": shards})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "seed {seed}: re-shard: {}",
            reply.body
        );
        assert_eq!(reply.body["data"]["stock_shards"], shards);
        done.push((index, shards));
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_random_concurrent_workload_conserves_stock() {
    let seed: u64 = match std::env::var("WORKLOAD_SEED") {
        Ok(text) => text.parse().expect("WORKLOAD_SEED is a u64"),
        Err(_) => rand::random(),
    };
    eprintln!("workload seed: {seed}");
    let stack = spawn_pipeline(true, |options| {
        options.config.hold_ttl = Duration::from_secs(2);
        options.local.hold_sweep_interval = Duration::from_millis(200);
        options.config.payments.success_rate = 0.6;
        options.config.payments.seed = Some(seed);
        options.local.queue_visibility_timeout = Duration::from_secs(1);
        options.config.reconcile_after = Duration::from_secs(2);
    })
    .await;
    let mut products = vec![];
    for (stock, shards) in INITIAL_STOCK.into_iter().zip(INITIAL_SHARDS) {
        products.push(stack.sharded_product("1.00", stock, shards).await);
    }

    let until = Instant::now() + RUN_FOR;
    let (logs, reshards) = tokio::join!(
        join_all((0..SHOPPERS).map(|i| shopper(&stack, &products, seed, i, until))),
        reshard(&stack, &products, seed, until)
    );
    eprintln!("seed {seed}: re-shards {reshards:?}");

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for log in &logs {
        for (what, n) in &log.counts {
            *counts.entry(what.as_str()).or_default() += n;
        }
    }
    eprintln!("seed {seed}: answers {counts:#?}");
    let surprises: Vec<_> = logs.iter().flat_map(|l| l.surprises.iter()).collect();
    assert!(
        surprises.is_empty(),
        "seed {seed}: unexpected answers:\n{}",
        surprises
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );

    let quiet_by = Instant::now() + QUIET_WITHIN;
    let snapshot = loop {
        let snapshot = Snapshot::read(&stack, &logs).await;
        let unsettled = snapshot.unsettled();
        if unsettled.is_empty() {
            break snapshot;
        }
        assert!(
            Instant::now() < quiet_by,
            "seed {seed}: still unsettled {QUIET_WITHIN:?} after the workload: {unsettled:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Holds and orders agree: a CONSUMED hold names its own order, holding the hold's units; an
    // EXPIRED one names none; no order consumed two holds.
    let orders: HashMap<&str, (&str, &Value)> = snapshot
        .orders
        .iter()
        .map(|(user, o)| (o["id"].as_str().unwrap(), (user.as_str(), o)))
        .collect();
    let mut consumed_by = HashSet::new();
    for (user, hold) in &snapshot.holds {
        match hold["status"].as_str() {
            Some("CONSUMED") => {
                let order_id = hold["order_id"].as_str().unwrap_or_default();
                let (owner, order) = orders.get(order_id).unwrap_or_else(|| {
                    panic!("seed {seed}: {user}'s consumed hold names no order of theirs: {hold}")
                });
                assert_eq!(owner, user, "seed {seed}: {hold}");
                assert_eq!(
                    (
                        &order["items"][0]["product_id"],
                        &order["items"][0]["quantity"]
                    ),
                    (&hold["product_id"], &hold["quantity"]),
                    "seed {seed}: the order carries the hold's units: {order} {hold}"
                );
                assert!(
                    consumed_by.insert(order_id),
                    "seed {seed}: two holds consumed by order {order_id}"
                );
            }
            Some("EXPIRED") => {
                assert_eq!(hold["order_id"], Value::Null, "seed {seed}: {hold}");
            }
            _ => panic!("seed {seed}: {user}'s hold did not settle: {hold}"),
        }
    }

    let held = snapshot.held();
    let mut stocks = vec![];
    for (product, initial) in products.iter().zip(INITIAL_STOCK) {
        let stock = stack.stock(product).await;
        let in_use = held.get(product).copied().unwrap_or(0);
        eprintln!("seed {seed}: {product}: initial {initial} = stock {stock} + held {in_use}");
        assert_eq!(
            u64::from(initial),
            stock + in_use,
            "seed {seed}: stock conserved for {product} (initial = available + orders \
             PENDING/PROCESSING/PAID + ACTIVE holds)"
        );
        stocks.push(stock);
    }
    // Quiet means quiet: more sweeps and reconciler runs give nothing back again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (product, stock) in products.iter().zip(stocks) {
        assert_eq!(
            stack.stock(product).await,
            stock,
            "seed {seed}: {product} changed after the stack went quiet"
        );
    }
}
