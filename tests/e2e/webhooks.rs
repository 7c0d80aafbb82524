//! Payment webhooks through the real stack, signed here with HMAC-SHA256 independently of the
//! implementation: refused without a good signature, replayed byte for byte, stored when they
//! arrive before their order, and racing the payment consumer with one winner per order.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use localstack::StackOptions;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    TestStack, derived_order_id, drain_ws_events, spawn_pipeline, spawn_with, webhook_body,
    webhook_signature,
};

/// The provider's secret in these tests (not the development default, so a stack that ignored
/// its configured secret would be caught).
const SECRET: &str = "whsec-e2e-3f9c1a";

fn with_secret(options: &mut StackOptions) {
    options.config.webhook_secret = Some(SECRET.to_owned());
}

/// A synchronous stack (no consumer: orders stay PENDING unless a webhook settles them).
async fn stack_without_consumer() -> TestStack {
    spawn_with(true, with_secret).await
}

/// A stack without the consumer, a 10-unit product at `price`, and alice's order of `quantity`
/// of it under key "k", answered 201: the stack, the product and the order's id.
async fn with_placed_order(price: &str, quantity: i64) -> (TestStack, String, String) {
    let stack = stack_without_consumer().await;
    let product = stack.product(price, 10).await;
    let placed = stack
        .order_retrying("alice", "k", &[(product.as_str(), quantity)])
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order_id = placed.body["data"]["id"].as_str().unwrap().to_owned();
    (stack, product, order_id)
}

/// The `v1=` part of a `Stripe-Signature`-style header.
fn v1_of(signature: &str) -> String {
    signature.split_once(",v1=").unwrap().1.to_owned()
}

/// Delivers a signed webhook after `delay_ms`.
async fn deliver_after(stack: &TestStack, body: &str, delay_ms: u64) -> crate::support::Reply {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    stack.webhook(body).await.0
}

async fn order_status(stack: &TestStack, user: &str, id: &str) -> String {
    let reply = stack.read_order(user, id).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "GET /orders/{id}: {}",
        reply.body
    );
    reply.body["data"]["status"].as_str().unwrap().to_owned()
}

/// A webhook refused as unauthenticated that left alice's order in `status` and the product at 7.
async fn assert_refused_and_unchanged(
    stack: &TestStack,
    reply: &crate::support::Reply,
    (order_id, status): (&str, &str),
    product: &str,
    case: &str,
) {
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        "{case}: {}",
        reply.body
    );
    assert_eq!(
        order_status(stack, "alice", order_id).await,
        status,
        "{case}"
    );
    assert_eq!(stack.stock(product).await, 7, "{case}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_bad_and_stale_signatures_are_refused_and_change_nothing() {
    let (stack, product, order_id) = with_placed_order("5.00", 3).await;
    let body = webhook_body("evt-1", &order_id, true);
    let now = Utc::now().timestamp();
    let good_v1 = v1_of(&webhook_signature(SECRET, now, &body));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no signature header", None),
        ("an empty header", Some(String::new())),
        ("garbage", Some("not a signature".to_owned())),
        (
            "another secret",
            Some(webhook_signature("not-the-secret", now, &body)),
        ),
        (
            "a signature over another body",
            Some(webhook_signature(
                SECRET,
                now,
                &webhook_body("evt-1", &order_id, false),
            )),
        ),
        (
            "a good v1 under another timestamp",
            Some(format!("t={},v1={good_v1}", now - 1)),
        ),
        ("no timestamp", Some(format!("v1={good_v1}"))),
        ("no v1", Some(format!("t={now}"))),
        (
            "a truncated v1",
            Some(format!("t={now},v1={}", &good_v1[..32])),
        ),
        (
            "301+ s old",
            Some(webhook_signature(SECRET, now - 400, &body)),
        ),
        (
            "301+ s ahead",
            Some(webhook_signature(SECRET, now + 400, &body)),
        ),
    ];

    for (case, signature) in &cases {
        let (reply, _) = stack.webhook_signed(&body, signature.as_deref()).await;
        let case = format!("{case}: {signature:?}");
        assert_refused_and_unchanged(&stack, &reply, (&order_id, "PENDING"), &product, &case).await;
    }

    // None of the refusals was stored under the key: a good delivery of it settles the order,
    // and 250 s of clock skew is inside the 300 s tolerance.
    let signature = webhook_signature(SECRET, Utc::now().timestamp() - 250, &body);
    let (accepted, _) = stack.webhook_signed(&body, Some(&signature)).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(
        accepted.body["data"],
        json!({"order_id": order_id, "order_status": "PAID"})
    );
    assert_eq!(order_status(&stack, "alice", &order_id).await, "PAID");
    assert_eq!(stack.stock(&product).await, 7);
}

