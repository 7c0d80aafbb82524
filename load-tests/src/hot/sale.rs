//! One sale of the hot-product phase: a product with S stock shards, buyer tasks ordering one unit
//! at a time until it is sold out, each order by a fresh user whose WebSocket the buyer opens
//! just before the order (so no per-user key, idempotency record, `user-orders` index entry, rate
//! limit or connection, is ever hot, as in a real flash sale where each buyer orders once, and the
//! order's pushes still arrive); then every order's stored status and the stock, checked.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;
use shared::domain::OrderStatus;
use tokio::sync::Notify;

use crate::client::{Api, TerminalEvents, User, get_json};
use crate::outcome::ScenarioResult;
use crate::scenarios::flash_sale::busy_pause;
use crate::stats::{Latencies, PerSecond, UnexpectedErrors};

/// Refusals of one key after which a buyer gives the order up.
const MAX_REFUSALS_PER_ORDER: u32 = 2_000;
/// `INSUFFICIENT_STOCK` answers with stock left (restored units a buyer raced for) after which a
/// buyer stops.
const MAX_SHORT_WITH_STOCK: u32 = 20;
/// The first second of a sale is left out of its steady rate: every key's bucket starts with a
/// second's burst, and the buyers' first requests open connections.
const WARM_UP: Duration = Duration::from_secs(1);
/// Orders checked for their stored status at once.
const CHECK_CONCURRENCY: usize = 32;
/// How long the books wait for the last restores to land on the stock.
const RESTORE_WAIT: Duration = Duration::from_secs(15);
/// Fewer orders than this in the steady window, and the units per order are taken over the whole
/// sale instead (a sale of a few seconds).
const MIN_WINDOW_ORDERS: u64 = 50;

/// How a sale runs.
#[derive(Debug, Clone)]
pub struct SaleSpec {
    /// The label of its result.
    pub label: String,
    /// The product's stock.
    pub stock: u64,
    /// The product's stock shards.
    pub shards: u32,
    /// Buyer tasks.
    pub buyers: usize,
    /// Buying stops here even with stock left.
    pub limit: Duration,
    /// Longest wait for the terminal events after buying stopped.
    pub settle_wait: Duration,
}

/// A sale's product, for the figures read while its stack still runs.
#[derive(Debug, Clone)]
pub struct SaleProduct {
    /// Its id.
    pub id: String,
}

/// What the buyers share with the watcher of the steady window.
#[derive(Default)]
struct Progress {
    /// 201s so far.
    placed: AtomicU64,
    /// A buyer found the product sold out.
    sold_out: Notify,
}

/// The `/_local/partitions` report at both ends of the steady window (from the end of the first
/// second to the first sell-out) and the orders placed between: the units per order the limits
/// are set against, free of the first second's burst and of what the sell-out adds (re-plans
/// over empty shards, the buyers' stock reads).
#[derive(Debug, Clone)]
pub struct SteadyWindow {
    /// The report when the window opened.
    pub before: Value,
    /// The report when it closed.
    pub after: Value,
    /// 201s in the window.
    pub orders: u64,
}

/// One order a buyer placed.
struct Placed {
    order_id: String,
    user: User,
    at: Instant,
}

/// What one buyer saw.
#[derive(Default)]
struct Buyer {
    placed: Vec<Placed>,
    latencies: Latencies,
    per_second: PerSecond,
    /// Refusals: when, and the answer (`409 LOCK_CONFLICT`, `503 SERVICE_UNAVAILABLE`, ...).
    refusals: Vec<(Instant, String)>,
    errors: UnexpectedErrors,
    sold_out_at: Option<Instant>,
    sockets: Vec<tokio::task::JoinHandle<()>>,
}

/// Whether an answer refuses an order the buyer should try again: anything 409 but a sell-out,
/// throttling (429) and unavailability (503).
fn is_refusal(status: u16, code: &str) -> bool {
    matches!(status, 409 | 429 | 503) && code != "INSUFFICIENT_STOCK"
}

