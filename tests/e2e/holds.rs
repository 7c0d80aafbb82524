//! Stock holds through the real stack: a hold takes its units at once, an order from it takes
//! none again, a hold is used once, and an expired one gives its units back exactly once, even
//! when the sweeper and a checkout race.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use localstack::StackOptions;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::domain::OrderStatus;

use crate::both_lock_modes;
use crate::support::{TestStack, derived_order_id, spawn, spawn_pipeline, spawn_with};

fn timestamp(value: &Value, field: &str) -> DateTime<Utc> {
    let text = value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is a string: {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{field} {text:?} is RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// Sleeps until `at` by this machine's clock, which the stack shares.
async fn sleep_until(at: DateTime<Utc>) {
    tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await;
}

/// Polls a hold until it is no longer ACTIVE or `within` passes; the last hold read.
async fn hold_when_settled(stack: &TestStack, user: &str, id: &str, within: Duration) -> Value {
    let token = stack.token(user);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let hold = stack.read_hold_data(&token, id).await;
        if hold["status"] != "ACTIVE" || tokio::time::Instant::now() > deadline {
            return hold;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A short checkout window and a fast sweeper.
fn fast_expiry(options: &mut StackOptions) {
    options.config.hold_ttl = Duration::from_secs(2);
    options.local.hold_sweep_interval = Duration::from_millis(200);
}

/// A hold lowers stock at once; its order does not lower it again; it is used once; another
/// user can neither read it nor check it out.
async fn a_hold_takes_stock_once_and_is_checked_out_once(locks: bool) {
    let stack = spawn(locks).await;
    let product = stack.product("4.50", 10).await;

    let held = stack.hold("alice", &product, 3).await;

    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let hold = held.body["data"].clone();
    let hold_id = hold["hold_id"].as_str().expect("a hold_id").to_owned();
    assert_eq!(hold["status"], "ACTIVE", "{hold}");
    assert_eq!(hold["user_id"], "alice", "{hold}");
    assert_eq!(hold["product_id"], product.as_str(), "{hold}");
    assert_eq!(hold["quantity"], 3, "{hold}");
    assert_eq!(hold["unit_price"], "4.50", "{hold}");
    assert_eq!(hold["order_id"], Value::Null, "{hold}");
    let window = timestamp(&hold, "expires_at") - timestamp(&hold, "created_at");
    assert!(
        (window - chrono::Duration::seconds(120))
            .num_milliseconds()
            .abs()
            <= 1000,
        "the default HOLD_TTL_SECONDS is 120: {hold}"
    );
    assert_eq!(
        stack.stock(&product).await,
        7,
        "a hold takes its 3 units at once"
    );

    let by_owner = stack.read_hold(&stack.token("alice"), &hold_id).await;
    let by_admin = stack.read_hold(&stack.admin_token(), &hold_id).await;
    let by_bob = stack.read_hold(&stack.token("bob"), &hold_id).await;
    let bob_checkout = stack.order_from_hold("bob", "steal", &hold_id).await;

    assert_eq!(by_owner.status, StatusCode::OK, "{}", by_owner.body);
    assert_eq!(by_owner.body["data"]["hold_id"], hold_id.as_str());
    assert_eq!(by_owner.body["data"]["status"], "ACTIVE");
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.body);
    assert_eq!(by_admin.body["data"]["hold_id"], hold_id.as_str());
    assert_eq!(
        (by_bob.status, by_bob.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND"),
        "another user's hold is not leaked: {}",
        by_bob.body
    );
    assert_eq!(
        (bob_checkout.status, bob_checkout.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND"),
        "another user's hold cannot be checked out: {}",
        bob_checkout.body
    );
    assert!(stack.all_orders("bob").await.is_empty());
    assert_eq!(
        stack.read_hold(&stack.token("alice"), &hold_id).await.body["data"]["status"],
        "ACTIVE",
        "bob's attempt left the hold alone"
    );
    assert_eq!(stack.stock(&product).await, 7);

    let placed = stack.order_from_hold("alice", "from-hold", &hold_id).await;

    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order = placed.body["data"].clone();
    let order_id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order_id, derived_order_id("alice", "from-hold"), "{order}");
    assert_eq!(order["status"], "PENDING", "{order}");
    assert_eq!(order["total_amount"], "13.50", "{order}");
    let items = order["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one item, the hold's: {order}");
    assert_eq!(items[0]["product_id"], product.as_str(), "{order}");
    assert_eq!(items[0]["quantity"], 3, "{order}");
    assert_eq!(items[0]["unit_price"], "4.50", "{order}");
    assert_eq!(
        stack.stock(&product).await,
        7,
        "an order from a hold takes no stock again"
    );
    let consumed = stack.read_hold(&stack.token("alice"), &hold_id).await;
    assert_eq!(
        consumed.body["data"]["status"], "CONSUMED",
        "{}",
        consumed.body
    );
    assert_eq!(
        consumed.body["data"]["order_id"],
        order_id.as_str(),
        "{}",
        consumed.body
    );

    let replay = stack.order_from_hold("alice", "from-hold", &hold_id).await;
    let second = stack
        .order_from_hold("alice", "another-key", &hold_id)
        .await;

    assert_eq!(
        replay.status,
        StatusCode::OK,
        "the same key replays: {}",
        replay.body
    );
    assert_eq!(replay.body["data"]["id"], order_id.as_str());
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::CONFLICT, "HOLD_NOT_ACTIVE"),
        "a consumed hold is used once: {}",
        second.body
    );
    assert_eq!(stack.all_orders("alice").await.len(), 1, "one order");
    assert_eq!(stack.stock(&product).await, 7);

    // The order carries the hold's units now: cancelling it gives them back, once.
    let cancelled = stack
        .send(
            "POST",
            &format!("/orders/{order_id}/cancel"),
            Some(&stack.token("alice")),
            None,
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(stack.stock(&product).await, 10, "the 3 units are back once");
}
both_lock_modes!(a_hold_takes_stock_once_and_is_checked_out_once);

/// What `POST /holds` refuses, and that a refusal takes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hold_requests_are_checked_and_refusals_take_no_stock() {
    let stack = spawn(true).await;
    let product = stack.product("1.00", 10).await;

    let anonymous = stack
        .send(
            "POST",
            "/holds",
            None,
            Some(json!({"product_id": product, "quantity": 1})),
        )
        .await;
    let unknown = stack.hold("alice", "no-such-product", 1).await;
    let zero = stack.hold("alice", &product, 0).await;
    let negative = stack.hold("alice", &product, -2).await;
    let too_many = stack.hold("alice", &product, 11).await;
    let unknown_hold = stack
        .order_from_hold("alice", "ghost", "no-such-hold")
        .await;

    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.body
    );
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND"),
        "{}",
        unknown.body
    );
    for reply in [&zero, &negative] {
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            "{}",
            reply.body
        );
    }
    assert_eq!(
        (too_many.status, too_many.code()),
        (StatusCode::CONFLICT, "INSUFFICIENT_STOCK"),
        "{}",
        too_many.body
    );
    assert_eq!(
        (unknown_hold.status, unknown_hold.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND"),
        "{}",
        unknown_hold.body
    );
    assert_eq!(stack.stock(&product).await, 10, "no refusal took stock");
    assert!(stack.all_orders("alice").await.is_empty());
}

