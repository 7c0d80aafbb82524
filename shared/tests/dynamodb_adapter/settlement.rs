//! The reconciler's query on the sharded `unsettled-orders` index of orders from holds: many
//! shards read oldest first up to the limit, and settled orders leaving the index. The status
//! moves themselves run against both stores in `tests/store_contract/settlement.rs`.

use std::collections::HashMap;

use super::*;
use shared::ports::{OrderSettler, UnsettledOrders};

/// The `unsettled-orders` index's name, as `template.yaml` and `ensure_tables` create it.
const UNSETTLED_INDEX: &str = "unsettled-orders";

/// The id of alice's order placed with `key`, as the application derives it.
fn alice_order(key: &str) -> OrderId {
    OrderId::for_key(&UserId::new("alice"), &IdempotencyKey::parse(key).unwrap())
}

impl Stack {
    /// An order's `unsettled_shard` as stored, `None` when it has none.
    async fn unsettled_shard(&self, id: &str) -> anyhow::Result<Option<String>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.orders)
            .key("id", AttributeValue::S(id.into()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(
            match output.item.as_ref().and_then(|i| i.get("unsettled_shard")) {
                Some(AttributeValue::S(shard)) => Some(shard.clone()),
                _ => None,
            },
        )
    }

    /// The order ids on one shard of the `unsettled` index, read straight from the index.
    async fn index_shard(&self, shard: &str) -> anyhow::Result<Vec<String>> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.orders)
            .index_name(UNSETTLED_INDEX)
            .key_condition_expression("unsettled_shard = :s")
            .expression_attribute_values(":s", AttributeValue::S(shard.into()))
            .send()
            .await?;
        Ok(output
            .items()
            .iter()
            .filter_map(|item| item.get("id")?.as_s().ok().cloned())
            .collect())
    }
}

fn ids(orders: &[Order]) -> Vec<&str> {
    orders.iter().map(|o| o.id.as_str()).collect()
}

/// The shard number of an `unsettled_shard` value, checked against the shard count.
fn shard_number(shard: &str) -> u32 {
    let n: u32 = shard.parse().unwrap();
    assert!(n < 512, "{shard}");
    n
}

#[tokio::test]
async fn unsettled_orders_on_many_shards_come_back_oldest_first_up_to_the_limit()
-> anyhow::Result<()> {
    let stack = start().await?;
    let product = stack.product("p", 1000).await?;
    // 120 orders placed at scrambled times (17 and 120 are coprime: every second 0..120 once), with
    // ids made as the application makes them (sequential ids would land on sequential shards).
    let placed_at = |i: i64| (i * 17) % 120;
    let id = |i: i64| {
        let key = IdempotencyKey::parse(&format!("k{i}")).unwrap();
        OrderId::for_key(&UserId::new("alice"), &key).to_string()
    };
    for i in 0..120 {
        let placed = order(
            "alice",
            &format!("k{i}"),
            &[(&product, 1)],
            at(placed_at(i)),
        );
        place_from_hold(&stack.store, &placed).await?;
    }
    let mut by_age: Vec<i64> = (0..120).collect();
    by_age.sort_by_key(|i| placed_at(*i));
    let mut shards = HashMap::new();
    for i in 0..120 {
        let shard = stack
            .unsettled_shard(&id(i))
            .await?
            .context("no unsettled_shard")?;
        shards.insert(i, shard_number(&shard));
    }
    let distinct: HashSet<u32> = shards.values().copied().collect();
    assert!(distinct.len() >= 60, "orders spread: {distinct:?}");
    let oldest_60: Vec<String> = by_age.iter().take(60).map(|i| id(*i)).collect();
    let oldest_shards: HashSet<u32> = by_age.iter().take(60).map(|i| shards[i]).collect();
    assert!(
        oldest_shards.len() < 60,
        "two of the 60 oldest share a shard, so a shard is read on past its first page"
    );

    let first_60 = stack
        .store
        .unsettled(OrderStatus::Pending, at(90), 60)
        .await?;
    let all_before_30 = stack
        .store
        .unsettled(OrderStatus::Pending, at(90), 200)
        .await?;
    let none = stack
        .store
        .unsettled(OrderStatus::Pending, at(0), 200)
        .await?;

    assert_eq!(ids(&first_60), oldest_60, "the 60 oldest, oldest first");
    let before_90: Vec<String> = by_age.iter().take(90).map(|i| id(*i)).collect();
    assert_eq!(
        ids(&all_before_30),
        before_90,
        "only orders older than the cutoff"
    );
    assert!(none.is_empty(), "nothing is older than the first order");

    // Claiming leaves an order on its shard: the claim writes no index entry.
    for (i, claimed_at) in [(by_age[2], 152), (by_age[0], 151), (by_age[1], 153)] {
        let claimed = stack.store.get_order(&OrderId::new(id(i))).await?.unwrap();
        let processing = claimed
            .transitioned(OrderStatus::Processing, at(claimed_at))
            .unwrap();
        assert!(stack.store.start_processing(&processing).await?);
        let shard = stack
            .unsettled_shard(&id(i))
            .await?
            .context("no unsettled_shard")?;
        assert_eq!(shard_number(&shard), shards[&i]);
    }
    let processing = stack
        .store
        .unsettled(OrderStatus::Processing, at(160), 10)
        .await?;
    let pending = stack
        .store
        .unsettled(OrderStatus::Pending, at(90), 200)
        .await?;
    assert_eq!(
        ids(&processing),
        [id(by_age[0]), id(by_age[1]), id(by_age[2])],
        "oldest placed first"
    );
    assert_eq!(ids(&pending), before_90[3..], "claimed orders left PENDING");
    Ok(())
}

