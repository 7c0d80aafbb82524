//! Listings page by page with the opaque cursor: a user's orders newest first (with the status
//! filter), and every live product exactly once; a cursor not handed out for the listing is
//! refused.

use std::collections::HashSet;

use shared::domain::OrderStatus;
use shared::ports::{OrderQuery, OrderReader, StockReserver, StoreError};

use super::*;

contract! {
    list_orders_is_newest_first_filtered_and_paged_by_user,
    list_products_pages_without_gaps_and_skips_deleted,
    a_forged_product_cursor_is_refused,
}

/// The ids of every page of `user`'s orders, following cursors; fails on an endless chain.
async fn order_pages<S: OrderReader>(
    store: &S,
    user: &str,
    status: Option<OrderStatus>,
    limit: u32,
) -> anyhow::Result<Vec<Vec<OrderId>>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let query = OrderQuery {
            user_id: UserId::new(user),
            status,
            limit,
            cursor,
        };
        let page = store.list_orders(&query).await?;
        anyhow::ensure!(page.items.len() <= limit as usize, "page over the limit");
        pages.push(page.items.into_iter().map(|o| o.id).collect());
        anyhow::ensure!(pages.len() < 50, "cursor chain does not end");
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(pages),
        }
    }
}

async fn list_orders_is_newest_first_filtered_and_paged_by_user<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + StockReserver + OrderReader,
{
    let a = product(store, "a", 1000, 1).await?;
    for i in 0..12 {
        let placed = order("alice", &format!("ka{i}"), &[(&a, 1)], at(100 + i));
        store.place_order(&placed, "fp").await?;
        if i % 4 == 0 {
            let bobs = order("bob", &format!("kb{i}"), &[(&a, 1)], at(100 + i));
            store.place_order(&bobs, "fp").await?;
        }
        if i % 3 == 0 {
            assert!(
                store
                    .cancel_order(&placed.cancelled(at(200)).unwrap())
                    .await?
            );
        }
    }
    let ids = |range: &[i64]| {
        range
            .iter()
            .map(|i| order_id("alice", &format!("ka{i}")))
            .collect::<Vec<_>>()
    };

    let pages = order_pages(store, "alice", None, 5).await?;
    assert_eq!(pages.concat(), ids(&[11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]));
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5, 2]);

    let pending = order_pages(store, "alice", Some(OrderStatus::Pending), 3).await?;
    assert_eq!(pending.concat(), ids(&[11, 10, 8, 7, 5, 4, 2, 1]));
    assert_eq!(pending[0].len(), 3, "the first page is full: {pending:?}");
    let cancelled = order_pages(store, "alice", Some(OrderStatus::Cancelled), 10).await?;
    assert_eq!(cancelled, [ids(&[9, 6, 3, 0])]);
    assert_eq!(
        order_pages(store, "bob", None, 50).await?.concat(),
        ["kb8", "kb4", "kb0"].map(|key| order_id("bob", key))
    );
    assert_eq!(order_pages(store, "carol", None, 5).await?, [vec![]]);

    let first = store
        .list_orders(&OrderQuery {
            user_id: UserId::new("alice"),
            status: None,
            limit: 2,
            cursor: None,
        })
        .await?;
    let alice_cursor = first.next_cursor.context("more pages")?;
    let foreign = OrderQuery {
        user_id: UserId::new("bob"),
        status: None,
        limit: 2,
        cursor: Some(alice_cursor),
    };
    assert!(matches!(
        store.list_orders(&foreign).await,
        Err(StoreError::InvalidCursor)
    ));
    // A second product, so that a one-item page of products has a cursor to misuse.
    product(store, "b", 1, 1).await?;
    let product_cursor = store.list_products(1, None).await?.next_cursor;
    assert!(product_cursor.is_some());
    for bad in [Some("garbage!".to_owned()), product_cursor] {
        let query = OrderQuery {
            user_id: UserId::new("alice"),
            status: None,
            limit: 2,
            cursor: bad,
        };
        assert!(matches!(
            store.list_orders(&query).await,
            Err(StoreError::InvalidCursor)
        ));
    }
    Ok(())
}

async fn list_products_pages_without_gaps_and_skips_deleted<S: ProductCatalog>(
    store: &S,
) -> anyhow::Result<()> {
    let mut live = HashSet::new();
    for i in 0..9 {
        // Every third product sharded: its shard items are never listed as products.
        let id = product(store, &format!("p{i}"), 1, if i % 3 == 2 { 4 } else { 1 }).await?;
        if i % 3 == 1 {
            assert!(store.delete_product(&id, at(1)).await?);
        } else {
            live.insert(id);
        }
    }

    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..20 {
        let page = store.list_products(2, cursor).await?;
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
    Ok(())
}

async fn a_forged_product_cursor_is_refused<S: ProductCatalog>(store: &S) -> anyhow::Result<()> {
    product(store, "a", 1, 1).await?;

    let result = store.list_products(2, Some("%%%".into())).await;

    assert!(
        matches!(result, Err(StoreError::InvalidCursor)),
        "{result:?}"
    );
    Ok(())
}
