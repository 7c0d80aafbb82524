//! Placement and cancellation: one transaction each, all or nothing, under concurrency too.

use super::*;

#[tokio::test]
async fn dynoxide_gives_one_cancellation_reason_per_action_in_action_order() -> anyhow::Result<()> {
    let stack = start().await?;
    let p = stack.product("p", 1).await?;
    let decrement = Update::builder()
        .table_name(&stack.tables.products)
        .key("id", AttributeValue::S(p.as_str().into()))
        .update_expression("SET stock = stock - :q")
        .condition_expression("stock >= :q")
        .expression_attribute_values(":q", AttributeValue::N("2".into()))
        .build()?;
    let put = Put::builder()
        .table_name(&stack.tables.orders)
        .item("id", AttributeValue::S("o".into()))
        .condition_expression("attribute_not_exists(id)")
        .build()?;
    let error = stack
        .client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(decrement).build())
        .transact_items(TransactWriteItem::builder().put(put).build())
        .send()
        .await
        .expect_err("the decrement's condition is false");
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.as_service_error()
    else {
        panic!("expected TransactionCanceledException, got {error:?}");
    };
    let codes: Vec<Option<&str>> = cancelled
        .cancellation_reasons()
        .iter()
        .map(|r| r.code())
        .collect();
    assert_eq!(codes, [Some("ConditionalCheckFailed"), Some("None")]);
    Ok(())
}

#[tokio::test]
async fn place_order_decrements_stock_and_writes_the_order_as_its_keys_record() -> anyhow::Result<()>
{
    let stack = start().await?;
    let a = stack.product("a", 10).await?;
    let b = stack.product("b", 3).await?;
    let placed = order("alice", "k1", &[(&a, 4), (&b, 3)], at(10));

    stack.store.place_order(&placed, "fp-1").await?;

    assert_eq!(stack.store.get_product(&a).await?.unwrap().stock, 6);
    let b_now = stack.store.get_product(&b).await?.unwrap();
    assert_eq!((b_now.stock, b_now.updated_at), (0, at(10)));
    assert_eq!(
        stack.store.get_order(&placed.id).await?,
        Some(placed.clone())
    );
    let record = stack.record("alice", "k1").await?.unwrap();
    assert_eq!(
        (record.order, record.request_fingerprint.as_deref()),
        (placed.clone(), Some("fp-1"))
    );
    assert_eq!(
        stack.record("bob", "k1").await?,
        None,
        "keys are scoped to their user"
    );
    Ok(())
}

#[tokio::test]
async fn insufficient_stock_names_the_product_and_writes_nothing() -> anyhow::Result<()> {
    let stack = start().await?;
    let a = stack.product("a", 10).await?;
    let b = stack.product("b", 1).await?;
    let placed = order("alice", "k1", &[(&a, 2), (&b, 5)], at(10));

    let result = stack.store.place_order(&placed, "fp").await;

    assert!(
        matches!(&result, Err(PlaceOrderError::InsufficientStock { product_id }) if *product_id == b),
        "{result:?}"
    );
    assert_eq!(stack.raw_stock(&a).await?, Some(10));
    assert_eq!(stack.raw_stock(&b).await?, Some(1));
    assert_eq!(stack.store.get_order(&placed.id).await?, None);
    assert_eq!(stack.record("alice", "k1").await?, None);

    let ghost = ProductId::new("no-such-product");
    let result = stack
        .store
        .place_order(&order("alice", "k2", &[(&a, 1), (&ghost, 1)], at(11)), "fp")
        .await;
    assert!(
        matches!(&result, Err(PlaceOrderError::InsufficientStock { product_id }) if *product_id == ghost),
        "{result:?}"
    );
    assert_eq!(stack.raw_stock(&a).await?, Some(10));
    Ok(())
}

#[tokio::test]
async fn duplicate_key_wins_over_stock_and_writes_nothing() -> anyhow::Result<()> {
    let stack = start().await?;
    let a = stack.product("a", 5).await?;
    let first = order("alice", "k1", &[(&a, 2)], at(10));
    stack.store.place_order(&first, "fp-1").await?;

    // Same user and key, and more units than are left: the key must be what is reported.
    let second = order("alice", "k1", &[(&a, 4)], at(11));
    let result = stack.store.place_order(&second, "fp-2").await;

    assert!(
        matches!(result, Err(PlaceOrderError::DuplicateKey)),
        "{result:?}"
    );
    assert_eq!(stack.raw_stock(&a).await?, Some(3));
    assert_eq!(
        stack.store.get_order(&second.id).await?,
        Some(first.clone()),
        "the key's order is the first one"
    );
    assert_eq!(stack.record("alice", "k1").await?.unwrap().order, first);
    let again = order("alice", "k1", &[(&a, 1)], at(12));
    assert!(matches!(
        stack.store.place_order(&again, "fp-1").await,
        Err(PlaceOrderError::DuplicateKey)
    ));
    assert_eq!(stack.raw_stock(&a).await?, Some(3));
    Ok(())
}