/// Success settles a PENDING order PAID, failure settles one FAILED with its stock back, a later
/// webhook about a settled order changes nothing, and the owner's socket gets one event per
/// change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_webhook_settles_a_pending_order_once_and_pushes_it() {
    let stack = stack_without_consumer().await;
    let product = stack.product("2.50", 10).await;
    let mut alice = stack.ws_connect(&stack.token("alice")).await.unwrap();
    let mut bob = stack.ws_connect(&stack.token("bob")).await.unwrap();
    let to_pay = stack
        .order_retrying("alice", "pay", &[(product.as_str(), 3)])
        .await;
    let to_fail = stack
        .order_retrying("alice", "fail", &[(product.as_str(), 2)])
        .await;
    let paid_id = to_pay.body["data"]["id"].as_str().unwrap().to_owned();
    let failed_id = to_fail.body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(stack.stock(&product).await, 5);

    let (paid, _) = stack
        .webhook(&webhook_body("evt-pay", &paid_id, true))
        .await;
    let (failed, _) = stack
        .webhook(&webhook_body("evt-fail", &failed_id, false))
        .await;

    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(
        paid.body["data"],
        json!({"order_id": paid_id, "order_status": "PAID"})
    );
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    assert_eq!(
        failed.body["data"],
        json!({"order_id": failed_id, "order_status": "FAILED"})
    );
    assert_eq!(order_status(&stack, "alice", &paid_id).await, "PAID");
    assert_eq!(order_status(&stack, "alice", &failed_id).await, "FAILED");
    assert_eq!(
        stack.stock(&product).await,
        7,
        "the failed order's 2 units are back, the paid 3 are not"
    );

    // New deliveries (new keys) about settled orders: 200 with the current status, no change.
    let (late_failure, _) = stack
        .webhook(&webhook_body("evt-late-1", &paid_id, false))
        .await;
    let (late_success, _) = stack
        .webhook(&webhook_body("evt-late-2", &failed_id, true))
        .await;
    let cancel = stack
        .send(
            "POST",
            &format!("/orders/{paid_id}/cancel"),
            Some(&stack.token("alice")),
            None,
        )
        .await;

    assert_eq!(late_failure.status, StatusCode::OK, "{}", late_failure.body);
    assert_eq!(late_failure.body["data"]["order_status"], "PAID");
    assert_eq!(late_success.status, StatusCode::OK, "{}", late_success.body);
    assert_eq!(late_success.body["data"]["order_status"], "FAILED");
    assert_eq!(order_status(&stack, "alice", &paid_id).await, "PAID");
    assert_eq!(order_status(&stack, "alice", &failed_id).await, "FAILED");
    assert_eq!(
        cancel.code(),
        "ORDER_NOT_CANCELLABLE",
        "a PAID order is not cancellable: {}",
        cancel.body
    );
    assert_eq!(stack.stock(&product).await, 7, "nothing restored twice");

    let events = drain_ws_events(&mut alice, Duration::from_secs(2)).await;
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e["event"].clone(),
                e["order_id"].clone(),
                e["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("OrderPaid"), json!(paid_id), json!("PAID")),
            (json!("OrderFailed"), json!(failed_id), json!("FAILED")),
        ],
        "one event per settled order, none for the no-op deliveries: {events:?}"
    );
    assert_eq!(events[0]["total_amount"], "7.50", "{events:?}");
    assert!(events[1]["reason"].as_str().is_some(), "{events:?}");
    assert_eq!(
        drain_ws_events(&mut bob, Duration::from_millis(500)).await,
        Vec::<Value>::new(),
        "bob hears nothing"
    );
}

