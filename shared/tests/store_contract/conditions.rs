//! Conditional writes outside placement: stock lock leases, webhook answers stored once with the
//! first pending outcome kept, and WebSocket connections by user.

use std::time::Duration;

use shared::domain::{OrderStatus, PaymentOutcome, StockShard};
use shared::ports::{
    Connection, ConnectionStore, PendingSettlement, StockLocks, WebhookRecord, WebhookStore,
};

use super::*;

contract! {
    a_lock_is_exclusive_until_its_lease_ends_and_only_its_owner_unlocks_it,
    a_webhook_answer_is_stored_once_and_the_first_pending_outcome_kept,
    connections_are_listed_by_user_and_forgotten_on_delete,
}

async fn a_lock_is_exclusive_until_its_lease_ends_and_only_its_owner_unlocks_it<S: StockLocks>(
    store: &S,
) -> anyhow::Result<()> {
    let p = StockShard::first(ProductId::new("p"));
    let lease = Duration::from_secs(5);

    assert!(store.try_lock(&p, "a", at(0), lease).await?);
    assert!(!store.try_lock(&p, "b", at(1), lease).await?, "held");
    assert!(
        !store.try_lock(&p, "b", at(5), lease).await?,
        "held until the end of its lease"
    );
    let other = StockShard::first(ProductId::new("other"));
    assert!(
        store.try_lock(&other, "b", at(1), lease).await?,
        "locks are per product"
    );
    assert!(
        store.try_lock(&p, "b", at(6), lease).await?,
        "expired lease taken over"
    );

    store.unlock(&p, "a").await?;
    assert!(
        !store.try_lock(&p, "c", at(7), lease).await?,
        "a stale owner's unlock left b's lock alone"
    );
    store.unlock(&p, "b").await?;
    assert!(
        store.try_lock(&p, "c", at(7), lease).await?,
        "free after its owner unlocked"
    );
    store
        .unlock(&StockShard::first(ProductId::new("never-locked")), "x")
        .await?;
    Ok(())
}

/// The answer to delivery `key` about alice's order `order_key`.
fn answer(key: &str, order_key: &str, status: Option<OrderStatus>) -> WebhookRecord {
    WebhookRecord {
        idempotency_key: key_of(key),
        fingerprint: format!("fp-{key}"),
        order_id: order_id("alice", order_key),
        order_status: status,
    }
}

/// The outcome of delivery `key` waiting for alice's order `order_key`.
fn waiting(key: &str, order_key: &str, outcome: PaymentOutcome) -> PendingSettlement {
    PendingSettlement {
        order_id: order_id("alice", order_key),
        outcome,
        idempotency_key: key_of(key),
    }
}

async fn a_webhook_answer_is_stored_once_and_the_first_pending_outcome_kept<S: WebhookStore>(
    store: &S,
) -> anyhow::Result<()> {
    let paid = answer("w1", "k1", Some(OrderStatus::Paid));
    assert_eq!(store.get_webhook(&key_of("w1")).await?, None);

    assert!(store.record_webhook(&paid, None).await?);
    let redelivered = WebhookRecord {
        fingerprint: "fp-other".into(),
        ..answer("w1", "k1", Some(OrderStatus::Failed))
    };
    assert!(
        !store.record_webhook(&redelivered, None).await?,
        "the key was taken first"
    );
    assert_eq!(store.get_webhook(&key_of("w1")).await?, Some(paid));

    // Two deliveries before order k2 exists: the first outcome waits for it.
    let declined = PaymentOutcome::Declined {
        reason: "card declined".into(),
    };
    let first = waiting("w2", "k2", declined);
    let second = waiting("w3", "k2", PaymentOutcome::Approved);
    assert!(
        store
            .record_webhook(&answer("w2", "k2", None), Some(&first))
            .await?
    );
    assert!(
        store
            .record_webhook(&answer("w3", "k2", None), Some(&second))
            .await?
    );
    assert_eq!(
        store.pending_settlement(&order_id("alice", "k2")).await?,
        Some(first)
    );
    assert_eq!(
        store.get_webhook(&key_of("w3")).await?,
        Some(answer("w3", "k2", None))
    );

    // A taken key writes no pending outcome either.
    let refused = waiting("w2", "k3", PaymentOutcome::Approved);
    assert!(
        !store
            .record_webhook(&answer("w2", "k3", None), Some(&refused))
            .await?
    );
    assert_eq!(
        store.pending_settlement(&order_id("alice", "k3")).await?,
        None
    );
    assert_eq!(
        store.get_webhook(&key_of("w2")).await?,
        Some(answer("w2", "k2", None))
    );
    Ok(())
}

async fn connections_are_listed_by_user_and_forgotten_on_delete<S: ConnectionStore>(
    store: &S,
) -> anyhow::Result<()> {
    let connect = |id: &str, user: &str| Connection {
        connection_id: id.into(),
        user_id: UserId::new(user),
        connected_at: at(0),
    };
    for (id, user) in [("c1", "alice"), ("c2", "alice"), ("c3", "bob")] {
        store
            .save_connection(&connect(id, user), Duration::from_secs(7200))
            .await?;
    }
    // The port promises no order.
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };

    let alices = sorted(store.connections_of(&UserId::new("alice")).await?);
    store.delete_connection("c1").await?;
    store.delete_connection("never-connected").await?;

    assert_eq!(alices, ["c1", "c2"]);
    assert_eq!(store.connections_of(&UserId::new("alice")).await?, ["c2"]);
    assert_eq!(store.connections_of(&UserId::new("bob")).await?, ["c3"]);
    assert_eq!(
        store.connections_of(&UserId::new("carol")).await?,
        Vec::<String>::new()
    );
    Ok(())
}
