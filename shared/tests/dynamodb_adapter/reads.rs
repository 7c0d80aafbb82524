//! Product writes and reads, and paginated listings.

use super::*;

#[tokio::test]
async fn products_are_created_patched_and_read_in_batches_over_100() -> anyhow::Result<()> {
    let stack = start().await?;
    let mut ids = Vec::new();
    for i in 0..130 {
        ids.push(stack.product(&format!("p{i:03}"), i).await?);
    }
    let patch = ProductPatch {
        name: Some("Renamed".into()),
        price: Some(Money::parse("1000").unwrap()),
        stock: None,
        stock_shards: None,
    };
    let patched = stack
        .store
        .update_product(&ids[1], &patch, at(5))
        .await?
        .unwrap();
    assert_eq!(
        (
            patched.name.as_str(),
            patched.price.to_string(),
            patched.stock
        ),
        ("Renamed", "1000.00".into(), 1)
    );
    assert_eq!((patched.created_at, patched.updated_at), (at(0), at(5)));
    assert_eq!(stack.store.get_product(&ids[1]).await?, Some(patched));
    assert_eq!(
        stack
            .store
            .update_product(&ProductId::new("nope"), &patch, at(5))
            .await?,
        None
    );
    stack.store.delete_product(&ids[2], at(6)).await?;

    let mut asked: Vec<ProductId> = ids.iter().rev().cloned().collect();
    asked.push(ProductId::new("unknown"));
    asked.push(ids[7].clone());
    let found = stack.store.get_products(&asked).await?;

    let expected: Vec<ProductId> = ids
        .iter()
        .rev()
        .filter(|id| **id != ids[2])
        .cloned()
        .collect();
    assert_eq!(
        found.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        expected,
        "asked order, unknown, deleted and repeats left out"
    );
    assert_eq!(found.iter().find(|p| p.id == ids[42]).unwrap().stock, 42);
    Ok(())
}

#[tokio::test]
async fn list_products_pages_without_gaps_and_skips_deleted() -> anyhow::Result<()> {
    let stack = start().await?;
    let mut live = HashSet::new();
    for i in 0..9 {
        let id = stack.product(&format!("p{i}"), 1).await?;
        if i % 3 == 1 {
            stack.store.delete_product(&id, at(1)).await?;
        } else {
            live.insert(id);
        }
    }

    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..20 {
        let page = stack.store.list_products(2, cursor).await?;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|p| p.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }

    assert!(cursor.is_none(), "listing never ended");
    assert_eq!(seen.len(), live.len(), "no duplicates: {seen:?}");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), live);
    assert!(matches!(
        stack.store.list_products(2, Some("%%%".into())).await,
        Err(StoreError::InvalidCursor)
    ));
    Ok(())
}

#[tokio::test]
async fn list_orders_is_newest_first_filtered_and_paged_by_user() -> anyhow::Result<()> {
    let stack = start().await?;
    let a = stack.product("a", 1000).await?;
    for i in 0..12 {
        let placed = order("alice", &format!("ka{i}"), &[(&a, 1)], at(100 + i));
        stack.store.place_order(&placed, "fp").await?;
        if i % 4 == 0 {
            stack
                .store
                .place_order(
                    &order("bob", &format!("kb{i}"), &[(&a, 1)], at(100 + i)),
                    "fp",
                )
                .await?;
        }
        if i % 3 == 0 {
            assert!(
                stack
                    .store
                    .cancel_order(&placed.cancelled(at(200)).unwrap())
                    .await?
            );
        }
    }
    let ids = |range: &[i64]| {
        range
            .iter()
            .map(|i| order_of("alice", &format!("ka{i}")))
            .collect::<Vec<_>>()
    };

    let pages = stack.all_orders("alice", None, 5).await?;
    assert_eq!(pages.concat(), ids(&[11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]));
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5, 2]);

    let pending = stack
        .all_orders("alice", Some(OrderStatus::Pending), 3)
        .await?;
    assert_eq!(pending.concat(), ids(&[11, 10, 8, 7, 5, 4, 2, 1]));
    assert_eq!(pending[0].len(), 3, "the first page is full: {pending:?}");
    let cancelled = stack
        .all_orders("alice", Some(OrderStatus::Cancelled), 10)
        .await?;
    assert_eq!(cancelled, [ids(&[9, 6, 3, 0])]);
    assert_eq!(
        stack.all_orders("bob", None, 50).await?.concat(),
        ["kb8", "kb4", "kb0"].map(|key| order_of("bob", key))
    );

    let first = stack
        .store
        .list_orders(&OrderQuery {
            user_id: UserId::new("alice"),
            status: None,
            limit: 2,
            cursor: None,
        })
        .await?;
    let alice_cursor = first.next_cursor.expect("more pages");
    let foreign = OrderQuery {
        user_id: UserId::new("bob"),
        status: None,
        limit: 2,
        cursor: Some(alice_cursor),
    };
    assert!(matches!(
        stack.store.list_orders(&foreign).await,
        Err(StoreError::InvalidCursor)
    ));
    // A second product, so that a one-item page of products has a cursor to misuse.
    stack.product("b", 1).await?;
    let product_cursor = stack.store.list_products(1, None).await?.next_cursor;
    assert!(product_cursor.is_some());
    for bad in [Some("garbage!".to_owned()), product_cursor] {
        let query = OrderQuery {
            user_id: UserId::new("alice"),
            status: None,
            limit: 2,
            cursor: bad,
        };
        assert!(matches!(
            stack.store.list_orders(&query).await,
            Err(StoreError::InvalidCursor)
        ));
    }
    Ok(())
}

/// The id of `user`'s order placed with `key`, as the application derives it.
fn order_of(user: &str, key: &str) -> String {
    OrderId::for_key(&UserId::new(user), &IdempotencyKey::parse(key).unwrap()).to_string()
}