/// A hold nobody checks out is EXPIRED by the sweeper and its units come back exactly once,
/// while a hold checked out in time stays CONSUMED and its order keeps its units.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abandoned_hold_expires_and_gives_its_stock_back_once() {
    let stack = spawn_pipeline(true, |options| {
        fast_expiry(options);
        options.config.payments.success_rate = 1.0;
        options.config.payments.seed = Some(7);
    })
    .await;
    let product = stack.product("2.00", 10).await;
    let abandoned = stack.hold("alice", &product, 4).await;
    let bought = stack.hold("bob", &product, 2).await;
    assert_eq!(abandoned.status, StatusCode::CREATED, "{}", abandoned.body);
    assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.body);
    let abandoned_id = abandoned.body["data"]["hold_id"].as_str().unwrap();
    let bought_id = bought.body["data"]["hold_id"].as_str().unwrap();
    assert_eq!(stack.stock(&product).await, 4);
    let placed = stack.order_from_hold("bob", "buy", bought_id).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order_id = placed.body["data"]["id"].as_str().unwrap();

    let expired = hold_when_settled(&stack, "alice", abandoned_id, Duration::from_secs(10)).await;
    let paid = stack
        .order_status_when("bob", order_id, Duration::from_secs(15), |s| s == "PAID")
        .await;

    assert_eq!(
        expired["status"], "EXPIRED",
        "the sweeper expired it: {expired}"
    );
    assert_eq!(expired["order_id"], Value::Null, "{expired}");
    assert_eq!(paid, "PAID");
    assert_eq!(
        stack.stock(&product).await,
        8,
        "the abandoned hold's 4 units are back, the bought 2 are not"
    );
    // Several more sweeps must not give the units back again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stack.stock(&product).await, 8, "given back exactly once");
    let kept = stack.read_hold(&stack.token("bob"), bought_id).await;
    assert_eq!(kept.body["data"]["status"], "CONSUMED", "{}", kept.body);
    assert_eq!(kept.body["data"]["order_id"], order_id, "{}", kept.body);
}

