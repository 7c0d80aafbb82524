//! Stock holds: placed and read back, checked out exactly once, expired once with their units
//! back, the sweeper's listing, and the per-user limit of ACTIVE holds.

use std::time::Duration;

use shared::domain::{Hold, HoldId, HoldStatus, Quantity};
use shared::ports::{
    HoldStore, IdempotencyStore, OrderReader, PlaceHoldError, PlaceOrderError, ProductCatalog,
    StockReserver,
};

use super::*;

contract! {
    a_hold_takes_its_units_and_is_read_back,
    a_hold_is_checked_out_exactly_once,
    a_checkout_by_another_user_or_after_the_window_is_refused,
    a_hold_of_a_deleted_product_cannot_be_checked_out,
    an_expired_hold_gives_its_units_back_once,
    expired_holds_are_listed_oldest_end_first,
    active_holds_per_user_and_product_are_limited,
    a_retried_checkout_is_a_duplicate_key,
}

/// A hold of `units` of `product` for `user`, taken at `at(start)` for `ttl` seconds.
fn hold(user: &str, product: &ProductId, units: i64, start: i64, ttl: u64) -> Hold {
    Hold::place(
        UserId::new(user),
        product.clone(),
        Quantity::parse(units).unwrap(),
        price(),
        at(start),
        Duration::from_secs(ttl),
    )
}

/// The order `user` places with `key` from `hold` at `at(now)`, and the hold after it.
fn checkout(hold: &Hold, user: &str, key: &str, now: i64) -> (Order, Hold) {
    let placed = order(
        user,
        key,
        &[(&hold.product_id, i64::from(hold.quantity.get()))],
        at(now),
    );
    let consumed = hold.consumed(placed.id.clone(), at(now));
    (placed, consumed)
}

async fn a_hold_takes_its_units_and_is_read_back<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + HoldStore,
{
    let p = product(store, "p", 10, 1).await?;
    let held = hold("alice", &p, 3, 0, 60);

    store.place_hold(&held, 2).await?;

    assert_eq!(stock(store, &p).await?, 7);
    assert_eq!(store.get_hold(&held.id).await?, Some(held.clone()));
    assert_eq!(store.get_hold(&HoldId::generate()).await?, None);
    let too_many = hold("bob", &p, 8, 0, 60);
    let result = store.place_hold(&too_many, 2).await;
    assert!(
        matches!(result, Err(PlaceHoldError::InsufficientStock)),
        "{result:?}"
    );
    assert_eq!(stock(store, &p).await?, 7);
    assert_eq!(store.get_hold(&too_many.id).await?, None);
    Ok(())
}

async fn a_hold_is_checked_out_exactly_once<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + HoldStore + StockReserver + OrderReader + IdempotencyStore,
{
    let p = product(store, "p", 10, 1).await?;
    let held = hold("alice", &p, 3, 0, 60);
    store.place_hold(&held, 2).await?;
    let (placed, consumed) = checkout(&held, "alice", "k1", 10);

    store
        .place_order_from_hold(&placed, "fp-1", &consumed, at(10))
        .await?;

    assert_eq!(store.get_hold(&held.id).await?, Some(consumed.clone()));
    assert_eq!(store.get_order(&placed.id).await?, Some(placed.clone()));
    assert_eq!(stock(store, &p).await?, 7, "the hold had taken the units");
    assert_eq!(
        record(store, "alice", "k1").await?,
        Some((placed.clone(), Some("fp-1".into())))
    );

    let (again, consumed_again) = checkout(&held, "alice", "k2", 11);
    let result = store
        .place_order_from_hold(&again, "fp-2", &consumed_again, at(11))
        .await;
    assert!(
        matches!(result, Err(PlaceOrderError::HoldNotActive)),
        "{result:?}"
    );
    assert_eq!(store.get_order(&again.id).await?, None);
    assert!(
        !store.expire_hold(&held.expired(at(100))).await?,
        "a consumed hold never expires"
    );
    assert_eq!(store.expired_holds(at(100), 10).await?, []);
    assert_eq!(stock(store, &p).await?, 7);
    assert_eq!(store.get_hold(&held.id).await?, Some(consumed));
    Ok(())
}

async fn a_checkout_by_another_user_or_after_the_window_is_refused<S>(
    store: &S,
) -> anyhow::Result<()>
where
    S: ProductCatalog + HoldStore + StockReserver + OrderReader,
{
    let p = product(store, "p", 10, 1).await?;
    let held = hold("alice", &p, 3, 0, 60);
    store.place_hold(&held, 2).await?;

    let (bobs, bobs_consumed) = checkout(&held, "bob", "k1", 10);
    let by_bob = store
        .place_order_from_hold(&bobs, "fp", &bobs_consumed, at(10))
        .await;
    // The end of the window is already too late.
    let (late, late_consumed) = checkout(&held, "alice", "k1", 60);
    let too_late = store
        .place_order_from_hold(&late, "fp", &late_consumed, at(60))
        .await;

    assert!(
        matches!(by_bob, Err(PlaceOrderError::HoldNotActive)),
        "{by_bob:?}"
    );
    assert!(
        matches!(too_late, Err(PlaceOrderError::HoldNotActive)),
        "{too_late:?}"
    );
    assert_eq!(store.get_order(&bobs.id).await?, None);
    assert_eq!(store.get_order(&late.id).await?, None);
    assert_eq!(store.get_hold(&held.id).await?, Some(held));
    assert_eq!(stock(store, &p).await?, 7);
    Ok(())
}

