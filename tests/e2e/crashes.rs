//! Crashes at the worst moments, through the real stack: the placing function dying between its
//! commit and its enqueue, and the payment consumer killed mid-batch. Figures are printed for
//! docs/reliability.md (`-- --nocapture`). The whole stack killed and restarted during a flash
//! sale with `LOCAL_DATA_DIR` is in localstack/tests/persistence.rs.

use std::collections::HashMap;
use std::time::Duration;

use localstack::{FaultKind, FaultRule, FaultService, StackOptions};
use reqwest::StatusCode;

use crate::payments::settled_status;
use crate::support::{
    drain_ws_events, order_body, pushes_by_order, quick_recovery, spawn_pipeline,
};

/// Fast redelivery and reconciliation so that recovery paths finish in seconds.
fn quick_pipeline(options: &mut StackOptions) {
    quick_recovery(options, 7, Duration::from_secs(2));
}

/// The placing function hangs in `SendMessage` after its transaction committed and its client
/// gives up: the function is gone for the client, the order is PENDING with no message. The
/// reconciler enqueues it and it settles; when the hung send finally lands, the consumer skips
/// the settled order, so it settles and pushes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_function_dying_between_commit_and_enqueue_leaves_the_order_to_the_reconciler() {
    let stack = spawn_pipeline(true, quick_pipeline).await;
    let product = stack.product("8.00", 10).await;
    let mut ws = stack.ws_connect(&stack.token("buyer")).await.unwrap();
    stack
        .stack
        .faults()
        .set(vec![
            FaultRule::new(FaultService::Sqs, Some("SendMessage"), FaultKind::Latency)
                .latency(Duration::from_secs(8))
                .times(1),
        ])
        .unwrap();
    let impatient = stack
        .client
        .post(format!("{}/orders", stack.stack.http_url()))
        .bearer_auth(stack.token("buyer"))
        .json(&order_body("k-hung", &[(&product, 3)]))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(
        impatient.as_ref().is_err_and(reqwest::Error::is_timeout),
        "the client gave up: {impatient:?}"
    );
    let orders = stack.all_orders("buyer").await;
    assert_eq!(orders.len(), 1, "committed before the enqueue");
    assert_eq!(orders[0]["status"], "PENDING");
    let id = orders[0]["id"].as_str().unwrap().to_owned();

    let started = std::time::Instant::now();
    let status = settled_status(&stack, "buyer", &id, Duration::from_secs(30)).await;
    let settled_after = started.elapsed();
    assert!(matches!(status.as_str(), "PAID" | "FAILED"), "{status}");
    // The hung send lands 8 s after it started: a second message for a settled order.
    tokio::time::sleep(
        Duration::from_secs(8).saturating_sub(started.elapsed()) + Duration::from_secs(3),
    )
    .await;
    let events = drain_ws_events(&mut ws, Duration::from_secs(2)).await;
    let pushed = pushes_by_order(&events);
    assert_eq!(
        pushed.get(&id).map(Vec::as_slice),
        Some(&["PROCESSING".to_owned(), status.clone()][..]),
        "{events:?}"
    );
    let retry = stack.order("buyer", "k-hung", &[(&product, 3)]).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.body["data"]["id"], id.as_str());
    let stock = stack.stock(&product).await;
    let expected = if status == "PAID" { 7 } else { 10 };
    assert_eq!(stock, expected);
    println!(
        "commit then hung enqueue: the client timed out after 1 s; the order was PENDING; the reconciler settled it {status} {settled_after:?} later; the late message was skipped; pushes {:?}; the client's retry replayed it (200); stock {stock}",
        pushed[&id]
    );
    stack.stack.shutdown().await;
}

/// The consumer killed while a batch is between its claim (PROCESSING) and its settle: the
/// messages were never acknowledged, so they come back after the visibility timeout to a new
/// consumer, which resumes each order at the charge; every order settles once, with one terminal
/// push, and stock is conserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_killed_mid_batch_is_redelivered_and_each_order_settles_once() {
    let mut stack = spawn_pipeline(true, quick_pipeline).await;
    let product = stack.product("3.00", 40).await;
    let mut ws = stack.ws_connect(&stack.token("buyer")).await.unwrap();
    // The consumer stalls in its first push (`OrderProcessing`), after the claim.
    stack
        .stack
        .faults()
        .set(vec![
            FaultRule::new(
                FaultService::Apigw,
                Some("PostToConnection"),
                FaultKind::Latency,
            )
            .latency(Duration::from_secs(30)),
        ])
        .unwrap();
    let mut ids = vec![];
    for i in 0..8 {
        let reply = stack
            .order("buyer", &format!("k-batch-{i}"), &[(&product, 2)])
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        ids.push(reply.body["data"]["id"].as_str().unwrap().to_owned());
    }
    // Wait until a batch is mid-way: orders claimed and stalled in their push, none settled (the
    // rest wait in the queue behind the stalled poller).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let orders = stack.all_orders("buyer").await;
        let count = |status: &str| orders.iter().filter(|o| o["status"] == status).count();
        assert_eq!(
            count("PROCESSING") + count("PENDING"),
            ids.len(),
            "none settled: {orders:?}"
        );
        if count("PROCESSING") >= 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "none claimed: {orders:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stack.crash_workers();
    stack.stack.faults().clear();
    let statuses_at_crash: Vec<String> = stack
        .all_orders("buyer")
        .await
        .iter()
        .map(|o| o["status"].as_str().unwrap().to_owned())
        .collect();
    stack.stack.start_workers().await.unwrap();

    let mut settled = HashMap::new();
    for id in &ids {
        let status = settled_status(&stack, "buyer", id, Duration::from_secs(40)).await;
        assert!(
            matches!(status.as_str(), "PAID" | "FAILED"),
            "{id}: {status}"
        );
        settled.insert(id.clone(), status);
    }
    let events = drain_ws_events(&mut ws, Duration::from_secs(3)).await;
    let pushed = pushes_by_order(&events);
    for id in &ids {
        let statuses = pushed.get(id).cloned().unwrap_or_default();
        let terminal: Vec<&String> = statuses.iter().filter(|s| *s != "PROCESSING").collect();
        assert_eq!(terminal, vec![&settled[id]], "{id}: {statuses:?}");
        assert!(
            statuses.iter().filter(|s| *s == "PROCESSING").count() <= 1,
            "{statuses:?}"
        );
    }
    let paid = settled.values().filter(|s| *s == "PAID").count() as u64;
    let stock = stack.stock(&product).await;
    assert_eq!(stock + 2 * paid, 40, "stock conserved");
    println!(
        "consumer killed mid-batch: {} orders placed, statuses {:?}; after the restart all settled once ({paid} PAID, {} FAILED), one terminal push each; stock {stock} + 2 x {paid} paid = 40",
        ids.len(),
        statuses_at_crash,
        ids.len() as u64 - paid
    );
    stack.stack.shutdown().await;
}