/// A redelivery replays the first answer exactly (status and bytes, also when re-signed later or
/// when the first answer was a 202), and the key with another body is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_delivery_replays_the_first_answer_byte_for_byte() {
    let (stack, product, order_id) = with_placed_order("1.00", 1).await;
    let body = webhook_body("evt-dup", &order_id, true);

    let (first, first_bytes) = stack.webhook(&body).await;
    let (again, again_bytes) = stack.webhook(&body).await;
    let resigned = webhook_signature(SECRET, Utc::now().timestamp() + 5, &body);
    let (later, later_bytes) = stack.webhook_signed(&body, Some(&resigned)).await;
    let (other_outcome, _) = stack
        .webhook(&webhook_body("evt-dup", &order_id, false))
        .await;
    let (other_order, _) = stack
        .webhook(&webhook_body("evt-dup", "some-other-order", true))
        .await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["data"]["order_status"], "PAID");
    for (what, reply, bytes) in [
        ("again", &again, &again_bytes),
        ("re-signed", &later, &later_bytes),
    ] {
        assert_eq!(reply.status, first.status, "{what}: {}", reply.body);
        assert_eq!(
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&first_bytes),
            "{what}: the identical body"
        );
    }
    for (what, reply) in [
        ("another outcome", &other_outcome),
        ("another order", &other_order),
    ] {
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED"),
            "{what}: {}",
            reply.body
        );
    }
    assert_eq!(order_status(&stack, "alice", &order_id).await, "PAID");
    assert_eq!(stack.stock(&product).await, 9);

    // A 202 replays as a 202 even after the order it waited for exists and is settled.
    let early_id = derived_order_id("alice", "early");
    let early_body = webhook_body("evt-early", &early_id, true);
    let (accepted, accepted_bytes) = stack.webhook(&early_body).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let early = stack
        .order_retrying("alice", "early", &[(product.as_str(), 1)])
        .await;
    assert_eq!(early.status, StatusCode::CREATED, "{}", early.body);
    let settled = stack
        .order_status_when("alice", &early_id, Duration::from_secs(5), |s| s == "PAID")
        .await;
    assert_eq!(settled, "PAID");
    let (replayed, replayed_bytes) = stack.webhook(&early_body).await;
    assert_eq!(replayed.status, StatusCode::ACCEPTED, "{}", replayed.body);
    assert_eq!(
        String::from_utf8_lossy(&replayed_bytes),
        String::from_utf8_lossy(&accepted_bytes),
        "the stored 202 body, not a fresh answer"
    );
}

