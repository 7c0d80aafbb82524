//! Flash sale: one hot product, many buyers (each its own user with its WebSocket open before the
//! sale) ordering one unit at a time until it is sold out; then the order events, the queue and
//! the books are checked: stock 0, no order beyond stock, units conserved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use shared::domain::OrderStatus;

use crate::client::{Api, TerminalEvents, User};
use crate::outcome::ScenarioResult;
use crate::stats::{Latencies, PerSecond, UnexpectedErrors};

use super::{Sizes, Target};

/// Consecutive busy answers (503, LOCK_CONFLICT) to one key after which a retrying buyer gives up.
const MAX_BUSY_RETRIES: u32 = 2_000;
/// A retrying buyer's pause after a busy answer: this much at least, plus up to as much again.
const BUSY_PAUSE: Duration = Duration::from_millis(10);
/// The longest window for "orders/s in the first / last seconds of the sale".
const EDGE_WINDOW: Duration = Duration::from_secs(10);
/// The goal for LOCK_CONFLICT answers while stock remains, as a share of order attempts.
const CONFLICT_GOAL: f64 = 0.001;

/// What one buyer saw.
#[derive(Default)]
struct Buyer {
    /// Order id and when its 201 arrived.
    created: Vec<(String, Instant)>,
    latencies: Latencies,
    /// From a key's first attempt to its 201: what the buyer waited, retries included.
    with_retries: Latencies,
    per_second: PerSecond,
    conflicts: Vec<Instant>,
    /// 503 `SERVICE_UNAVAILABLE` answers retried with the same key.
    unavailable: u64,
    errors: UnexpectedErrors,
    sold_out_at: Option<Instant>,
}

/// A pause of [`BUSY_PAUSE`] plus a jitter drawn from the buyer and its try (splitmix64), so
/// that buyers refused together do not come back together.
pub(crate) fn busy_pause(buyer: usize, tries: u32) -> Duration {
    let mut z = (buyer as u64) << 32 ^ u64::from(tries);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let jitter = z % (BUSY_PAUSE.as_micros() as u64);
    BUSY_PAUSE + Duration::from_micros(jitter)
}

