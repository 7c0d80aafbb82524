//! The invariants: at each checkpoint, once the stack is quiet, stock conservation per product,
//! exactly one order per (user, idempotency key), every acknowledged order stored, and every
//! order's pushes consistent with it; between checkpoints, every product's stock within 0 and its
//! initial stock plus restocks.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use shared::domain::OrderStatus;

use super::shopper::{World, derived_order_id, lock};

/// How long the stack may take to settle once the faults are off and the shoppers paused.
const QUIET_LIMIT: Duration = Duration::from_secs(90);

/// Whether an order's `status` is one that still changes (PENDING, PROCESSING: not
/// `OrderStatus::is_terminal`).
fn is_unsettled(status: &Value) -> bool {
    status
        .as_str()
        .and_then(|name| name.parse::<OrderStatus>().ok())
        .is_some_and(|status| !status.is_terminal())
}

/// Stock accounts per product, in the order of `World::products`.
pub(crate) struct Ledger {
    pub products: Vec<ProductAccount>,
    /// Checks passed between checkpoints.
    pub live_checks: u64,
    /// The first live check that failed.
    pub live_failure: Option<String>,
}

/// One product's account.
pub(crate) struct ProductAccount {
    pub id: String,
    pub initial: u64,
    pub restocked: u64,
    /// Units in PAID orders of past rounds: terminal, so they never change again.
    pub retired: u64,
}

impl ProductAccount {
    /// What the product has had in all: `initial + restocks`.
    pub(crate) fn supplied(&self) -> u64 {
        self.initial + self.restocked
    }
}

/// What one checkpoint found.
pub(crate) struct Checked {
    pub checks: u64,
    pub quiet_after: Duration,
    pub orders: usize,
    /// Pushes older than one their client already had (a lower `version`), which clients ignore.
    pub stale_pushes: u64,
}

/// One shopper's round as read back: its book and what the API holds for it.
struct Round {
    user: crate::client::User,
    acknowledged: HashMap<String, String>,
    events: HashMap<String, Vec<(String, String, u64)>>,
    orders: Vec<Value>,
    holds: Vec<Value>,
}