async fn a_hold_of_a_deleted_product_cannot_be_checked_out<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + HoldStore + StockReserver + OrderReader,
{
    let p = product(store, "p", 10, 1).await?;
    let held = hold("alice", &p, 3, 0, 60);
    store.place_hold(&held, 2).await?;
    assert!(store.delete_product(&p, at(5)).await?);
    let (placed, consumed) = checkout(&held, "alice", "k1", 10);

    let result = store
        .place_order_from_hold(&placed, "fp", &consumed, at(10))
        .await;

    assert!(
        matches!(&result, Err(PlaceOrderError::ProductGone { product_id }) if *product_id == p),
        "{result:?}"
    );
    assert_eq!(store.get_order(&placed.id).await?, None);
    assert_eq!(store.get_hold(&held.id).await?, Some(held));
    Ok(())
}

async fn an_expired_hold_gives_its_units_back_once<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + HoldStore + StockReserver,
{
    let p = product(store, "p", 10, 1).await?;
    let held = hold("alice", &p, 3, 0, 60);
    store.place_hold(&held, 2).await?;

    assert_eq!(store.expired_holds(at(59), 10).await?, []);
    assert!(
        !store.expire_hold(&held.expired(at(59))).await?,
        "its time is not up at 59 s"
    );
    assert_eq!(stock(store, &p).await?, 7);
    assert_eq!(
        store.expired_holds(at(60), 10).await?,
        std::slice::from_ref(&held)
    );

    let expired = held.expired(at(60));
    assert!(store.expire_hold(&expired).await?);
    assert!(
        !store.expire_hold(&held.expired(at(61))).await?,
        "a second sweep changes nothing"
    );

    assert_eq!(stock(store, &p).await?, 10, "3 units back exactly once");
    assert_eq!(store.get_hold(&held.id).await?, Some(expired));
    assert_eq!(store.expired_holds(at(100), 10).await?, []);
    let (placed, consumed) = checkout(&held, "alice", "k1", 30);
    let result = store
        .place_order_from_hold(&placed, "fp", &consumed, at(30))
        .await;
    assert!(
        matches!(result, Err(PlaceOrderError::HoldNotActive)),
        "{result:?}"
    );
    Ok(())
}

async fn expired_holds_are_listed_oldest_end_first<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + HoldStore,
{
    let p = product(store, "p", 100, 1).await?;
    let mut holds = Vec::new();
    for (i, ttl) in [30, 10, 50, 20, 40].into_iter().enumerate() {
        let held = hold(&format!("user{i}"), &p, 1, 0, ttl);
        store.place_hold(&held, 2).await?;
        holds.push(held);
    }
    let ends = |listed: &[Hold]| listed.iter().map(|h| h.expires_at).collect::<Vec<_>>();

    let due = store.expired_holds(at(35), 10).await?;
    assert_eq!(ends(&due), [at(10), at(20), at(30)]);
    assert!(due.iter().all(|h| h.status == HoldStatus::Active));
    assert_eq!(
        ends(&store.expired_holds(at(100), 10).await?),
        [at(10), at(20), at(30), at(40), at(50)]
    );
    assert_eq!(store.expired_holds(at(9), 10).await?, []);
    Ok(())
}

async fn active_holds_per_user_and_product_are_limited<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + HoldStore + StockReserver,
{
    let p = product(store, "p", 20, 1).await?;
    let q = product(store, "q", 20, 1).await?;
    let first = hold("alice", &p, 2, 0, 60);
    let second = hold("alice", &p, 2, 0, 60);
    store.place_hold(&first, 2).await?;
    store.place_hold(&second, 2).await?;

    let third = hold("alice", &p, 2, 1, 60);
    let refused = store.place_hold(&third, 2).await;
    assert!(
        matches!(refused, Err(PlaceHoldError::LimitReached)),
        "{refused:?}"
    );
    assert_eq!(stock(store, &p).await?, 16, "the refused hold took nothing");
    assert_eq!(store.get_hold(&third.id).await?, None);
    store.place_hold(&hold("bob", &p, 2, 1, 60), 2).await?;
    store.place_hold(&hold("alice", &q, 2, 1, 60), 2).await?;
    assert_eq!((stock(store, &p).await?, stock(store, &q).await?), (14, 18));

    // An expiry and a checkout each free a place.
    assert!(store.expire_hold(&first.expired(at(60))).await?);
    store.place_hold(&hold("alice", &p, 2, 61, 60), 2).await?;
    let (placed, consumed) = checkout(&second, "alice", "k1", 30);
    store
        .place_order_from_hold(&placed, "fp", &consumed, at(30))
        .await?;
    store.place_hold(&hold("alice", &p, 2, 62, 60), 2).await?;
    let full = store.place_hold(&hold("alice", &p, 2, 63, 60), 2).await;
    assert!(
        matches!(full, Err(PlaceHoldError::LimitReached)),
        "{full:?}"
    );
    assert_eq!(stock(store, &p).await?, 12);
    Ok(())
}

async fn a_retried_checkout_is_a_duplicate_key<S>(store: &S) -> anyhow::Result<()>
where
    S: ProductCatalog + HoldStore + StockReserver + OrderReader,
{
    let p = product(store, "p", 10, 1).await?;
    let held = hold("alice", &p, 3, 0, 60);
    store.place_hold(&held, 2).await?;
    let (placed, consumed) = checkout(&held, "alice", "k1", 10);
    store
        .place_order_from_hold(&placed, "fp", &consumed, at(10))
        .await?;

    // The same request again (a client's retry, or two racing): the key decides, so the caller
    // answers with the first order instead of a conflict.
    let retried = store
        .place_order_from_hold(&placed, "fp", &consumed, at(11))
        .await;

    assert!(
        matches!(retried, Err(PlaceOrderError::DuplicateKey)),
        "{retried:?}"
    );
    assert_eq!(store.get_order(&placed.id).await?, Some(placed));
    assert_eq!(stock(store, &p).await?, 7);
    Ok(())
}