/// With no sweeper running, a hold past its `expires_at` is still stored ACTIVE, but a checkout
/// is refused by the time alone and takes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkout_after_expires_at_is_refused_before_any_sweep() {
    let stack = spawn_with(true, |options| {
        options.config.hold_ttl = Duration::from_secs(1);
    })
    .await;
    let product = stack.product("2.00", 10).await;
    let held = stack.hold("alice", &product, 2).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let hold = held.body["data"].clone();
    let hold_id = hold["hold_id"].as_str().unwrap();

    sleep_until(timestamp(&hold, "expires_at") + chrono::Duration::milliseconds(300)).await;
    let stored = stack.read_hold(&stack.token("alice"), hold_id).await;
    let late = stack.order_from_hold("alice", "too-late", hold_id).await;

    assert_eq!(
        stored.body["data"]["status"], "ACTIVE",
        "no sweeper runs in this stack: {}",
        stored.body
    );
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::CONFLICT, "HOLD_NOT_ACTIVE"),
        "refused by expires_at even before the sweeper: {}",
        late.body
    );
    assert!(stack.all_orders("alice").await.is_empty(), "no order");
    assert_eq!(
        stack.stock(&product).await,
        8,
        "the units stay with the (unswept) hold"
    );
}

/// 50 buyers race to hold 1 unit each of 10: exactly ten holds, forty INSUFFICIENT_STOCK.
async fn fifty_buyers_race_for_ten_held_units(locks: bool) {
    let stack = spawn(locks).await;
    let product = stack.product("9.99", 10).await;

    let replies = join_all((0..50).map(|i| {
        let (stack, product) = (&stack, &product);
        async move { stack.hold(&format!("buyer-{i}"), product, 1).await }
    }))
    .await;

    let created: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    let refusals: Vec<_> = replies
        .iter()
        .filter(|r| r.status != StatusCode::CREATED)
        .map(|r| (r.status.as_u16(), r.code().to_owned()))
        .collect();
    println!("locks={locks}: 201={} refusals={refusals:?}", created.len());
    assert_eq!(created.len(), 10, "exactly ten holds: {refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|(status, code)| *status == 409 && code == "INSUFFICIENT_STOCK"),
        "every other buyer gets 409 INSUFFICIENT_STOCK: {refusals:?}"
    );
    let ids: std::collections::HashSet<_> = created
        .iter()
        .map(|r| r.body["data"]["hold_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 10, "ten distinct holds");
    assert_eq!(stack.stock(&product).await, 0);
}
both_lock_modes!(fifty_buyers_race_for_ten_held_units);

/// A user may keep two ACTIVE holds on one product: a third is refused (also when five race),
/// other users and other products are not affected, and a consumed hold frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_third_active_hold_on_one_product_is_refused() {
    let stack = spawn(true).await;
    let product = stack.product("1.00", 20).await;
    let other = stack.product("1.00", 20).await;

    let first = stack.hold("alice", &product, 1).await;
    let second = stack.hold("alice", &product, 1).await;
    let third = stack.hold("alice", &product, 1).await;
    let bobs = stack.hold("bob", &product, 1).await;
    let elsewhere = stack.hold("alice", &other, 1).await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(
        (third.status, third.code()),
        (StatusCode::CONFLICT, "HOLD_LIMIT_REACHED"),
        "{}",
        third.body
    );
    assert_eq!(
        bobs.status,
        StatusCode::CREATED,
        "the limit is per user: {}",
        bobs.body
    );
    assert_eq!(
        elsewhere.status,
        StatusCode::CREATED,
        "the limit is per product: {}",
        elsewhere.body
    );
    assert_eq!(
        stack.stock(&product).await,
        17,
        "the refused hold took nothing"
    );

    let first_id = first.body["data"]["hold_id"].as_str().unwrap();
    let placed = stack.order_from_hold("alice", "checkout", first_id).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let after_checkout = stack.hold("alice", &product, 1).await;
    assert_eq!(
        after_checkout.status,
        StatusCode::CREATED,
        "only ACTIVE holds count: {}",
        after_checkout.body
    );

    // The limit holds under a race too: five concurrent holds by one user, two win.
    let racing = stack.product("1.00", 20).await;
    let replies = join_all((0..5).map(|_| stack.hold("carol", &racing, 1))).await;
    let outcomes: Vec<_> = replies
        .iter()
        .map(|r| (r.status.as_u16(), r.code().to_owned()))
        .collect();
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count(),
        2,
        "two ACTIVE holds at most: {outcomes:?}"
    );
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.code() == "HOLD_LIMIT_REACHED")
            .count(),
        3,
        "{outcomes:?}"
    );
    assert_eq!(stack.stock(&racing).await, 18);
}

