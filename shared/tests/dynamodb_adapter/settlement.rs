//! Payment settlement and WebSocket connections: conditional status moves, stock back exactly
//! once on FAILED, the reconciler's query, and connections by user.

use super::*;
use shared::ports::{Connection, ConnectionStore, OrderSettler, UnsettledOrders};

#[tokio::test]
async fn settlement_moves_are_conditional_and_failed_restores_stock_once() -> anyhow::Result<()> {
    let stack = start().await?;
    let product = stack.product("p", 10).await?;
    let placed = order("o1", "alice", "k1", &[(&product, 4)], at(0));
    stack.store.place_order(&placed, "fp").await?;

    let processing = placed.transitioned(OrderStatus::Processing, at(1)).unwrap();
    assert!(stack.store.start_processing(&processing).await?);
    assert!(
        !stack.store.start_processing(&processing).await?,
        "a second claim changes nothing"
    );
    assert!(
        !stack
            .store
            .cancel_order(&placed.cancelled(at(1)).unwrap())
            .await?,
        "a claimed order cannot be cancelled"
    );

    let failed = processing.transitioned(OrderStatus::Failed, at(2)).unwrap();
    assert!(stack.store.settle(&failed, OrderStatus::Processing).await?);
    assert!(
        !stack.store.settle(&failed, OrderStatus::Processing).await?,
        "a duplicate settle changes nothing"
    );
    let paid = processing.transitioned(OrderStatus::Paid, at(2)).unwrap();
    assert!(
        !stack.store.settle(&paid, OrderStatus::Processing).await?,
        "the loser of the race writes nothing"
    );

    assert_eq!(
        stack.raw_stock(&product).await?,
        Some(10),
        "4 units back exactly once"
    );
    let stored = stack.store.get_order(&placed.id).await?.unwrap();
    assert_eq!(
        (stored.status, stored.updated_at),
        (OrderStatus::Failed, at(2))
    );
    Ok(())
}

#[tokio::test]
async fn unsettled_orders_are_found_by_status_and_age() -> anyhow::Result<()> {
    let stack = start().await?;
    let product = stack.product("p", 100).await?;
    for (id, placed_at) in [("old-1", 0), ("old-2", 10), ("new", 100)] {
        stack
            .store
            .place_order(&order(id, "alice", id, &[(&product, 1)], at(placed_at)), id)
            .await?;
    }
    let claimed = stack
        .store
        .get_order(&OrderId::new("old-2"))
        .await?
        .unwrap();
    stack
        .store
        .start_processing(
            &claimed
                .transitioned(OrderStatus::Processing, at(20))
                .unwrap(),
        )
        .await?;

    let pending = stack
        .store
        .unsettled(OrderStatus::Pending, at(50), 10)
        .await?;
    let processing = stack
        .store
        .unsettled(OrderStatus::Processing, at(50), 10)
        .await?;
    let none_yet = stack
        .store
        .unsettled(OrderStatus::Processing, at(15), 10)
        .await?;

    assert_eq!(
        pending.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["old-1"]
    );
    assert_eq!(
        processing.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["old-2"]
    );
    assert!(
        none_yet.is_empty(),
        "age counts from the last change, not from placement"
    );
    Ok(())
}

#[tokio::test]
async fn connections_are_listed_by_user_and_forgotten_on_delete() -> anyhow::Result<()> {
    let stack = start().await?;
    let connect = |id: &str, user: &str| Connection {
        connection_id: id.into(),
        user_id: UserId::new(user),
        connected_at: at(0),
    };
    for (id, user) in [("c1", "alice"), ("c2", "alice"), ("c3", "bob")] {
        stack
            .store
            .save_connection(&connect(id, user), Duration::from_secs(7200))
            .await?;
    }

    let mut alices = stack.store.connections_of(&UserId::new("alice")).await?;
    alices.sort();
    stack.store.delete_connection("c1").await?;

    assert_eq!(alices, ["c1", "c2"]);
    assert_eq!(
        stack.store.connections_of(&UserId::new("alice")).await?,
        ["c2"]
    );
    assert_eq!(
        stack.store.connections_of(&UserId::new("bob")).await?,
        ["c3"]
    );
    Ok(())
}