async fn buy_until_sold_out(
    api: Api,
    user: User,
    product: String,
    buyer: usize,
    start: Instant,
    retry_busy: bool,
) -> Buyer {
    tokio::time::sleep_until(start.into()).await;
    let mut seen = Buyer::default();
    let mut attempt = 0u64;
    let mut busy_tries = 0u32;
    let mut first_try = Instant::now();
    loop {
        let key = format!("fs-{buyer}-{attempt}");
        if busy_tries == 0 {
            first_try = Instant::now();
        }
        let answer = api.place_order(&user, &key, &product, 1).await;
        let now = Instant::now();
        let busy = match (answer.status, answer.code()) {
            // 200: a retried key whose first try had placed the order after all.
            (201 | 200, _) => {
                seen.errors.end_streak();
                seen.created.push((answer.data_str("id").to_owned(), now));
                seen.latencies.record(answer.latency);
                seen.with_retries.record(now - first_try);
                seen.per_second.record(now - start, answer.latency);
                false
            }
            (409, "INSUFFICIENT_STOCK") => {
                seen.sold_out_at = Some(now);
                break;
            }
            (409, "LOCK_CONFLICT") => {
                seen.conflicts.push(now);
                true
            }
            (503, "SERVICE_UNAVAILABLE") if retry_busy => {
                seen.unavailable += 1;
                true
            }
            _ => {
                if seen.errors.record(|| answer.summary()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                false
            }
        };
        if busy && retry_busy {
            busy_tries += 1;
            if busy_tries >= MAX_BUSY_RETRIES {
                seen.errors.samples.push(format!(
                    "gave up after {busy_tries} busy answers to one key"
                ));
                break;
            }
            tokio::time::sleep(busy_pause(buyer, busy_tries)).await;
        } else {
            busy_tries = 0;
            attempt += 1;
        }
    }
    seen
}

/// Runs the sale and its checks.
pub async fn run(target: &Target, sizes: &Sizes) -> anyhow::Result<ScenarioResult> {
    target.settle_queue().await;
    let mut result = ScenarioResult::pass("flash-sale", &target.label);
    let initial = sizes.flash_stock;
    let product = target
        .api
        .create_sharded_product("flash-sale", initial, sizes.stock_shards)
        .await?;
    let users: Vec<User> = (0..sizes.buyers)
        .map(|n| target.api.user(&format!("fs-{n}")))
        .collect();

    let events: TerminalEvents = Arc::default();
    let mut watchers = Vec::new();
    for user in &users {
        watchers.push(
            target
                .api
                .watch_terminal_events(&target.ws_url, &user.token, Arc::clone(&events))
                .await?,
        );
    }

    // Every buyer starts at the same instant, a moment after all tasks exist.
    let start = Instant::now() + Duration::from_millis(200);
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(n, user)| {
            tokio::spawn(buy_until_sold_out(
                target.api.clone(),
                user.clone(),
                product.clone(),
                n,
                start,
                sizes.retry_busy,
            ))
        })
        .collect();
    let mut buyers = Vec::new();
    for task in tasks {
        buyers.push(task.await?);
    }
    let buying_done = Instant::now();

    let created: Vec<(String, Instant)> = buyers.iter().flat_map(|b| b.created.clone()).collect();
    let last_201 = created.iter().map(|(_, at)| *at).max();
    let first_sold_out = buyers.iter().filter_map(|b| b.sold_out_at).min();
    let sold_out = first_sold_out.or(last_201).unwrap_or(buying_done);
    let sale = sold_out
        .saturating_duration_since(start)
        .max(Duration::from_millis(1));
    let mut latencies = Latencies::new();
    let mut with_retries = Latencies::new();
    let mut per_second = PerSecond::default();
    for buyer in &buyers {
        latencies.merge(&buyer.latencies);
        with_retries.merge(&buyer.with_retries);
        per_second.merge(&buyer.per_second);
    }
    let unavailable: u64 = buyers.iter().map(|b| b.unavailable).sum();
    let conflicts_in_stock = buyers
        .iter()
        .flat_map(|b| &b.conflicts)
        .filter(|at| **at <= sold_out)
        .count() as u64;
    let conflicts_total: u64 = buyers.iter().map(|b| b.conflicts.len() as u64).sum();
    let other_errors: u64 = buyers.iter().map(|b| b.errors.count).sum();
    let samples: Vec<String> = buyers
        .iter()
        .flat_map(|b| b.errors.samples.clone())
        .take(3)
        .collect();
    let n201 = created.len() as u64;

    // Payments drain while we wait for the last order's terminal event.
    let drained = async {
        match target.queue_probe().await {
            Some(probe) => probe
                .wait_empty(sizes.settle_wait)
                .await
                .map(|took| (Instant::now() - took).saturating_duration_since(sold_out)),
            None => None,
        }
    };
    let settled = wait_for_terminal_events(&events, &created, sold_out + sizes.settle_wait);
    let (drained_after_sold_out, ()) = tokio::join!(drained, settled);
    for watcher in &watchers {
        watcher.abort();
    }

    let mut push_latency = Latencies::new();
    let mut missing = 0u64;
    let mut last_event: Option<Instant> = None;
    let mut failed_events = 0u64;
    {
        let events = events.lock().expect("the events map is never poisoned");
        for (id, at_201) in &created {
            match events.get(id) {
                Some((at_event, kind)) => {
                    push_latency.record(at_event.saturating_duration_since(*at_201));
                    last_event = last_event.max(Some(*at_event));
                    if kind != "OrderPaid" {
                        failed_events += 1;
                    }
                }
                None => missing += 1,
            }
        }
    }

    let final_stock = target.api.stock(&product).await?;
    let (conserved_units, status_counts) = units_in_orders(&target.api, &users, &product).await?;

    let window = EDGE_WINDOW.min(sale / 3).max(Duration::from_millis(1));
    let in_window = |from: Instant, to: Instant| {
        created
            .iter()
            .filter(|(_, at)| *at >= from && *at < to)
            .count() as f64
    };
    let first_window = in_window(start, start + window) / window.as_secs_f64();
    let last_window =
        in_window(sold_out - window, sold_out + Duration::from_millis(1)) / window.as_secs_f64();

    result.put("product_id", product.as_str());
    result.put("initial_stock", initial);
    result.put("stock_shards", sizes.stock_shards);
    result.put("buyers", sizes.buyers as u64);
    result.put("buyers_retry_busy_answers", sizes.retry_busy);
    result.put("created_201", n201);
    result.put("sale_s", sale.as_secs_f64());
    result.put("orders_per_s", n201 as f64 / sale.as_secs_f64());
    result.put("p50_ms", latencies.quantile_ms(0.50));
    result.put("p99_ms", latencies.quantile_ms(0.99));
    result.put("max_ms", latencies.quantile_ms(1.0));
    result.put("p99_with_retries_ms", with_retries.quantile_ms(0.99));
    result.put("lock_conflicts_while_stock", conflicts_in_stock);
    result.put("lock_conflicts_total", conflicts_total);
    let attempts_in_stock = n201 + conflicts_in_stock;
    let conflict_rate = if attempts_in_stock == 0 {
        0.0
    } else {
        conflicts_in_stock as f64 / attempts_in_stock as f64
    };
    result.put("lock_conflict_rate_while_stock", conflict_rate);
    result.put("unavailable_503", unavailable);
    result.put("throttled_answers", unavailable + conflicts_total);
    result.put("other_errors", other_errors);
    if !samples.is_empty() {
        result.put("error_samples", samples.join("; "));
    }
    result.put("edge_window_s", window.as_secs_f64());
    result.put("orders_per_s_first_window", first_window);
    result.put("orders_per_s_last_window", last_window);
    result.put("push_p50_ms", push_latency.quantile_ms(0.50));
    result.put("push_p99_ms", push_latency.quantile_ms(0.99));
    result.put("terminal_events_missing", missing);
    result.put("terminal_events_not_paid", failed_events);
    result.put(
        "settled_after_sell_out_s",
        crate::outcome::settled_after_sell_out(missing, last_event, sold_out),
    );
    result.put(
        "queue_drained_after_sell_out_s",
        drained_after_sold_out.map_or(Value::Null, |d| crate::outcome::round(d.as_secs_f64())),
    );
    result.put("final_stock", final_stock);
    result.put("units_in_live_orders", conserved_units);
    for (status, count) in &status_counts {
        result.put(&format!("orders_{}", status.to_ascii_lowercase()), *count);
    }
    result.put(
        "goal_lock_conflicts_under_0.1pct",
        if conflict_rate < CONFLICT_GOAL {
            "met"
        } else {
            "missed"
        },
    );
    result.put("per_second", per_second.series());
    result.put("latency_buckets", latencies.buckets());

    result.check(
        final_stock == 0,
        format!("final stock is {final_stock}, not 0"),
    );
    result.check(
        n201 == initial,
        format!("{n201} orders were created for a stock of {initial}"),
    );
    result.check(
        conserved_units == initial - final_stock.min(initial),
        format!(
            "live orders hold {conserved_units} units, but the stock dropped by {}",
            initial - final_stock.min(initial)
        ),
    );
    result.check(
        missing == 0,
        format!(
            "{missing} of {n201} orders got no terminal event within {} s",
            sizes.settle_wait.as_secs()
        ),
    );
    Ok(result)
}