async fn buy_until_sold_out(
    api: Api,
    ws_url: String,
    product: String,
    buyer: usize,
    (start, stop_at): (Instant, Instant),
    events: TerminalEvents,
    progress: Arc<Progress>,
) -> Buyer {
    tokio::time::sleep_until(start.into()).await;
    let mut seen = Buyer::default();
    let mut short_with_stock = 0u32;
    let mut order = 0u64;
    'orders: while Instant::now() < stop_at {
        let user = api.user(&format!("hot-{buyer}-{order}"));
        let key = format!("hot-{buyer}-{order}");
        let socket = match api
            .watch_first_terminal_event(&ws_url, &user.token, Arc::clone(&events))
            .await
        {
            Ok(socket) => socket,
            Err(error) => {
                if seen.errors.record(|| format!("{error:#}")) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let mut tries = 0u32;
        loop {
            if Instant::now() >= stop_at {
                socket.abort();
                break 'orders;
            }
            let answer = api.place_order(&user, &key, &product, 1).await;
            let now = Instant::now();
            let code = answer.code().to_owned();
            match answer.status {
                // 200: a retried key whose earlier try had placed the order after all.
                201 | 200 => {
                    seen.errors.end_streak();
                    short_with_stock = 0;
                    seen.latencies.record(answer.latency);
                    seen.per_second.record(now - start, answer.latency);
                    seen.placed.push(Placed {
                        order_id: answer.data_str("id").to_owned(),
                        user: user.clone(),
                        at: now,
                    });
                    seen.sockets.push(socket);
                    progress.placed.fetch_add(1, Ordering::Relaxed);
                    order += 1;
                    continue 'orders;
                }
                409 if code == "INSUFFICIENT_STOCK" => {
                    // Sold out, unless a failed payment has given units back meanwhile.
                    match api.stock(&product).await {
                        Ok(0) | Err(_) => {
                            seen.sold_out_at = Some(now);
                            progress.sold_out.notify_one();
                            socket.abort();
                            break 'orders;
                        }
                        Ok(_) => {
                            seen.refusals
                                .push((now, "409 INSUFFICIENT_STOCK with stock left".to_owned()));
                            short_with_stock += 1;
                            if short_with_stock >= MAX_SHORT_WITH_STOCK {
                                seen.sold_out_at = Some(now);
                                progress.sold_out.notify_one();
                                socket.abort();
                                break 'orders;
                            }
                        }
                    }
                }
                status if is_refusal(status, &code) => {
                    seen.refusals.push((now, answer.summary()));
                }
                _ => {
                    if seen.errors.record(|| answer.summary()) {
                        socket.abort();
                        break 'orders;
                    }
                }
            }
            tries += 1;
            if tries >= MAX_REFUSALS_PER_ORDER {
                seen.errors
                    .samples
                    .push(format!("gave an order up after {tries} refusals"));
                socket.abort();
                break 'orders;
            }
            tokio::time::sleep(busy_pause(buyer, tries)).await;
        }
    }
    seen
}

/// Creates the sale's product (before the caller resets the stack's counters).
pub async fn create_product(api: &Api, spec: &SaleSpec) -> anyhow::Result<SaleProduct> {
    let id = api
        .create_sharded_product("hot-product", spec.stock, spec.shards)
        .await?;
    Ok(SaleProduct { id })
}

/// What the buyers did, before the books are checked.
pub struct Bought {
    result: ScenarioResult,
    placed: Vec<Placed>,
    product: String,
    initial: u64,
    /// The steady window's partition reports, when it held enough orders.
    pub window: Option<SteadyWindow>,
}

/// Runs the buyers until the product is sold out (or `spec.limit`), reading `partitions_url`
/// (the stack's `/_local/partitions`) at both ends of the steady window, then waits for every
/// order's terminal event; the figures of the buying and the settling.
pub async fn buy(
    api: &Api,
    ws_url: &str,
    partitions_url: &str,
    spec: &SaleSpec,
    product: &SaleProduct,
) -> anyhow::Result<Bought> {
    let mut result = ScenarioResult::pass("hot-product", &spec.label);
    let events: TerminalEvents = Arc::default();
    let progress = Arc::new(Progress::default());
    // Every buyer starts at the same instant, a moment after all tasks exist.
    let start = Instant::now() + Duration::from_millis(200);
    let stop_at = start + spec.limit;
    let tasks: Vec<_> = (0..spec.buyers)
        .map(|n| {
            tokio::spawn(buy_until_sold_out(
                api.clone(),
                ws_url.to_owned(),
                product.id.clone(),
                n,
                (start, stop_at),
                Arc::clone(&events),
                Arc::clone(&progress),
            ))
        })
        .collect();
    let http = reqwest::Client::new();
    let watch_window = async {
        tokio::time::sleep_until((start + WARM_UP).into()).await;
        let opened = progress.placed.load(Ordering::Relaxed);
        let before = get_json(&http, partitions_url).await?;
        tokio::select! {
            () = progress.sold_out.notified() => {}
            () = tokio::time::sleep_until(stop_at.into()) => {}
        }
        let orders = progress.placed.load(Ordering::Relaxed) - opened;
        let after = get_json(&http, partitions_url).await?;
        Ok::<_, anyhow::Error>(SteadyWindow {
            before,
            after,
            orders,
        })
    };
    let join_buyers = async {
        let mut buyers = Vec::new();
        for task in tasks {
            buyers.push(task.await?);
        }
        // A sale over before its window opened: the watcher need not wait for the deadline.
        progress.sold_out.notify_one();
        Ok::<_, anyhow::Error>(buyers)
    };
    let (buyers, window) = tokio::join!(join_buyers, watch_window);
    let mut buyers = buyers?;
    let window = window?;
    let buying_done = Instant::now();

    let mut placed: Vec<Placed> = Vec::new();
    let mut sockets = Vec::new();
    let mut latencies = Latencies::new();
    let mut per_second = PerSecond::default();
    let mut refusals: Vec<(Instant, String)> = Vec::new();
    let mut samples = Vec::new();
    let mut other_errors = 0;
    for buyer in &mut buyers {
        placed.append(&mut buyer.placed);
        sockets.append(&mut buyer.sockets);
        latencies.merge(&buyer.latencies);
        per_second.merge(&buyer.per_second);
        refusals.append(&mut buyer.refusals);
        samples.extend(buyer.errors.samples.iter().cloned());
        other_errors += buyer.errors.count;
    }
    let mut unique = std::collections::HashSet::new();
    placed.retain(|p| unique.insert(p.order_id.clone()));
    let first_sold_out = buyers.iter().filter_map(|b| b.sold_out_at).min();
    let sold_out = first_sold_out.unwrap_or(buying_done.min(stop_at));
    let sale = sold_out
        .saturating_duration_since(start)
        .max(Duration::from_millis(1));
    let in_stock = |at: &Instant| *at <= sold_out;
    let placed_in_stock = placed.iter().filter(|p| in_stock(&p.at)).count() as u64;
    let steady_from = start + WARM_UP;
    let steady = if sale > WARM_UP * 3 {
        let n = placed
            .iter()
            .filter(|p| p.at >= steady_from && p.at <= sold_out)
            .count() as f64;
        n / sold_out.duration_since(steady_from).as_secs_f64()
    } else {
        placed_in_stock as f64 / sale.as_secs_f64()
    };
    let refusals_in_stock: Vec<&String> = refusals
        .iter()
        .filter(|(at, _)| in_stock(at))
        .map(|(_, what)| what)
        .collect();
    let mut refusal_kinds: HashMap<&str, u64> = HashMap::new();
    for what in &refusals_in_stock {
        *refusal_kinds.entry(what.as_str()).or_default() += 1;
    }
    let mut refusal_kinds: Vec<(&str, u64)> = refusal_kinds.into_iter().collect();
    refusal_kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));

    // The orders' terminal events: payments (and the restores of failed ones) drain.
    let deadline = Instant::now() + spec.settle_wait;
    loop {
        let done = {
            let events = events.lock().expect("the events map is never poisoned");
            placed.iter().all(|p| events.contains_key(&p.order_id))
        };
        if done || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for socket in sockets {
        socket.abort();
    }
    let mut lag = Latencies::new();
    let mut missing = 0u64;
    let mut last_event = None;
    let mut failed_events = 0u64;
    {
        let events = events.lock().expect("the events map is never poisoned");
        for p in &placed {
            match events.get(&p.order_id) {
                Some((at, kind)) => {
                    lag.record(at.saturating_duration_since(p.at));
                    last_event = last_event.max(Some(*at));
                    if kind != "OrderPaid" {
                        failed_events += 1;
                    }
                }
                None => missing += 1,
            }
        }
    }

    result.put("product_id", product.id.as_str());
    result.put("initial_stock", spec.stock);
    result.put("stock_shards", spec.shards);
    result.put("buyers", spec.buyers as u64);
    result.put("users", "a fresh user per order");
    result.put("created_201", placed.len() as u64);
    result.put("created_201_while_stock", placed_in_stock);
    result.put("sold_out", first_sold_out.is_some());
    result.put("sale_s", sale.as_secs_f64());
    result.put("orders_per_s", steady);
    result.put(
        "orders_per_s_whole_sale",
        placed_in_stock as f64 / sale.as_secs_f64(),
    );
    result.put("p50_ms", latencies.quantile_ms(0.50));
    result.put("p99_ms", latencies.quantile_ms(0.99));
    result.put("refusals_while_stock", refusals_in_stock.len() as u64);
    result.put(
        "attempts_while_stock",
        placed_in_stock + refusals_in_stock.len() as u64,
    );
    result.put(
        "refusals_by_answer",
        refusal_kinds
            .iter()
            .map(|(what, n)| format!("{n} × {what}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    result.put("refusals_total", refusals.len() as u64);
    result.put("other_errors", other_errors);
    if !samples.is_empty() {
        result.put(
            "error_samples",
            samples.into_iter().take(3).collect::<Vec<_>>().join("; "),
        );
    }
    result.put("settle_p50_ms", lag.quantile_ms(0.50));
    result.put("settle_p99_ms", lag.quantile_ms(0.99));
    result.put("terminal_events_missing", missing);
    result.put("terminal_events_failed", failed_events);
    result.put(
        "settled_after_sell_out_s",
        crate::outcome::settled_after_sell_out(missing, last_event, sold_out),
    );
    result.put("per_second", per_second.series());
    result.put("steady_window_orders", window.orders);
    Ok(Bought {
        result,
        placed,
        product: product.id.clone(),
        initial: spec.stock,
        window: (window.orders >= MIN_WINDOW_ORDERS).then_some(window),
    })
}

/// What the books say after a sale: units in PAID orders, in orders not settled, and the stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Books {
    /// Units in PAID orders.
    pub sold: u64,
    /// Units in PENDING or PROCESSING orders.
    pub unsettled: u64,
    /// Units in FAILED or CANCELLED orders (given back).
    pub given_back: u64,
    /// Orders that could not be read.
    pub unread: u64,
    /// The product's stock.
    pub left: u64,
}

/// Reads every order's stored status and the stock; returns the result with the books added.
pub async fn check_books(api: &Api, bought: Bought) -> anyhow::Result<(ScenarioResult, Books)> {
    let Bought {
        mut result,
        placed,
        product,
        initial,
        window: _,
    } = bought;
    let statuses: Vec<Option<String>> = futures::stream::iter(placed.iter())
        .map(|p| async move {
            let answer = api
                .get(&format!("/orders/{}", p.order_id), Some(&p.user.token))
                .await;
            (answer.status == 200)
                .then(|| answer.body["data"]["status"].as_str().map(str::to_owned))
                .flatten()
        })
        .buffer_unordered(CHECK_CONCURRENCY)
        .collect()
        .await;
    let mut books = Books {
        sold: 0,
        unsettled: 0,
        given_back: 0,
        unread: 0,
        left: 0,
    };
    for status in statuses {
        match status.as_deref().map(str::parse::<OrderStatus>) {
            Some(Ok(OrderStatus::Paid)) => books.sold += 1,
            Some(Ok(status)) if !status.is_terminal() => books.unsettled += 1,
            Some(_) => books.given_back += 1,
            None => books.unread += 1,
        }
    }
    // A failed payment's unit lands on its shard one stock write after the order's status move
    // (`shared/src/adapters/dynamodb/stock_journal/`): the stock is read until it adds up, or
    // [`RESTORE_WAIT`] has passed.
    let reading = Instant::now();
    loop {
        books.left = api.stock(&product).await?;
        let accounted = books.sold + books.unsettled + books.left;
        if accounted >= initial || reading.elapsed() >= RESTORE_WAIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    result.put(
        "stock_read_for_s",
        crate::outcome::round(reading.elapsed().as_secs_f64()),
    );
    result.put("units_sold", books.sold);
    result.put("units_unsettled", books.unsettled);
    result.put("units_given_back", books.given_back);
    result.put("orders_unread", books.unread);
    result.put("final_stock", books.left);
    result.put(
        "stock_conserved",
        books.sold + books.unsettled + books.left == initial,
    );
    Ok((result, books))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sell_out_is_not_a_refusal_but_a_busy_lock_and_throttling_are() {
        assert!(!is_refusal(409, "INSUFFICIENT_STOCK"));
        assert!(is_refusal(409, "LOCK_CONFLICT"));
        assert!(is_refusal(503, "SERVICE_UNAVAILABLE"));
        assert!(is_refusal(429, "RATE_LIMITED"));
        assert!(!is_refusal(500, "INTERNAL"));
    }
}
