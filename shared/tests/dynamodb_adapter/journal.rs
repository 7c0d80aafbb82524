//! The stock journal (`adapters/dynamodb/stock_journal/`): stock moves by single-item writes
//! leave no entry behind when they finish, and the sweep finishes or undoes, exactly once, what a
//! writer that died between its steps left: a take without its order, a take whose order was
//! written, a committed restore not applied, a restore intent whose status move never happened.
//! The item's count of entries stays exact, and a full journal turns takes away as busy.

use std::collections::HashMap;

use super::*;
use shared::domain::StockShard;
use shared::ports::{JournalSweep, OrderSettler, StockJournal, StockTaken, UnsentOrder};

/// An item of `table` by its `id`, read consistently (empty when absent).
async fn item(
    stack: &Stack,
    table: &str,
    id: &str,
) -> anyhow::Result<HashMap<String, AttributeValue>> {
    Ok(stack
        .client
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await?
        .item
        .unwrap_or_default())
}

/// The journal entries (`~` attributes) of a stock item.
async fn entries(stack: &Stack, id: &str) -> anyhow::Result<HashMap<String, AttributeValue>> {
    Ok(item(stack, &stack.tables.products, id)
        .await?
        .into_iter()
        .filter(|(name, _)| name.starts_with('~'))
        .collect())
}

/// The stock item's count of journal entries (`journal_open`; 0 when absent).
async fn open_entries(stack: &Stack, id: &str) -> anyhow::Result<i64> {
    let item = item(stack, &stack.tables.products, id).await?;
    Ok(item
        .get("journal_open")
        .and_then(|v| v.as_n().ok())
        .map_or(Ok(0), |n| n.parse())?)
}

/// An attribute of an order as stored.
async fn order_attribute(stack: &Stack, id: &str, name: &str) -> anyhow::Result<Option<String>> {
    let order = item(stack, &stack.tables.orders, id).await?;
    Ok(order.get(name).and_then(|v| v.as_s().ok()).cloned())
}