/// Checkouts fired around each hold's expiry race the sweeper: every hold ends CONSUMED (with
/// its order) or EXPIRED (without one), never both, and stock is conserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweeper_and_checkouts_racing_have_one_winner_per_hold() {
    let stack = spawn_pipeline(true, |options| {
        options.config.hold_ttl = Duration::from_secs(1);
        options.local.hold_sweep_interval = Duration::from_millis(100);
        options.config.payments.success_rate = 0.5;
        options.config.payments.seed = Some(4242);
        options.local.queue_visibility_timeout = Duration::from_secs(1);
        options.config.reconcile_after = Duration::from_secs(2);
    })
    .await;
    let initial = 200;
    let product = stack.product("1.00", initial).await;
    let trials = 30_i64;

    let outcomes = join_all((0..trials).map(|i| {
        let (stack, product) = (&stack, &product);
        async move {
            let user = format!("racer-{i}");
            let quantity = 1 + i % 3;
            let held = stack.hold(&user, product, quantity).await;
            assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
            let hold = held.body["data"].clone();
            // From 450 ms before expiry to 420 ms after, in 30 ms steps.
            let offset = chrono::Duration::milliseconds(-450 + 30 * i);
            sleep_until(timestamp(&hold, "expires_at") + offset).await;
            let checkout = stack
                .order_from_hold(&user, "k", hold["hold_id"].as_str().unwrap())
                .await;
            (user, quantity, hold, checkout)
        }
    }))
    .await;

    let mut tally: HashMap<&str, usize> = HashMap::new();
    let mut held_by_orders = 0;
    for (user, quantity, hold, checkout) in &outcomes {
        let hold_id = hold["hold_id"].as_str().unwrap();
        let last = hold_when_settled(&stack, user, hold_id, Duration::from_secs(10)).await;
        let orders = stack.all_orders(user).await;
        match (checkout.status, last["status"].as_str()) {
            (StatusCode::CREATED, Some("CONSUMED")) => {
                let order_id = checkout.body["data"]["id"].as_str().unwrap();
                assert_eq!(last["order_id"], order_id, "{user}: {last}");
                assert_eq!(orders.len(), 1, "{user}: one order: {orders:?}");
                assert_eq!(orders[0]["id"], order_id, "{user}");
                assert_eq!(orders[0]["items"][0]["quantity"], *quantity, "{user}");
                *tally.entry("CONSUMED").or_default() += 1;
            }
            (StatusCode::CONFLICT, Some("EXPIRED")) if checkout.code() == "HOLD_NOT_ACTIVE" => {
                assert_eq!(last["order_id"], Value::Null, "{user}: {last}");
                assert!(
                    orders.is_empty(),
                    "{user}: an expired hold has no order: {orders:?}"
                );
                *tally.entry("EXPIRED").or_default() += 1;
            }
            (status, final_status) => panic!(
                "{user}: checkout answered {status} {} but the hold ended {final_status:?}: {last}",
                checkout.body
            ),
        }
        for order in &orders {
            let id = order["id"].as_str().unwrap();
            let status = stack
                .order_status_when(user, id, Duration::from_secs(20), |s| {
                    matches!(s, "PAID" | "FAILED")
                })
                .await;
            assert!(
                matches!(status.as_str(), "PAID" | "FAILED"),
                "{user}: order {id} settles, ended {status}"
            );
            if status.parse().is_ok_and(OrderStatus::holds_stock) {
                held_by_orders += order["items"][0]["quantity"].as_u64().unwrap();
            }
        }
    }
    println!("sweeper vs checkout: {tally:?}");
    assert_eq!(tally.values().sum::<usize>(), trials as usize);
    assert!(
        tally.contains_key("CONSUMED") && tally.contains_key("EXPIRED"),
        "checkouts from 450 ms before to 420 ms after expiry see both outcomes: {tally:?}"
    );
    let stock = stack.stock(&product).await;
    assert_eq!(
        stock + held_by_orders,
        u64::from(initial),
        "stock conserved (no ACTIVE hold is left): stock {stock}, held by orders {held_by_orders}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack.stock(&product).await,
        stock,
        "nothing given back twice"
    );
}