/// A webhook for an order not placed yet is stored (202); placing that order (the id both sides
/// derive from the user and the key) applies it without any consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_before_its_order_is_applied_when_the_order_is_placed() {
    let stack = stack_without_consumer().await;
    let product = stack.product("3.00", 10).await;
    let mut alice = stack.ws_connect(&stack.token("alice")).await.unwrap();
    let paid_id = derived_order_id("alice", "early-pay");
    let failed_id = derived_order_id("bob", "early-fail");

    let (to_pay, _) = stack.webhook(&webhook_body("evt-a", &paid_id, true)).await;
    let (to_fail, _) = stack
        .webhook(&webhook_body("evt-b", &failed_id, false))
        .await;

    assert_eq!(to_pay.status, StatusCode::ACCEPTED, "{}", to_pay.body);
    assert_eq!(
        to_pay.body["data"],
        json!({"order_id": paid_id, "order_status": null})
    );
    assert_eq!(to_fail.status, StatusCode::ACCEPTED, "{}", to_fail.body);
    assert_eq!(
        to_fail.body["data"],
        json!({"order_id": failed_id, "order_status": null})
    );
    assert_eq!(
        stack.read_order("alice", &paid_id).await.status,
        StatusCode::NOT_FOUND,
        "a stored webhook creates no order"
    );
    assert_eq!(stack.stock(&product).await, 10);

    let placed_paid = stack
        .order_retrying("alice", "early-pay", &[(product.as_str(), 2)])
        .await;
    let placed_failed = stack
        .order_retrying("bob", "early-fail", &[(product.as_str(), 3)])
        .await;

    assert_eq!(
        placed_paid.status,
        StatusCode::CREATED,
        "{}",
        placed_paid.body
    );
    assert_eq!(placed_paid.body["data"]["id"], paid_id.as_str());
    assert_eq!(
        placed_failed.status,
        StatusCode::CREATED,
        "{}",
        placed_failed.body
    );
    assert_eq!(placed_failed.body["data"]["id"], failed_id.as_str());
    let terminal = |s: &str| matches!(s, "PAID" | "FAILED" | "CANCELLED");
    assert_eq!(
        stack
            .order_status_when("alice", &paid_id, Duration::from_secs(5), terminal)
            .await,
        "PAID",
        "the stored success is applied"
    );
    assert_eq!(
        stack
            .order_status_when("bob", &failed_id, Duration::from_secs(5), terminal)
            .await,
        "FAILED",
        "the stored failure is applied"
    );
    assert_eq!(
        stack.stock(&product).await,
        8,
        "the failed order's 3 units are back, the paid 2 are not"
    );
    let events = drain_ws_events(&mut alice, Duration::from_secs(1)).await;
    let terminal_events: Vec<_> = events
        .iter()
        .filter(|e| matches!(e["event"].as_str(), Some("OrderPaid" | "OrderFailed")))
        .collect();
    assert_eq!(terminal_events.len(), 1, "{events:?}");
    assert_eq!(terminal_events[0]["event"], "OrderPaid", "{events:?}");
    assert_eq!(
        terminal_events[0]["order_id"],
        paid_id.as_str(),
        "{events:?}"
    );
    assert!(
        events.iter().all(|e| e["order_id"] == paid_id.as_str()
            && matches!(e["event"].as_str(), Some("OrderPaid" | "OrderProcessing"))),
        "only the events of alice's order: {events:?}"
    );
}