/// What a writer that died after its first step leaves: `stock + delta` and one entry, counted.
async fn leave_entry(
    stack: &Stack,
    product: &ProductId,
    delta: i64,
    name: &str,
    value: String,
) -> anyhow::Result<()> {
    stack
        .client
        .update_item()
        .table_name(&stack.tables.products)
        .key("id", AttributeValue::S(product.as_str().into()))
        .update_expression("SET stock = stock + :d, #e = :e, journal_open = if_not_exists(journal_open, :z) + :one")
        .expression_attribute_names("#e", name)
        .expression_attribute_values(":d", AttributeValue::N(delta.to_string()))
        .expression_attribute_values(":e", AttributeValue::S(value))
        .expression_attribute_values(":z", AttributeValue::N("0".into()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await?;
    Ok(())
}

#[tokio::test]
async fn finished_moves_leave_no_entry_and_the_owner_names_its_take() -> anyhow::Result<()> {
    let stack = start().await?;
    let product = stack.product("p", 10).await?;
    let placed = order("alice", "k1", &[(&product, 4)], at(0));
    let taken = stack.store.place_order(&placed, "fp").await?;
    assert_eq!(stack.raw_stock(&product).await?, Some(6));
    assert_eq!(
        entries(&stack, "p").await?.len(),
        1,
        "the take stays marked until the order's message is sent"
    );
    stack.store.release_taken(&taken).await;
    assert_eq!(entries(&stack, "p").await?, HashMap::new());
    let token = order_attribute(&stack, placed.id.as_str(), "take_token").await?;
    assert_eq!(token.map(|t| t.len()), Some(12), "the order names its take");

    let processing = placed.transitioned(OrderStatus::Processing, at(1)).unwrap();
    assert!(stack.store.start_processing(&processing).await?);
    let failed = processing.transitioned(OrderStatus::Failed, at(2)).unwrap();
    assert!(stack.store.settle(&failed, OrderStatus::Processing).await?);
    assert!(!stack.store.settle(&failed, OrderStatus::Processing).await?);
    assert_eq!(stack.raw_stock(&product).await?, Some(10), "restored once");
    assert_eq!(entries(&stack, "p").await?, HashMap::new());
    assert!(
        order_attribute(&stack, placed.id.as_str(), "restore_token")
            .await?
            .is_some()
    );

    assert_eq!(open_entries(&stack, "p").await?, 0);

    let sweep = stack.store.sweep_stock_journal(Utc::now()).await?;
    assert_eq!(sweep, JournalSweep::default(), "nothing to finish");
    Ok(())
}

#[tokio::test]
async fn the_sweep_finishes_each_half_done_move_once() -> anyhow::Result<()> {
    let stack = start().await?;
    let product = stack.product("p", 20).await?;
    let old = at(0).timestamp_millis();

    // A take whose order was never written: 3 units out, to come back.
    leave_entry(
        &stack,
        &product,
        -3,
        "~taaaaaaaaaaaa",
        format!("oghost 3 {old}"),
    )
    .await?;
    // A take whose order was written (it names the token) and is still PENDING: its placement
    // stopped before sending the message, so the sweep hands it over and leaves the entry.
    let placed = order("alice", "k1", &[(&product, 2)], at(0));
    let taken = stack.store.place_order(&placed, "fp").await?;
    let token = order_attribute(&stack, placed.id.as_str(), "take_token")
        .await?
        .unwrap();
    assert_eq!(taken.token, token);
    // (Its entry is written again below, as old.)
    stack.store.release_taken(&taken).await;
    leave_entry(
        &stack,
        &product,
        0,
        &format!("~t{token}"),
        format!("o{} 2 {old}", placed.id),
    )
    .await?;
    // The same for an order already past PENDING: its message went out; the entry goes, the
    // units stay out.
    let paid = order("bob", "k1", &[(&product, 1)], at(0));
    let paid_taken = stack.store.place_order(&paid, "fp").await?;
    stack.store.release_taken(&paid_taken).await;
    stack
        .client
        .update_item()
        .table_name(&stack.tables.orders)
        .key("id", AttributeValue::S(paid.id.to_string()))
        .update_expression("SET #s = :paid")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":paid", AttributeValue::S("PAID".into()))
        .send()
        .await?;
    leave_entry(
        &stack,
        &product,
        0,
        &format!("~t{}", paid_taken.token),
        format!("o{} 1 {old}", paid.id),
    )
    .await?;
    // A committed restore left unapplied (the order names it): 2 units to come back.
    stack
        .client
        .update_item()
        .table_name(&stack.tables.orders)
        .key("id", AttributeValue::S(placed.id.to_string()))
        .update_expression("SET restore_token = :t")
        .expression_attribute_values(":t", AttributeValue::S("bbbbbbbbbbbb".into()))
        .send()
        .await?;
    leave_entry(
        &stack,
        &product,
        0,
        "~rbbbbbbbbbbbb_0",
        format!("o{} 2 {old}", placed.id),
    )
    .await?;
    // A restore intent whose status move never committed: dropped, no units.
    leave_entry(
        &stack,
        &product,
        0,
        "~rcccccccccccc_0",
        format!("o{} 2 {old}", placed.id),
    )
    .await?;
    // A fresh entry is some live writer's: left alone.
    let fresh = Utc::now().timestamp_millis();
    leave_entry(
        &stack,
        &product,
        -1,
        "~tdddddddddddd",
        format!("oo9 1 {fresh}"),
    )
    .await?;
    assert_eq!(stack.raw_stock(&product).await?, Some(13));

    let mut sweep = stack
        .store
        .sweep_stock_journal(Utc::now() - chrono::Duration::seconds(60))
        .await?;

    let unsent = std::mem::take(&mut sweep.unsent);
    assert_eq!(
        unsent,
        vec![UnsentOrder {
            order_id: placed.id.clone(),
            user_id: placed.user_id.clone(),
            placed_at: chrono::DateTime::from_timestamp_millis(old).unwrap(),
            taken: StockTaken {
                token: token.clone(),
                shards: vec![(StockShard::first(product.clone()), 2)],
            },
        }]
    );
    assert_eq!(
        sweep,
        JournalSweep {
            unsent: vec![],
            released: 1,
            undone: 1,
            applied: 1,
            dropped: 1,
        }
    );
    assert_eq!(
        stack.raw_stock(&product).await?,
        Some(18),
        "13 + 3 undone + 2 applied"
    );
    let mut left: Vec<String> = entries(&stack, "p").await?.into_keys().collect();
    left.sort();
    let mut expected = vec![format!("~t{token}"), "~tdddddddddddd".to_owned()];
    expected.sort();
    assert_eq!(
        left, expected,
        "the PENDING owner's entry stays, and the fresh one"
    );
    // The reconciler sends the message, then releases the entry.
    stack.store.release_taken(&unsent[0].taken).await;
    let left: Vec<String> = entries(&stack, "p").await?.into_keys().collect();
    assert_eq!(left, ["~tdddddddddddd"]);
    assert_eq!(
        open_entries(&stack, "p").await?,
        1,
        "the count follows the entries"
    );
    let again = stack
        .store
        .sweep_stock_journal(Utc::now() - chrono::Duration::seconds(60))
        .await?;
    assert_eq!(again, JournalSweep::default(), "each move finished once");
    assert_eq!(stack.raw_stock(&product).await?, Some(18));
    Ok(())
}

#[tokio::test]
async fn concurrent_orders_never_oversell_and_leave_no_entry() -> anyhow::Result<()> {
    let stack = start().await?;
    let product = stack.product("p", 10).await?;
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let store = stack.store.clone();
            let placed = order(&format!("u{i}"), "k", &[(&product, 1)], at(i));
            tokio::spawn(async move {
                let taken = store.place_order(&placed, "fp").await?;
                // As the use case does once the order's message is sent.
                store.release_taken(&taken).await;
                Ok(taken)
            })
        })
        .collect();
    let mut placed = 0;
    for task in tasks {
        match task.await? {
            Ok(_) => placed += 1,
            Err(PlaceOrderError::InsufficientStock { .. }) => {}
            Err(other) => anyhow::bail!("unexpected refusal {other:?}"),
        }
    }
    assert_eq!(placed, 10);
    assert_eq!(stack.raw_stock(&product).await?, Some(0));
    assert_eq!(entries(&stack, "p").await?, HashMap::new());
    Ok(())
}

