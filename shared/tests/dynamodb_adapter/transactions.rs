//! Placement against Dynoxide beyond the shared contract (`tests/store_contract/placement.rs`):
//! the emulator's cancellation reasons, a soft-deleted product's stock read past the adapter, and
//! thirty concurrent buyers of five units.

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