/// Deleting a product ends the checkouts of its holds: twenty checkouts race the deletion, each
/// is either placed (before the deletion) or refused 404 `NOT_FOUND` naming the product (the held
/// unit goes with the product), every
/// 201 is an order and no other order exists, and a checkout after the deletion is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_product_ends_its_holds_checkouts_even_racing_them() {
    let stack = spawn(false).await;
    let product = stack.product("4.00", 30).await;
    let mut holds = Vec::new();
    for i in 0..21 {
        let user = format!("holder-{i}");
        let hold = stack.hold(&user, &product, 1).await;
        assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
        holds.push((
            user,
            hold.body["data"]["hold_id"].as_str().unwrap().to_owned(),
        ));
    }
    let (late_user, late_hold) = holds.pop().unwrap();
    let admin = stack.admin_token();
    let path = format!("/products/{product}");
    // A few ms after the checkouts start: some commit before the deletion, some after.
    let deletion = async {
        tokio::time::sleep(Duration::from_millis(3)).await;
        stack.send("DELETE", &path, Some(&admin), None).await
    };
    let checkouts = join_all(
        holds
            .iter()
            .map(|(user, hold)| stack.order_from_hold(user, "checkout", hold)),
    );
    let (deleted, checkouts) = tokio::join!(deletion, checkouts);
    assert!(deleted.status.is_success(), "{}", deleted.body);

    let mut placed = 0;
    for (checkout, (user, _)) in checkouts.iter().zip(&holds) {
        match checkout.status {
            StatusCode::CREATED => {
                placed += 1;
                assert_eq!(stack.all_orders(user).await.len(), 1, "{user}");
            }
            StatusCode::NOT_FOUND => {
                assert_eq!(checkout.code(), "NOT_FOUND", "{}", checkout.body);
                assert_eq!(
                    checkout.body["details"],
                    json!({"resource": "product", "id": product}),
                    "{}",
                    checkout.body
                );
                assert!(stack.all_orders(user).await.is_empty(), "{user}");
            }
            other => panic!("{user}: checkout answered {other} {}", checkout.body),
        }
    }
    let late = stack
        .order_from_hold(&late_user, "checkout", &late_hold)
        .await;
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND"),
        "{}",
        late.body
    );
    assert!(stack.all_orders(&late_user).await.is_empty());
    println!(
        "checkouts racing the deletion: {placed} placed, {} refused 404; after it: 404",
        holds.len() - placed
    );
}