#[tokio::test]
async fn a_full_journal_turns_takes_away_as_busy_until_an_entry_leaves() -> anyhow::Result<()> {
    let stack = start().await?;
    let product = stack.product("p", 10).await?;
    // 64 moves in flight on the product item (the cap): the stock is there, the journal is full.
    let now = Utc::now().timestamp_millis();
    for k in 0..64 {
        let name = format!("~t{k:012}");
        leave_entry(&stack, &product, 0, &name, format!("olive{k} 0 {now}")).await?;
    }
    let placed = order("alice", "k1", &[(&product, 1)], at(0));

    let refused = stack.store.place_order(&placed, "fp").await;

    assert!(
        matches!(refused, Err(PlaceOrderError::Conflict { .. })),
        "a full journal is busy, not short: {refused:?}"
    );
    assert_eq!(stack.raw_stock(&product).await?, Some(10), "nothing taken");
    assert_eq!(open_entries(&stack, "p").await?, 64);

    // One move finishes (the sweep, as its owner is unknown, drops the entry): room again.
    stack
        .client
        .update_item()
        .table_name(&stack.tables.products)
        .key("id", AttributeValue::S("p".into()))
        .update_expression("SET journal_open = journal_open - :one REMOVE #e")
        .expression_attribute_names("#e", "~t000000000000")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await?;
    let taken = stack.store.place_order(&placed, "fp").await?;
    stack.store.release_taken(&taken).await;
    assert_eq!(stack.raw_stock(&product).await?, Some(9));
    assert_eq!(
        open_entries(&stack, "p").await?,
        63,
        "its entry came and went"
    );
    Ok(())
}