#[tokio::test]
async fn cancel_restores_stock_exactly_once() -> anyhow::Result<()> {
    let stack = start().await?;
    let a = stack.product("a", 10).await?;
    let b = stack.product("b", 10).await?;
    let placed = order("alice", "k1", &[(&a, 3), (&b, 1)], at(10));
    stack.store.place_order(&placed, "fp").await?;
    let cancelled = placed.cancelled(at(20)).unwrap();

    assert!(stack.store.cancel_order(&cancelled).await?);
    assert!(
        !stack.store.cancel_order(&cancelled).await?,
        "a second cancel changes nothing"
    );

    assert_eq!(stack.raw_stock(&a).await?, Some(10));
    assert_eq!(stack.raw_stock(&b).await?, Some(10));
    let stored = stack.store.get_order(&placed.id).await?.unwrap();
    assert_eq!(stored, cancelled);
    assert_eq!(
        (stored.status, stored.cancelled_at),
        (OrderStatus::Cancelled, Some(at(20)))
    );
    assert!(
        !stack
            .store
            .cancel_order(&order("alice", "k9", &[(&a, 1)], at(10)))
            .await?
    );
    assert_eq!(stack.raw_stock(&a).await?, Some(10));
    Ok(())
}

#[tokio::test]
async fn soft_deleted_product_is_hidden_but_cancel_still_restores_its_stock() -> anyhow::Result<()>
{
    let stack = start().await?;
    let a = stack.product("a", 10).await?;
    let placed = order("alice", "k1", &[(&a, 3)], at(10));
    stack.store.place_order(&placed, "fp").await?;

    assert!(stack.store.delete_product(&a, at(15)).await?);
    assert!(
        !stack.store.delete_product(&a, at(16)).await?,
        "already deleted"
    );
    assert!(
        !stack
            .store
            .delete_product(&ProductId::new("nope"), at(16))
            .await?
    );

    assert_eq!(stack.store.get_product(&a).await?, None);
    assert_eq!(
        stack.store.get_products(std::slice::from_ref(&a)).await?,
        vec![]
    );
    let patch = ProductPatch {
        stock: Some(99),
        ..ProductPatch::default()
    };
    assert_eq!(stack.store.update_product(&a, &patch, at(17)).await?, None);
    let buy = stack
        .store
        .place_order(&order("alice", "k2", &[(&a, 1)], at(18)), "fp")
        .await;
    assert!(
        matches!(&buy, Err(PlaceOrderError::InsufficientStock { product_id }) if *product_id == a),
        "{buy:?}"
    );

    assert!(
        stack
            .store
            .cancel_order(&placed.cancelled(at(20)).unwrap())
            .await?
    );
    assert_eq!(stack.raw_stock(&a).await?, Some(10));
    assert_eq!(
        stack.store.get_product(&a).await?,
        None,
        "restoring stock does not undelete"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_buyers_of_five_units_get_exactly_five_orders() -> anyhow::Result<()> {
    let stack = start().await?;
    let p = stack.product("hot", 5).await?;

    let buyers: Vec<_> = (0..30)
        .map(|i| {
            let store = stack.store.clone();
            let placed = order(&format!("user{i}"), "k", &[(&p, 1)], at(i));
            tokio::spawn(async move {
                // A conflict is the caller's to retry (the port says so); the handler does the same.
                for _ in 0..20 {
                    match store.place_order(&placed, "fp").await {
                        Err(PlaceOrderError::Conflict { .. }) => {
                            tokio::time::sleep(Duration::from_millis(5)).await
                        }
                        other => return other,
                    }
                }
                Err(PlaceOrderError::Conflict { product_id: None })
            })
        })
        .collect();

    let mut placed = 0;
    for buyer in buyers {
        match buyer.await? {
            Ok(_) => placed += 1,
            Err(PlaceOrderError::InsufficientStock { product_id }) => assert_eq!(product_id, p),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(placed, 5);
    assert_eq!(stack.raw_stock(&p).await?, Some(0));
    Ok(())
}