#[tokio::test]
async fn a_settled_order_leaves_the_unsettled_index() -> anyhow::Result<()> {
    let stack = start().await?;
    let product = stack.product("p", 100).await?;
    let place = |key: &str| order("alice", key, &[(&product, 1)], at(0));
    for key in [
        "paid",
        "failed",
        "cancelled",
        "paid-by-webhook",
        "still-pending",
    ] {
        place_from_hold(&stack.store, &place(key)).await?;
    }
    let mut pending_shards = HashMap::new();
    for key in ["paid", "failed", "cancelled", "paid-by-webhook"] {
        let id = alice_order(key).to_string();
        let shard = stack
            .unsettled_shard(&id)
            .await?
            .context("no unsettled_shard")?;
        assert!(stack.index_shard(&shard).await?.contains(&id));
        pending_shards.insert(id, shard);
    }

    for (key, outcome) in [("paid", OrderStatus::Paid), ("failed", OrderStatus::Failed)] {
        let id = alice_order(key).to_string();
        let processing = place(key)
            .transitioned(OrderStatus::Processing, at(1))
            .unwrap();
        assert!(stack.store.start_processing(&processing).await?);
        let processing_shard = stack
            .unsettled_shard(&id)
            .await?
            .context("no unsettled_shard")?;
        let settled = processing.transitioned(outcome, at(2)).unwrap();
        assert!(
            stack
                .store
                .settle(&settled, OrderStatus::Processing)
                .await?
        );
        assert!(
            !stack.index_shard(&processing_shard).await?.contains(&id),
            "{id} left {processing_shard}"
        );
    }
    assert!(
        stack
            .store
            .cancel_order(&place("cancelled").cancelled(at(2)).unwrap())
            .await?
    );
    let paid = place("paid-by-webhook")
        .transitioned(OrderStatus::Paid, at(2))
        .unwrap();
    assert!(stack.store.settle(&paid, OrderStatus::Pending).await?);

    for (id, shard) in &pending_shards {
        assert_eq!(
            stack.unsettled_shard(id).await?,
            None,
            "{id} has no unsettled_shard"
        );
        assert!(
            !stack.index_shard(shard).await?.contains(id),
            "{id} left {shard}"
        );
    }
    let indexed = stack
        .client
        .scan()
        .table_name(&stack.tables.orders)
        .index_name(UNSETTLED_INDEX)
        .send()
        .await?;
    let indexed: Vec<_> = indexed
        .items()
        .iter()
        .filter_map(|item| item.get("id")?.as_s().ok().cloned())
        .collect();
    assert_eq!(
        indexed,
        [alice_order("still-pending").to_string()],
        "the index holds only unsettled orders"
    );
    for status in [OrderStatus::Pending, OrderStatus::Processing] {
        let found = stack.store.unsettled(status, at(1000), 100).await?;
        let still_pending = alice_order("still-pending");
        let expected: &[&str] = match status {
            OrderStatus::Pending => &[still_pending.as_str()],
            _ => &[],
        };
        assert_eq!(ids(&found), expected, "{status}");
    }
    Ok(())
}