/// Webhooks of random outcome race the simulated payment (and sometimes their own order): every
/// order ends in one terminal status that a 200 answer already named, stock is conserved, and
/// each owner's socket gets exactly one terminal event per order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_racing_the_payment_consumer_settle_each_order_once() {
    let seed = 20261123;
    let stack = spawn_pipeline(true, |options| {
        with_secret(options);
        options.config.payments.success_rate = 0.5;
        options.config.payments.seed = Some(seed);
        options.local.queue_visibility_timeout = Duration::from_secs(1);
        options.config.reconcile_after = Duration::from_secs(2);
    })
    .await;
    let initial = 500;
    let product = stack.product("1.25", initial).await;
    let users: Vec<String> = (0..5).map(|u| format!("payer-{u}")).collect();
    let mut sockets = Vec::new();
    for user in &users {
        sockets.push(stack.ws_connect(&stack.token(user)).await.unwrap());
    }
    let mut rng = StdRng::seed_from_u64(seed);
    // A quarter of the webhooks race their order's placement; the rest follow its 201 by 0-300 ms,
    // while the consumer (50-200 ms of simulated payment) takes the order.
    let plans: Vec<_> = (0..30)
        .map(|i| {
            (
                i,
                rng.random_bool(0.5),
                rng.random_bool(0.25),
                rng.random_range(0..100_u64),
                rng.random_range(0..300_u64),
                1 + i64::from(i % 3),
            )
        })
        .collect();

    let outcomes = join_all(plans.iter().map(
        |&(i, success, early, order_delay, hook_delay, quantity)| {
            let (stack, product, user) = (&stack, &product, &users[i as usize % users.len()]);
            async move {
                let key = format!("race-{i}");
                let id = derived_order_id(user, &key);
                let body = webhook_body(&format!("evt-{i}"), &id, success);
                let place = async {
                    tokio::time::sleep(Duration::from_millis(order_delay)).await;
                    stack
                        .order_retrying(user, &key, &[(product.as_str(), quantity)])
                        .await
                };
                let (placed, answered) = if early {
                    tokio::join!(place, deliver_after(stack, &body, hook_delay))
                } else {
                    let placed = place.await;
                    (placed, deliver_after(stack, &body, hook_delay).await)
                };
                (user.clone(), id, quantity, success, placed, answered)
            }
        },
    ))
    .await;

    let mut final_status: HashMap<String, String> = HashMap::new();
    let mut tally: HashMap<String, usize> = HashMap::new();
    let mut held = 0;
    for (user, id, quantity, success, placed, answered) in &outcomes {
        assert_eq!(placed.status, StatusCode::CREATED, "{id}: {}", placed.body);
        assert_eq!(placed.body["data"]["id"], id.as_str());
        let status = stack
            .order_status_when(user, id, Duration::from_secs(30), |s| {
                matches!(s, "PAID" | "FAILED")
            })
            .await;
        assert!(
            matches!(status.as_str(), "PAID" | "FAILED"),
            "seed {seed}: order {id} ended {status}"
        );
        match answered.status {
            StatusCode::OK => assert_eq!(
                answered.body["data"]["order_status"],
                status.as_str(),
                "seed {seed}: a 200 names the terminal status the order keeps ({id}, webhook success={success})"
            ),
            StatusCode::ACCEPTED => assert_eq!(
                answered.body["data"],
                json!({"order_id": id, "order_status": null}),
                "seed {seed}"
            ),
            other => panic!(
                "seed {seed}: webhook for {id} answered {other}: {}",
                answered.body
            ),
        }
        if status == "PAID" {
            held += *quantity as u64;
        }
        *tally
            .entry(format!("{status} webhook={}", answered.status.as_u16()))
            .or_default() += 1;
        final_status.insert(id.clone(), status);
    }
    println!("seed {seed}: webhook vs consumer outcomes: {tally:?}");
    assert_eq!(
        stack.stock(&product).await + held,
        u64::from(initial),
        "seed {seed}: stock conserved"
    );

    for (user, socket) in users.iter().zip(sockets.iter_mut()) {
        let events = drain_ws_events(socket, Duration::from_millis(1500)).await;
        let mut per_order: HashMap<String, Vec<String>> = HashMap::new();
        for event in &events {
            let id = event["order_id"].as_str().unwrap_or_default().to_owned();
            let status = final_status.get(&id).unwrap_or_else(|| {
                panic!("seed {seed}: {user} got an event of no order of theirs: {event}")
            });
            let owner = &outcomes.iter().find(|o| o.1 == id).unwrap().0;
            assert_eq!(owner, user, "seed {seed}: {event}");
            match event["event"].as_str() {
                Some("OrderPaid") => assert_eq!(status, "PAID", "seed {seed}: {event}"),
                Some("OrderFailed") => assert_eq!(status, "FAILED", "seed {seed}: {event}"),
                Some("OrderProcessing") => {}
                _ => panic!("seed {seed}: unexpected event {event}"),
            }
            per_order
                .entry(id)
                .or_default()
                .push(event["event"].as_str().unwrap().to_owned());
        }
        for (_, id, ..) in outcomes.iter().filter(|o| &o.0 == user) {
            let seen = per_order.get(id.as_str()).cloned().unwrap_or_default();
            let terminal = seen.iter().filter(|e| *e != "OrderProcessing").count();
            let processing = seen.len() - terminal;
            assert!(
                terminal == 1 && processing <= 1,
                "seed {seed}: {user}'s order {id} ({}) pushed {seen:?}",
                final_status[id.as_str()]
            );
        }
    }
}