/// Waits until the stack is quiet (no order PENDING or PROCESSING, no hold ACTIVE once
/// `hold_wait` has passed since `paused_at`, so every hold of the round has expired or been
/// used, and no stock move left in the stock journal for the reconciler's sweep), then checks
/// every invariant. `Err` says what differed.
pub(crate) async fn check(
    world: &World,
    ledger: &Mutex<Ledger>,
    paused_at: Instant,
    hold_wait: Duration,
) -> Result<Checked, String> {
    tokio::time::sleep_until((paused_at + hold_wait).into()).await;
    let rounds = loop {
        let rounds = read_rounds(world).await?;
        let unsettled: Vec<String> = rounds
            .iter()
            .flat_map(|round| {
                let orders = round
                    .orders
                    .iter()
                    .filter(|o| is_unsettled(&o["status"]))
                    .map(|o| format!("{} order {} {}", round.user.id, o["id"], o["status"]));
                let holds = round
                    .holds
                    .iter()
                    .filter(|h| h["status"] == "ACTIVE")
                    .map(|h| {
                        format!(
                            "{} hold {} ACTIVE, expires {}",
                            round.user.id, h["hold_id"], h["expires_at"]
                        )
                    });
                orders.chain(holds).collect::<Vec<_>>()
            })
            .collect();
        let mut unsettled = unsettled;
        let journal = stock_journal(world).await?;
        if journal > 0 {
            unsettled.push(format!("{journal} stock journal entries not yet swept"));
        }
        if unsettled.is_empty() {
            break rounds;
        }
        if paused_at.elapsed() > QUIET_LIMIT {
            return Err(format!(
                "not quiet {QUIET_LIMIT:?} after the pause ({} unsettled): {}",
                unsettled.len(),
                unsettled
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let quiet_after = paused_at.elapsed();

    let mut checks = 0;
    let mut stale_pushes = 0;
    let mut held: HashMap<&str, u64> = HashMap::new();
    let mut paid: HashMap<&str, u64> = HashMap::new();
    for round in &rounds {
        checks += exactly_once(round)?;
        let (pushed, stale) = pushes(round)?;
        checks += pushed;
        stale_pushes += stale;
        checks += holds_agree(round)?;
        for order in &round.orders {
            let status = order["status"].as_str().unwrap_or_default();
            if !status.parse().is_ok_and(OrderStatus::holds_stock) {
                continue;
            }
            for item in order["items"].as_array().into_iter().flatten() {
                let product = item["product_id"].as_str().unwrap_or_default();
                let quantity = item["quantity"].as_u64().unwrap_or(0);
                *held.entry(product).or_default() += quantity;
                if status == "PAID" {
                    *paid.entry(product).or_default() += quantity;
                }
            }
        }
        for hold in round.holds.iter().filter(|h| h["status"] == "ACTIVE") {
            *held
                .entry(hold["product_id"].as_str().unwrap_or_default())
                .or_default() += hold["quantity"].as_u64().unwrap_or(0);
        }
    }

    let accounts: Vec<(String, u64, u64)> = lock(ledger)
        .products
        .iter()
        .map(|p| (p.id.clone(), p.supplied(), p.retired))
        .collect();
    for (id, supplied, retired) in &accounts {
        let stock = world.api.stock(id).await.map_err(|e| format!("{e:#}"))?;
        let in_use = held.get(id.as_str()).copied().unwrap_or(0) + retired;
        if *supplied != stock + in_use {
            return Err(format!(
                "stock not conserved for {id}: initial + restocks = {supplied}, but available \
                 {stock} + units in PENDING/PROCESSING/PAID orders and ACTIVE holds {in_use} = {}",
                stock + in_use
            ));
        }
        checks += 1;
    }
    // The round's PAID units never change again: the next rounds count them without reading.
    for account in &mut lock(ledger).products {
        account.retired += paid.get(account.id.as_str()).copied().unwrap_or(0);
    }
    Ok(Checked {
        checks,
        quiet_after,
        orders: rounds.iter().map(|r| r.orders.len()).sum(),
        stale_pushes,
    })
}

/// Every shopper's orders and holds of this round.
async fn read_rounds(world: &World) -> Result<Vec<Round>, String> {
    let mut rounds = Vec::with_capacity(world.books.len());
    for book in &world.books {
        let (user, acknowledged, events, hold_ids) = {
            let book = lock(book);
            (
                book.user.clone(),
                book.acknowledged.clone(),
                book.events.clone(),
                book.holds.clone(),
            )
        };
        let orders = world
            .api
            .all_orders(&user)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let mut holds = Vec::with_capacity(hold_ids.len());
        for id in hold_ids {
            let answer = world
                .api
                .get(&format!("/holds/{id}"), Some(&user.token))
                .await;
            if answer.status != 200 {
                return Err(format!("GET /holds/{id} answered {}", answer.summary()));
            }
            holds.push(answer.body["data"].clone());
        }
        rounds.push(Round {
            user,
            acknowledged,
            events,
            orders,
            holds,
        });
    }
    Ok(rounds)
}

/// One order per idempotency key, and every order a shopper was answered 201/200 for stored
/// under its key with the id derived from (user, key).
fn exactly_once(round: &Round) -> Result<u64, String> {
    let user = &round.user.id;
    let mut by_key: HashMap<&str, &str> = HashMap::new();
    let mut ids = HashSet::new();
    for order in &round.orders {
        let id = order["id"].as_str().unwrap_or_default();
        let key = order["idempotency_key"].as_str().unwrap_or_default();
        if !ids.insert(id) {
            return Err(format!("{user}: order {id} listed twice"));
        }
        if let Some(first) = by_key.insert(key, id) {
            return Err(format!(
                "{user}: two orders for idempotency key {key}: {first} and {id}"
            ));
        }
    }
    let mut checks = by_key.len() as u64;
    for (key, id) in &round.acknowledged {
        if by_key.get(key.as_str()) != Some(&id.as_str()) {
            return Err(format!(
                "{user}: answered order {id} for key {key}, but the store has {:?} under that key",
                by_key.get(key.as_str())
            ));
        }
        if *id != derived_order_id(user, key) {
            return Err(format!(
                "{user}: order {id} for key {key} is not the id derived from (user, key)"
            ));
        }
        checks += 1;
    }
    Ok(checks)
}

/// Per order pushed: the order exists, at most one event per transition, each event's `version`
/// the one of its status (`OrderStatus::version`), at most one terminal event, and that one
/// matching the stored status. The order of arrival is not checked, only counted: a webhook can
/// settle an order the consumer has just claimed, and the consumer's `OrderProcessing` (retried
/// after a failed PostToConnection, or simply slower) then arrives after the webhook's
/// `OrderPaid`. A push whose version is below one that arrived before it for the same order is
/// stale: a client ignores it. Returns (checks, stale pushes).
fn pushes(round: &Round) -> Result<(u64, u64), String> {
    let user = &round.user.id;
    let statuses: HashMap<&str, &str> = round
        .orders
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap_or_default(),
                o["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let mut stale = 0;
    for (order, events) in &round.events {
        let Some(stored) = statuses.get(order.as_str()) else {
            return Err(format!(
                "{user}: pushes {events:?} for order {order}, which is not theirs or does not exist"
            ));
        };
        let kinds: Vec<&str> = events.iter().map(|(kind, ..)| kind.as_str()).collect();
        for (kind, status, version) in events {
            let expected = status.parse::<OrderStatus>().ok().map(OrderStatus::version);
            if expected.map(u64::from) != Some(*version) {
                return Err(format!(
                    "{user}: order {order} pushed {kind} ({status}) with version {version}, \
                     not its status's {expected:?}"
                ));
            }
        }
        let mut newest = 0;
        for (.., version) in events {
            if *version < newest {
                stale += 1;
            }
            newest = newest.max(*version);
        }
        let distinct: HashSet<&str> = kinds.iter().copied().collect();
        if distinct.len() != kinds.len() {
            return Err(format!(
                "{user}: order {order} ({stored}) pushed the same transition twice: {kinds:?}"
            ));
        }
        let terminal: Vec<&str> = kinds
            .iter()
            .filter_map(|kind| terminal_status(kind))
            .collect();
        match terminal.as_slice() {
            [] => {}
            [status] if status == stored => {}
            _ => {
                return Err(format!(
                    "{user}: order {order} is {stored} but its pushes were {kinds:?}"
                ));
            }
        }
    }
    Ok((round.events.len() as u64, stale))
}

fn terminal_status(event: &str) -> Option<&'static str> {
    match event {
        "OrderPaid" => Some("PAID"),
        "OrderFailed" => Some("FAILED"),
        "OrderCancelled" => Some("CANCELLED"),
        _ => None,
    }
}

/// A CONSUMED hold names an order of the same user holding its units; an EXPIRED one none.
fn holds_agree(round: &Round) -> Result<u64, String> {
    let user = &round.user.id;
    let orders: HashMap<&str, &Value> = round
        .orders
        .iter()
        .map(|o| (o["id"].as_str().unwrap_or_default(), o))
        .collect();
    for hold in &round.holds {
        match hold["status"].as_str() {
            Some("CONSUMED") => {
                let order_id = hold["order_id"].as_str().unwrap_or_default();
                let Some(order) = orders.get(order_id) else {
                    return Err(format!(
                        "{user}: consumed hold names no order of theirs: {hold}"
                    ));
                };
                let item = &order["items"][0];
                if (&item["product_id"], &item["quantity"])
                    != (&hold["product_id"], &hold["quantity"])
                {
                    return Err(format!(
                        "{user}: order {order_id} does not carry its hold's units: {hold}"
                    ));
                }
            }
            Some("EXPIRED") if hold["order_id"].is_null() => {}
            _ => return Err(format!("{user}: hold not settled as it should be: {hold}")),
        }
    }
    Ok(round.holds.len() as u64)
}

/// Reads every product's stock once: never negative, never above what it was supplied. The
/// bound is read after the stock: restocks add to the ledger before they write the stock.
pub(crate) async fn live_check(world: &World, ledger: &Mutex<Ledger>) {
    for (index, id) in world.products.iter().enumerate() {
        let answer = world.api.get(&format!("/products/{id}"), None).await;
        // Under injected faults a read may fail; that is not a finding.
        let Some(stock) = answer.body["data"]["stock"].as_i64() else {
            continue;
        };
        let mut ledger = lock(ledger);
        let supplied = ledger.products[index].supplied();
        if stock < 0 || stock as u64 > supplied {
            ledger.live_failure.get_or_insert(format!(
                "{id}: stock {stock} outside 0..={supplied} (initial + restocks)"
            ));
        } else {
            ledger.live_checks += 1;
        }
    }
}

/// The stock journal entries (`~` attributes, shared/src/adapters/dynamodb/stock_journal/) on
/// every item of the products table: stock moves whose writer failed between its steps, which
/// the reconciler's sweep finishes. Read straight from the embedded DynamoDB.
async fn stock_journal(world: &World) -> Result<usize, String> {
    let table = shared::config::TableNames::defaults().products;
    let mut entries = 0;
    let mut start: Option<Value> = None;
    loop {
        let mut body = serde_json::json!({"TableName": table, "ConsistentRead": true});
        if let Some(key) = start.take() {
            body["ExclusiveStartKey"] = key;
        }
        let page: Value = world
            .http
            .post(&world.aws_endpoint)
            .header("x-amz-target", "DynamoDB_20120810.Scan")
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-date", "20260101T000000Z")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=soak/20260101/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=soak",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("scanning the products table: {e}"))?
            .json()
            .await
            .map_err(|e| format!("scanning the products table: {e}"))?;
        let Some(items) = page["Items"].as_array() else {
            return Err(format!("scanning the products table answered {page}"));
        };
        entries += items
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|item| item.keys())
            .filter(|name| name.starts_with('~'))
            .count();
        match page.get("LastEvaluatedKey") {
            Some(key) if !key.is_null() => start = Some(key.clone()),
            _ => return Ok(entries),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alice's round: one order in `stored` status, pushed `events` in that order of arrival.
    fn round(stored: &str, events: &[(&str, &str, u64)]) -> Round {
        Round {
            user: crate::client::User {
                id: "alice".into(),
                token: "t".into(),
            },
            acknowledged: HashMap::new(),
            events: HashMap::from([(
                "o1".to_owned(),
                events
                    .iter()
                    .map(|(kind, status, version)| ((*kind).into(), (*status).into(), *version))
                    .collect(),
            )]),
            orders: vec![serde_json::json!({"id": "o1", "status": stored})],
            holds: vec![],
        }
    }

    #[test]
    fn a_push_older_than_one_already_seen_is_counted_stale_and_allowed() {
        let in_order = round(
            "PAID",
            &[
                ("OrderProcessing", "PROCESSING", 2),
                ("OrderPaid", "PAID", 3),
            ],
        );
        let reordered = round(
            "PAID",
            &[
                ("OrderPaid", "PAID", 3),
                ("OrderProcessing", "PROCESSING", 2),
            ],
        );

        assert_eq!(pushes(&in_order), Ok((1, 0)));
        assert_eq!(pushes(&reordered), Ok((1, 1)));
    }

    #[test]
    fn the_invariants_still_hold_a_push_to_its_order() {
        let twice = round(
            "PAID",
            &[("OrderPaid", "PAID", 3), ("OrderPaid", "PAID", 3)],
        );
        let contradicting = round("FAILED", &[("OrderPaid", "PAID", 3)]);
        let wrong_version = round("PAID", &[("OrderPaid", "PAID", 2)]);

        for (name, round) in [
            ("twice", twice),
            ("contradicting", contradicting),
            ("wrong version", wrong_version),
        ] {
            assert!(pushes(&round).is_err(), "{name}");
        }
    }
}
