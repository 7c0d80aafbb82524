//! Arrangement both store test targets use (each includes it with `#[path]`): fixed times, a
//! price, orders as the use case builds them, orders placed from holds, and bursts of requests
//! to a rate counter.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use shared::domain::{
    Hold, IdempotencyKey, Money, Order, OrderId, OrderItem, ProductId, Quantity, ShardSplit, UserId,
};
use shared::ports::{HoldStore, RateCounter, RateDecision, StockReserver};

/// 2026-01-01T00:00:00Z plus `seconds`: whole seconds, which every store keeps exactly.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + seconds, 0).unwrap()
}

/// `at(0)` plus `ms` milliseconds.
pub fn at_ms(ms: i64) -> DateTime<Utc> {
    at(0) + chrono::Duration::milliseconds(ms)
}

pub fn price() -> Money {
    Money::parse("9.99").unwrap()
}

/// An order as the use case builds it, its id derived from the user and the key, every line
/// from shard 0.
pub fn order(user: &str, key: &str, lines: &[(&ProductId, i64)], created: DateTime<Utc>) -> Order {
    let items = lines
        .iter()
        .map(|(product, q)| OrderItem {
            product_id: (*product).clone(),
            quantity: Quantity::parse(*q).unwrap(),
            unit_price: price(),
            shards: ShardSplit::default(),
        })
        .collect();
    let user = UserId::new(user);
    let key = IdempotencyKey::parse(key).unwrap();
    Order::place(OrderId::for_key(&user, &key), user, key, items, created)
}

/// Places `order` (one line) as a checkout of a hold does: a hold on the line, then the order
/// that consumes it, at the order's creation time.
pub async fn place_from_hold<S: HoldStore + StockReserver>(
    store: &S,
    order: &Order,
) -> anyhow::Result<()> {
    let line = &order.items[0];
    let hold = Hold::place(
        order.user_id.clone(),
        line.product_id.clone(),
        line.quantity,
        line.unit_price,
        order.created_at,
        Duration::from_secs(86_400),
    );
    store.place_hold(&hold, 100).await?;
    let consumed = hold.consumed(order.id.clone(), order.created_at);
    store
        .place_order_from_hold(order, "fp", &consumed, order.created_at)
        .await?;
    Ok(())
}

pub fn limited(retry_after_secs: u64) -> RateDecision {
    RateDecision::Limited { retry_after_secs }
}

/// Decisions for `count` requests of `subject` at `now`.
pub async fn burst<S: RateCounter>(
    store: &S,
    subject: &str,
    now: DateTime<Utc>,
    limit: u32,
    count: usize,
) -> anyhow::Result<Vec<RateDecision>> {
    let mut decisions = Vec::with_capacity(count);
    for _ in 0..count {
        decisions.push(store.try_count(subject, now, limit).await?);
    }
    Ok(decisions)
}

/// How many of `decisions` were allowed.
pub fn allowed(decisions: &[RateDecision]) -> usize {
    decisions
        .iter()
        .filter(|d| **d == RateDecision::Allowed)
        .count()
}