/// Waits until every created order has its terminal event, or `deadline`.
async fn wait_for_terminal_events(
    events: &TerminalEvents,
    created: &[(String, Instant)],
    deadline: Instant,
) {
    loop {
        let done = {
            let events = events.lock().expect("the events map is never poisoned");
            created.iter().all(|(id, _)| events.contains_key(id))
        };
        if done || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Units of `product` in the buyers' orders that hold stock (`OrderStatus::holds_stock`: PENDING,
/// PROCESSING and PAID), and the orders with it per status.
async fn units_in_orders(
    api: &Api,
    users: &[User],
    product: &str,
) -> anyhow::Result<(u64, Vec<(String, u64)>)> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    let mut units = 0;
    for user in users {
        for order in api.all_orders(user).await? {
            let status = order["status"].as_str().unwrap_or("?").to_owned();
            let quantity: u64 = order["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|item| item["product_id"] == product)
                .filter_map(|item| item["quantity"].as_u64())
                .sum();
            if quantity == 0 {
                continue;
            }
            if status.parse().is_ok_and(OrderStatus::holds_stock) {
                units += quantity;
            }
            match counts.iter_mut().find(|(s, _)| *s == status) {
                Some((_, n)) => *n += 1,
                None => counts.push((status, 1)),
            }
        }
    }
    counts.sort();
    Ok((units, counts))
}
