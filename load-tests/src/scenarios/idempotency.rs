//! Idempotency: one user sends the same order with one key 50 times at once. One order, one
//! decrement; every answer names it (201 for the winner, 200 for the replays). Against a stack
//! whose payments can fail (`make run`: 80 % succeed), a FAILED order gives its units back, so the
//! stock is checked against the order's status once it settles.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use shared::domain::OrderStatus;

use crate::outcome::ScenarioResult;

use super::{Tally, Target, all_at_once};

/// Concurrent copies of the request.
const COPIES: usize = 50;
/// Units per order, so "dropped by exactly the quantity once" is not the same as "by one".
const QUANTITY: u32 = 2;
/// The product's stock.
const STOCK: u64 = 100;
/// How long the order may take to settle before the stock is read (PENDING and PROCESSING keep
/// the units, so a stack that does not settle it is checked as it stands).
const SETTLE_WITHIN: Duration = Duration::from_secs(10);

/// PASS iff every answer is 201 or 200 with the same order id, the user has exactly one order,
/// and the stock dropped by the quantity once (back to where it was if the payment failed).
pub async fn run(target: &Target) -> anyhow::Result<ScenarioResult> {
    let mut result = ScenarioResult::pass("idempotency", &target.label);
    let product = target.api.create_product("idempotency", STOCK).await?;
    let user = target.api.user("idempotency");
    let answers = all_at_once(COPIES, |_| {
        let api = target.api.clone();
        let user = user.clone();
        let product = product.clone();
        async move { api.place_order(&user, "one-key", &product, QUANTITY).await }
    })
    .await;
    let mut tally = Tally::default();
    answers.iter().for_each(|answer| tally.count(answer));
    let ids: BTreeSet<&str> = answers
        .iter()
        .filter(|a| a.status == 200 || a.status == 201)
        .map(|a| a.data_str("id"))
        .collect();
    let mut orders = target.api.all_orders(&user).await?;
    let started = Instant::now();
    while !settled(&orders) && started.elapsed() < SETTLE_WITHIN {
        tokio::time::sleep(Duration::from_millis(100)).await;
        orders = target.api.all_orders(&user).await?;
    }
    let failed = orders
        .iter()
        .any(|order| matches!(order["status"].as_str(), Some("FAILED" | "CANCELLED")));
    let expected = if failed {
        STOCK
    } else {
        STOCK - u64::from(QUANTITY)
    };
    // A FAILED order's units come back just after its status moves.
    let mut stock = target.api.stock(&product).await?;
    for _ in 0..20 {
        if stock == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stock = target.api.stock(&product).await?;
    }

    result.put("requests", COPIES as u64);
    tally.put_into(&mut result);
    result.put("distinct_order_ids", ids.len() as u64);
    result.put("orders_listed", orders.len() as u64);
    result.put("stock_drop", STOCK.saturating_sub(stock));
    result.check(
        tally.created + tally.replayed == COPIES as u64,
        format!(
            "{} answers were not 201/200 (insufficient {}, lock conflict {}, other {:?})",
            COPIES as u64 - tally.created - tally.replayed,
            tally.insufficient,
            tally.lock_conflict,
            tally.samples
        ),
    );
    result.check(
        tally.created == 1,
        format!("{} answers were 201", tally.created),
    );
    result.check(ids.len() == 1, format!("{} distinct order ids", ids.len()));
    result.check(
        orders.len() == 1,
        format!("GET /orders lists {} orders", orders.len()),
    );
    result.put("payment_failed", u64::from(failed));
    result.check(
        stock == expected,
        format!(
            "stock is {stock}, expected {expected} (the order {})",
            if failed { "FAILED" } else { "holds its units" }
        ),
    );
    Ok(result)
}

/// Whether every order listed is PAID, FAILED or CANCELLED.
fn settled(orders: &[serde_json::Value]) -> bool {
    orders.iter().all(|order| {
        order["status"]
            .as_str()
            .and_then(|name| name.parse().ok())
            .is_some_and(OrderStatus::is_terminal)
    })
}
