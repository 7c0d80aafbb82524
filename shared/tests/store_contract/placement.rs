//! Placing orders from items: all or nothing over several products and over stock shards, the
//! idempotency key's record, and a duplicate key reported before stock.

use shared::domain::ShardSplit;
use shared::ports::{
    IdempotencyStore, OrderReader, PlaceOrderError, ProductCatalog, StockReserver,
};

use super::*;

contract! {
    an_order_takes_stock_from_every_product_and_is_its_keys_record,
    insufficient_stock_names_the_product_and_writes_nothing,
    duplicate_key_wins_over_stock_and_writes_nothing,
    a_sharded_product_gives_units_from_the_planned_shards_only,
    an_orders_take_is_the_products_last_change,
}

async fn an_order_takes_stock_from_every_product_and_is_its_keys_record<S>(
    store: &S,
) -> anyhow::Result<()>
where
    S: ProductCatalog + StockReserver + OrderReader + IdempotencyStore,
{
    let a = product(store, "a", 10, 1).await?;
    let b = product(store, "b", 3, 1).await?;
    let placed = order("alice", "k1", &[(&a, 4), (&b, 3)], at(10));

    store.place_order(&placed, "fp-1").await?;

    assert_eq!((stock(store, &a).await?, stock(store, &b).await?), (6, 0));
    assert_eq!(store.get_order(&placed.id).await?, Some(placed.clone()));
    assert_eq!(
        record(store, "alice", "k1").await?,
        Some((placed, Some("fp-1".into())))
    );
    assert_eq!(
        record(store, "bob", "k1").await?,
        None,
        "keys are scoped to their user"
    );
    assert_eq!(record(store, "alice", "k2").await?, None);
    Ok(())
}

async fn insufficient_stock_names_the_product_and_writes_nothing<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + StockReserver + OrderReader + IdempotencyStore,
{
    let a = product(store, "a", 10, 1).await?;
    let b = product(store, "b", 1, 1).await?;
    let placed = order("alice", "k1", &[(&a, 2), (&b, 5)], at(10));

    let result = store.place_order(&placed, "fp").await;

    assert!(
        matches!(&result, Err(PlaceOrderError::InsufficientStock { product_id }) if *product_id == b),
        "{result:?}"
    );
    assert_eq!((stock(store, &a).await?, stock(store, &b).await?), (10, 1));
    assert_eq!(store.get_order(&placed.id).await?, None);
    assert_eq!(record(store, "alice", "k1").await?, None);

    let ghost = ProductId::new("no-such-product");
    let result = store
        .place_order(&order("alice", "k2", &[(&a, 1), (&ghost, 1)], at(11)), "fp")
        .await;
    assert!(
        matches!(&result, Err(PlaceOrderError::InsufficientStock { product_id }) if *product_id == ghost),
        "{result:?}"
    );
    assert_eq!(stock(store, &a).await?, 10);
    Ok(())
}

async fn duplicate_key_wins_over_stock_and_writes_nothing<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + StockReserver + OrderReader + IdempotencyStore,
{
    let a = product(store, "a", 5, 1).await?;
    let first = order("alice", "k1", &[(&a, 2)], at(10));
    store.place_order(&first, "fp-1").await?;

    // Same user and key, and more units than are left: the key must be what is reported.
    let second = order("alice", "k1", &[(&a, 4)], at(11));
    let result = store.place_order(&second, "fp-2").await;

    assert!(
        matches!(result, Err(PlaceOrderError::DuplicateKey)),
        "{result:?}"
    );
    assert_eq!(stock(store, &a).await?, 3);
    assert_eq!(
        store.get_order(&second.id).await?,
        Some(first.clone()),
        "the key's order is the first one"
    );
    assert_eq!(
        record(store, "alice", "k1").await?,
        Some((first, Some("fp-1".into())))
    );
    let again = order("alice", "k1", &[(&a, 1)], at(12));
    assert!(matches!(
        store.place_order(&again, "fp-1").await,
        Err(PlaceOrderError::DuplicateKey)
    ));
    assert_eq!(stock(store, &a).await?, 3);
    Ok(())
}

async fn a_sharded_product_gives_units_from_the_planned_shards_only<S>(
    store: &S,
) -> anyhow::Result<()>
where
    S: ProductCatalog + StockReserver + OrderReader,
{
    let hot = product(store, "hot", 10, 4).await?;
    let plain = product(store, "plain", 5, 1).await?;
    assert_eq!(
        store.shard_stocks(&hot, true).await?,
        Some(vec![3, 3, 2, 2])
    );

    let first = sharded_order(
        "alice",
        "k1",
        &[
            (&hot, 2, ShardSplit::single(2, 2)),
            (&plain, 1, ShardSplit::default()),
        ],
        at(1),
    );
    store.place_order(&first, "fp").await?;
    assert_eq!(
        store.shard_stocks(&hot, true).await?,
        Some(vec![3, 3, 0, 2])
    );
    assert_eq!(
        (stock(store, &hot).await?, stock(store, &plain).await?),
        (8, 4)
    );

    // Shard 2 is empty though the product has 8 units: refused, and the other line untouched.
    let short = sharded_order(
        "alice",
        "k2",
        &[
            (&plain, 1, ShardSplit::default()),
            (&hot, 1, ShardSplit::single(2, 1)),
        ],
        at(2),
    );
    let result = store.place_order(&short, "fp").await;
    assert!(
        matches!(&result, Err(PlaceOrderError::InsufficientStock { product_id }) if *product_id == hot),
        "{result:?}"
    );
    assert_eq!(
        store.shard_stocks(&hot, true).await?,
        Some(vec![3, 3, 0, 2])
    );
    assert_eq!(stock(store, &plain).await?, 4);
    assert_eq!(store.get_order(&short.id).await?, None);

    // One line over two shards.
    let split = ShardSplit::from_parts(vec![(0, 3), (3, 2)]);
    let spread = sharded_order("alice", "k3", &[(&hot, 5, split)], at(3));
    store.place_order(&spread, "fp").await?;
    assert_eq!(
        store.shard_stocks(&hot, true).await?,
        Some(vec![0, 3, 0, 0])
    );

    // A cancel gives the units back to the shards they came from.
    assert!(store.cancel_order(&first.cancelled(at(4)).unwrap()).await?);
    assert_eq!(
        store.shard_stocks(&hot, true).await?,
        Some(vec![0, 3, 2, 0])
    );
    assert_eq!(
        (stock(store, &hot).await?, stock(store, &plain).await?),
        (5, 5)
    );
    assert_eq!(
        store.shard_stocks(&ProductId::new("nope"), true).await?,
        None
    );
    Ok(())
}

async fn an_orders_take_is_the_products_last_change<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + StockReserver,
{
    let a = product(store, "a", 10, 1).await?;

    store
        .place_order(&order("alice", "k1", &[(&a, 4)], at(10)), "fp")
        .await?;

    let now = store.get_product(&a).await?.context("product a")?;
    assert_eq!(
        (now.stock, now.created_at, now.updated_at),
        (6, at(0), at(10))
    );
    Ok(())
}
