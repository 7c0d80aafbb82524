//! Payment settlement and cancellation: every move is conditional on the stored status, a move
//! from the wrong one changes nothing, and stock comes back exactly once (FAILED, CANCELLED);
//! the reconciler's query of unsettled orders placed from holds.

use shared::domain::OrderStatus;
use shared::ports::{HoldStore, OrderReader, OrderSettler, StockReserver, UnsettledOrders};

use super::*;

contract! {
    settlement_moves_are_conditional_and_failed_restores_stock_once,
    a_paid_order_keeps_its_stock_and_moves_no_further,
    cancel_restores_stock_exactly_once,
    unsettled_orders_are_found_by_status_and_age,
}

/// A product of 10 units and alice's PENDING order of 4 of them, placed at `at(0)`.
async fn four_of_ten_placed<S: ProductCatalog + StockReserver>(
    store: &S,
) -> anyhow::Result<(ProductId, Order)> {
    let p = product(store, "p", 10, 1).await?;
    let placed = order("alice", "k1", &[(&p, 4)], at(0));
    store.place_order(&placed, "fp").await?;
    Ok((p, placed))
}

async fn settlement_moves_are_conditional_and_failed_restores_stock_once<S>(
    store: &S,
) -> anyhow::Result<()>
where
    S: ProductCatalog + StockReserver + OrderSettler + OrderReader,
{
    let (p, placed) = four_of_ten_placed(store).await?;

    let processing = placed.transitioned(OrderStatus::Processing, at(1)).unwrap();
    assert!(store.start_processing(&processing).await?);
    assert!(
        !store.start_processing(&processing).await?,
        "a second claim changes nothing"
    );
    assert!(
        !store
            .cancel_order(&placed.cancelled(at(1)).unwrap())
            .await?,
        "a claimed order cannot be cancelled"
    );

    let failed = processing.transitioned(OrderStatus::Failed, at(2)).unwrap();
    assert!(store.settle(&failed, OrderStatus::Processing).await?);
    assert!(
        !store.settle(&failed, OrderStatus::Processing).await?,
        "a duplicate settle changes nothing"
    );
    let paid = processing.transitioned(OrderStatus::Paid, at(2)).unwrap();
    assert!(
        !store.settle(&paid, OrderStatus::Processing).await?,
        "the loser of the race writes nothing"
    );

    assert_eq!(stock(store, &p).await?, 10, "4 units back exactly once");
    assert_eq!(store.get_order(&placed.id).await?, Some(failed));
    Ok(())
}

async fn a_paid_order_keeps_its_stock_and_moves_no_further<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + StockReserver + OrderSettler + OrderReader,
{
    let (p, placed) = four_of_ten_placed(store).await?;
    let processing = placed.transitioned(OrderStatus::Processing, at(1)).unwrap();
    let paid = processing.transitioned(OrderStatus::Paid, at(2)).unwrap();

    assert!(
        !store.settle(&paid, OrderStatus::Processing).await?,
        "not PROCESSING yet"
    );
    assert_eq!(store.get_order(&placed.id).await?, Some(placed.clone()));
    assert!(store.start_processing(&processing).await?);
    assert!(
        !store.settle(&paid, OrderStatus::Pending).await?,
        "no longer PENDING"
    );
    assert!(store.settle(&paid, OrderStatus::Processing).await?);

    let failed = processing.transitioned(OrderStatus::Failed, at(3)).unwrap();
    assert!(!store.settle(&failed, OrderStatus::Processing).await?);
    assert!(!store.start_processing(&processing).await?);
    assert!(
        !store
            .cancel_order(&placed.cancelled(at(3)).unwrap())
            .await?
    );
    assert_eq!(store.get_order(&placed.id).await?, Some(paid));
    assert_eq!(stock(store, &p).await?, 6, "a paid order keeps its units");

    // A webhook may settle straight from PENDING.
    let direct = order("alice", "k2", &[(&p, 1)], at(4));
    store.place_order(&direct, "fp").await?;
    let paid_at_once = direct.transitioned(OrderStatus::Paid, at(5)).unwrap();
    assert!(store.settle(&paid_at_once, OrderStatus::Pending).await?);
    assert_eq!(store.get_order(&direct.id).await?, Some(paid_at_once));
    assert_eq!(stock(store, &p).await?, 5);
    Ok(())
}

async fn cancel_restores_stock_exactly_once<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + StockReserver + OrderReader,
{
    let a = product(store, "a", 10, 1).await?;
    let b = product(store, "b", 10, 1).await?;
    let placed = order("alice", "k1", &[(&a, 3), (&b, 1)], at(10));
    store.place_order(&placed, "fp").await?;
    let cancelled = placed.cancelled(at(20)).unwrap();

    assert!(store.cancel_order(&cancelled).await?);
    assert!(
        !store.cancel_order(&cancelled).await?,
        "a second cancel changes nothing"
    );

    assert_eq!((stock(store, &a).await?, stock(store, &b).await?), (10, 10));
    let stored = store.get_order(&placed.id).await?.context("the order")?;
    assert_eq!(stored, cancelled);
    assert_eq!(
        (stored.status, stored.cancelled_at),
        (OrderStatus::Cancelled, Some(at(20)))
    );
    let unknown = order("alice", "k9", &[(&a, 1)], at(10));
    assert!(!store.cancel_order(&unknown).await?);
    assert_eq!(stock(store, &a).await?, 10);
    Ok(())
}

async fn unsettled_orders_are_found_by_status_and_age<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + StockReserver + HoldStore + OrderSettler + OrderReader + UnsettledOrders,
{
    let p = product(store, "p", 100, 1).await?;
    for (key, placed_at) in [("old-1", 0), ("old-2", 10), ("new", 100)] {
        place_from_hold(store, &order("alice", key, &[(&p, 1)], at(placed_at))).await?;
    }
    // An order from items is not the reconciler's: its take's mark stands for it.
    let taken = store
        .place_order(&order("alice", "items", &[(&p, 1)], at(0)), "fp")
        .await?;
    store.release_taken(&taken).await;
    let claimed = store
        .get_order(&order_id("alice", "old-2"))
        .await?
        .context("old-2")?;
    let processing = claimed
        .transitioned(OrderStatus::Processing, at(20))
        .unwrap();
    assert!(store.start_processing(&processing).await?);

    let ids = |orders: Vec<Order>| orders.into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.unsettled(OrderStatus::Pending, at(50), 10).await?),
        [order_id("alice", "old-1")]
    );
    assert_eq!(
        ids(store.unsettled(OrderStatus::Processing, at(50), 10).await?),
        [order_id("alice", "old-2")]
    );
    assert_eq!(
        ids(store.unsettled(OrderStatus::Processing, at(15), 10).await?),
        [],
        "age counts from the last change, not from placement"
    );
    Ok(())
}