/// With no consumer, a webhook is the only thing that settles an order: fired at the same moment
/// as its order's placement, it either finds the order (200) or is stored (202) and applied when
/// the order commits; either way no outcome is lost and each order ends as its webhook said.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_racing_its_own_order_placement_is_never_lost() {
    let seed = 77;
    let stack = stack_without_consumer().await;
    let initial = 300;
    let product = stack.product("2.00", initial).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let plans: Vec<_> = (0..30)
        .map(|i| {
            (
                i,
                rng.random_bool(0.5),
                rng.random_range(0..40_u64),
                rng.random_range(0..800_u64),
            )
        })
        .collect();

    let outcomes = join_all(plans.iter().map(|&(i, success, order_delay, hook_delay)| {
        let (stack, product) = (&stack, &product);
        async move {
            let user = format!("racer-{i}");
            let id = derived_order_id(&user, "k");
            let place = async {
                tokio::time::sleep(Duration::from_millis(order_delay)).await;
                stack
                    .order_retrying(&user, "k", &[(product.as_str(), 2)])
                    .await
            };
            let hook = async {
                tokio::time::sleep(Duration::from_millis(hook_delay)).await;
                stack
                    .webhook(&webhook_body(&format!("evt-{i}"), &id, success))
                    .await
                    .0
            };
            let (placed, answered) = tokio::join!(place, hook);
            (user, id, success, placed, answered)
        }
    }))
    .await;

    let mut tally: HashMap<String, usize> = HashMap::new();
    let mut paid = 0;
    for (user, id, success, placed, answered) in &outcomes {
        assert_eq!(placed.status, StatusCode::CREATED, "{id}: {}", placed.body);
        assert!(
            matches!(answered.status, StatusCode::OK | StatusCode::ACCEPTED),
            "{id}: webhook answered {} {}",
            answered.status,
            answered.body
        );
        let expected = if *success { "PAID" } else { "FAILED" };
        let status = stack
            .order_status_when(user, id, Duration::from_secs(5), |s| s != "PENDING")
            .await;
        assert_eq!(
            status, expected,
            "seed {seed}: order {id} ends as its only webhook said (webhook answered {} {})",
            answered.status, answered.body
        );
        if status == "PAID" {
            paid += 2;
        }
        *tally
            .entry(format!("{status} webhook={}", answered.status.as_u16()))
            .or_default() += 1;
    }
    println!("seed {seed}: webhook vs its order: {tally:?}");
    assert_eq!(
        stack.stock(&product).await + paid,
        u64::from(initial),
        "seed {seed}: stock conserved"
    );
}

/// A replay outside the 300 s window, at its edges and beyond what a timestamp can hold: a failure
/// webhook (which would fail the order and give its stock back) signed 301 s ago, 310 s ahead, at
/// the epoch, at `i64::MAX` and past it, is 401 and changes nothing. Then a delivery that was
/// accepted, captured and replayed with its signature re-dated (as after 300 s) is 401 too, not the
/// stored 200: the window is checked before the idempotency record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_outside_the_window_is_refused_and_changes_nothing() {
    let (stack, product, order_id) = with_placed_order("5.00", 3).await;
    let failure = webhook_body("evt-fail", &order_id, false);
    let now = Utc::now().timestamp();
    let cases: Vec<(&str, String)> = vec![
        ("301 s old", webhook_signature(SECRET, now - 301, &failure)),
        (
            "310 s ahead",
            webhook_signature(SECRET, now + 310, &failure),
        ),
        (
            "a day old",
            webhook_signature(SECRET, now - 86_400, &failure),
        ),
        ("t=0", webhook_signature(SECRET, 0, &failure)),
        ("t=-1", webhook_signature(SECRET, -1, &failure)),
        ("t=i64::MAX", webhook_signature(SECRET, i64::MAX, &failure)),
        ("t=i64::MIN", webhook_signature(SECRET, i64::MIN, &failure)),
        (
            "t past i64",
            format!(
                "t=99999999999999999999,v1={}",
                v1_of(&webhook_signature(SECRET, now, &failure))
            ),
        ),
    ];
    for (case, signature) in &cases {
        let (reply, _) = stack.webhook_signed(&failure, Some(signature)).await;
        assert_refused_and_unchanged(&stack, &reply, (&order_id, "PENDING"), &product, case).await;
    }

    let success = webhook_body("evt-ok", &order_id, true);
    let (accepted, first_bytes) = stack.webhook(&success).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    let (replayed, bytes) = stack.webhook(&success).await;
    assert_eq!(
        (replayed.status, bytes),
        (StatusCode::OK, first_bytes),
        "inside the window, a replay is answered as the first"
    );
    for (case, body, t) in [
        (
            "the accepted delivery, 301 s later",
            &success,
            Utc::now().timestamp() - 301,
        ),
        (
            "a captured failure, 301 s later",
            &failure,
            Utc::now().timestamp() - 301,
        ),
    ] {
        let (reply, _) = stack
            .webhook_signed(body, Some(&webhook_signature(SECRET, t, body)))
            .await;
        assert_refused_and_unchanged(&stack, &reply, (&order_id, "PAID"), &product, case).await;
    }
}
