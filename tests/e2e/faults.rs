//! Injected faults through the real stack (`localstack::Faults`, `/_local/faults`): DynamoDB
//! cancelling transactions for conflicts, throttling, failing with 500, slowing down or cutting the
//! connection before or after applying a write; SQS failing `SendMessage` and `DeleteMessageBatch`;
//! the management API failing `PostToConnection`. Each test shows what the client saw, what the
//! tables held, and that a retry with the same idempotency key ends in exactly one order. The
//! figures are printed for docs/reliability.md (`-- --nocapture`).

use std::time::{Duration, Instant};

use localstack::{FaultKind, FaultRule, FaultService, StackOptions};
use reqwest::StatusCode;
use serde_json::Value;

use crate::payments::settled_status;
use crate::support::{
    TestStack, WsClient, drain_ws_events, next_ws_event, pushes_by_order, quick_recovery, spawn,
    spawn_pipeline,
};

fn dynamodb(operation: Option<&str>, fault: FaultKind) -> FaultRule {
    FaultRule::new(FaultService::Dynamodb, operation, fault)
}

/// `fault` on the write that commits an order from items: the PutItem of the order, which is its
/// key's idempotency record (docs/data-model.md, "Placing an order from items").
fn on_placement(stack: &TestStack, fault: FaultKind) -> FaultRule {
    let orders = stack.stack.config().tables.orders.clone();
    dynamodb(Some("PutItem"), fault).on_table(&orders)
}

fn set(stack: &TestStack, rules: Vec<FaultRule>) {
    stack.stack.faults().set(rules).expect("valid fault rules");
}

/// Injections so far of `<service>.<operation>.<fault>`.
fn injected(stack: &TestStack, key: &str) -> u64 {
    stack
        .stack
        .faults()
        .injected()
        .get(key)
        .copied()
        .unwrap_or(0)
}

/// What the tables hold for `user` and `product`: the product's stock and the user's orders.
async fn holdings(stack: &TestStack, user: &str, product: &str) -> (u64, Vec<Value>) {
    (stack.stock(product).await, stack.all_orders(user).await)
}

/// Fast redelivery and reconciliation so that recovery paths finish in seconds.
fn quick_pipeline(options: &mut StackOptions) {
    quick_recovery(options, 20261123, Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transaction_conflicts_are_retried_then_answered_lock_conflict_with_nothing_written() {
    for locks in [true, false] {
        let stack = spawn(locks).await;
        let product = stack.product("10.00", 50).await;

        // Two conflicts: absorbed by the placement's retry budget.
        set(
            &stack,
            vec![on_placement(&stack, FaultKind::TransactionConflict).times(2)],
        );
        let reply = stack.order("buyer", "k-absorbed", &[(&product, 2)]).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let key = "dynamodb.PutItem.transaction_conflict";
        assert_eq!(injected(&stack, key), 2);

        // Every attempt conflicts: the budget runs out.
        set(
            &stack,
            vec![on_placement(&stack, FaultKind::TransactionConflict)],
        );
        let started = Instant::now();
        let reply = stack.order("buyer", "k-refused", &[(&product, 3)]).await;
        let elapsed = started.elapsed();
        let attempts = injected(&stack, key) - 2;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
        assert_eq!(reply.code(), "LOCK_CONFLICT", "{}", reply.body);
        assert!(
            (2..=8).contains(&attempts),
            "a bounded number of attempts: {attempts}"
        );
        let (stock, orders) = holdings(&stack, "buyer", &product).await;
        assert_eq!(
            (stock, orders.len()),
            (48, 1),
            "nothing of the refused order"
        );
        println!(
            "transaction_conflict (locks {locks}): 2 absorbed -> 201; unlimited -> 409 LOCK_CONFLICT after {attempts} attempts in {elapsed:?}; tables: stock {stock}, orders {}",
            orders.len()
        );

        // The client's retry with the same key once the conflicts stop: exactly one order.
        stack.stack.faults().clear();
        let reply = stack.order("buyer", "k-refused", &[(&product, 3)]).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let replay = stack.order("buyer", "k-refused", &[(&product, 3)]).await;
        assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
        assert_eq!(replay.body["data"]["id"], reply.body["data"]["id"]);
        let (stock, orders) = holdings(&stack, "buyer", &product).await;
        assert_eq!((stock, orders.len()), (45, 2));
        stack.stack.shutdown().await;
    }
}

/// A DynamoDB fault the SDK retries (throttling, 5xx): one is absorbed, an outage is 503 with
/// nothing written, and the client's retry after it makes exactly one order.
async fn outage_of(fault: FaultKind) {
    let stack = spawn(true).await;
    let product = stack.product("5.00", 20).await;
    let key = format!("dynamodb.PutItem.{}", fault_name(fault));

    set(&stack, vec![on_placement(&stack, fault).times(1)]);
    let reply = stack.order("buyer", "k-once", &[(&product, 1)]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(injected(&stack, &key), 1);

    set(&stack, vec![on_placement(&stack, fault)]);
    let started = Instant::now();
    let reply = stack.order("buyer", "k-outage", &[(&product, 4)]).await;
    let elapsed = started.elapsed();
    let attempts = injected(&stack, &key) - 1;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "SERVICE_UNAVAILABLE", "{}", reply.body);
    assert!(
        (2..=6).contains(&attempts),
        "the SDK's bounded retries: {attempts}"
    );
    let (stock, orders) = holdings(&stack, "buyer", &product).await;
    assert_eq!((stock, orders.len()), (19, 1), "nothing half-written");
    println!(
        "{}: 1 absorbed -> 201; unlimited -> 503 SERVICE_UNAVAILABLE after {attempts} attempts in {elapsed:?}; tables: stock {stock}, orders {}",
        fault_name(fault),
        orders.len()
    );

    stack.stack.faults().clear();
    let reply = stack.order("buyer", "k-outage", &[(&product, 4)]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let (stock, orders) = holdings(&stack, "buyer", &product).await;
    assert_eq!((stock, orders.len()), (15, 2));
    stack.stack.shutdown().await;
}

fn fault_name(fault: FaultKind) -> String {
    serde_json::to_value(fault)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provisioned_throughput_exceeded_is_retried_then_503() {
    outage_of(FaultKind::ProvisionedThroughputExceeded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_is_retried_then_503() {
    outage_of(FaultKind::Throttling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_errors_are_retried_then_503() {
    outage_of(FaultKind::InternalError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_down_for_reads_is_503_and_other_tables_serve() {
    let stack = spawn(true).await;
    let product = stack.product("5.00", 20).await;
    let placed = stack.order("buyer", "k1", &[(&product, 1)]).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let id = placed.body["data"]["id"].as_str().unwrap().to_owned();
    let orders_table = stack.stack.config().tables.orders.clone();
    set(
        &stack,
        vec![dynamodb(None, FaultKind::InternalError).on_table(&orders_table)],
    );
    let read = stack.read_order("buyer", &id).await;
    assert_eq!(
        read.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        read.body
    );
    assert_eq!(read.code(), "SERVICE_UNAVAILABLE");
    // The product table is not affected.
    assert_eq!(stack.stock(&product).await, 19);
    let health = stack.send("GET", "/health", None, None).await;
    assert_eq!(
        health.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        health.body
    );
    assert_eq!(health.body["services"]["dynamodb"], "unreachable");
    assert_eq!(
        health.body["unreachable_tables"],
        serde_json::json!(["orders"])
    );
    println!(
        "orders table failing every call: GET /orders/{{id}} -> {}, GET /products/{{id}} -> 200, /health -> {} {}",
        read.status, health.status, health.body
    );
    stack.stack.faults().clear();
    assert_eq!(stack.read_order("buyer", &id).await.status, StatusCode::OK);
    stack.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latency_slows_a_placement_and_changes_nothing_else() {
    let stack = spawn(true).await;
    let product = stack.product("5.00", 20).await;
    set(
        &stack,
        vec![on_placement(&stack, FaultKind::Latency).latency(Duration::from_millis(400))],
    );
    let started = Instant::now();
    let reply = stack.order("buyer", "k-slow", &[(&product, 2)]).await;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    let (stock, orders) = holdings(&stack, "buyer", &product).await;
    assert_eq!((stock, orders.len()), (18, 1));
    println!(
        "latency 400 ms on the order's PutItem: 201 in {elapsed:?}; tables: stock {stock}, orders {}",
        orders.len()
    );
    stack.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_cut_before_the_write_is_retried_by_the_sdk() {
    let stack = spawn(true).await;
    let product = stack.product("5.00", 20).await;
    set(
        &stack,
        vec![on_placement(&stack, FaultKind::DropBefore).times(1)],
    );
    let reply = stack.order("buyer", "k-cut", &[(&product, 2)]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(injected(&stack, "dynamodb.PutItem.drop_before"), 1);
    let (stock, orders) = holdings(&stack, "buyer", &product).await;
    assert_eq!((stock, orders.len()), (18, 1));
    println!(
        "drop_before once on the order's PutItem: 201; tables: stock {stock}, orders {}",
        orders.len()
    );
    stack.stack.shutdown().await;
}

/// The hardest case: DynamoDB applies the order and the answer never arrives. The SDK's retry
/// meets its own write (the order's condition, with this attempt's take token on it), so the
/// placement is this request's; when every answer is lost, a consistent read of the order finds
/// this attempt's token on it: 201 as well, and the order is enqueued and settles. A retry with
/// the same key returns that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_applied_but_unanswered_makes_exactly_one_order_that_still_settles() {
    let stack = spawn_pipeline(true, quick_pipeline).await;
    let product = stack.product("5.00", 20).await;

    set(
        &stack,
        vec![on_placement(&stack, FaultKind::DropAfter).times(1)],
    );
    let once = stack.order("buyer", "k-lost-once", &[(&product, 2)]).await;
    println!(
        "drop_after once: the client got {} {}",
        once.status,
        once.code()
    );
    assert!(
        once.status.is_success(),
        "the SDK's retry finds the order: {}",
        once.body
    );

    set(&stack, vec![on_placement(&stack, FaultKind::DropAfter)]);
    let lost = stack.order("buyer", "k-lost", &[(&product, 3)]).await;
    let cut = injected(&stack, "dynamodb.PutItem.drop_after") - 1;
    stack.stack.faults().clear();
    let (stock, orders) = holdings(&stack, "buyer", &product).await;
    println!(
        "drop_after always: the client got {} {} after {cut} cut answers; tables: stock {stock}, orders {}",
        lost.status,
        lost.code(),
        orders.len()
    );
    assert_eq!(
        lost.status,
        StatusCode::CREATED,
        "the order read back is this request's: {}",
        lost.body
    );
    assert_eq!(
        (stock, orders.len()),
        (15, 2),
        "the first attempt was applied, once"
    );

    let retried = stack.order("buyer", "k-lost", &[(&product, 3)]).await;
    assert_eq!(retried.status, StatusCode::OK, "a replay: {}", retried.body);
    let id = retried.body["data"]["id"].as_str().unwrap().to_owned();
    let status = settled_status(&stack, "buyer", &id, Duration::from_secs(30)).await;
    assert!(matches!(status.as_str(), "PAID" | "FAILED"), "{status}");
    let (stock, orders) = holdings(&stack, "buyer", &product).await;
    let live: u64 = orders
        .iter()
        .filter(|o| o["status"] != "FAILED" && o["status"] != "CANCELLED")
        .map(|o| o["items"][0]["quantity"].as_u64().unwrap())
        .sum();
    assert_eq!(stock + live, 20, "stock conserved");
    println!(
        "after the retry: 200 replay of the same order, which settled {status}; stock {stock} + live units {live} = 20"
    );
    stack.stack.shutdown().await;
}

/// A stock take (a single-item write on the product, outside any transaction) applied but its
/// answer lost: the SDK's retry meets the take's own journal entry and does not take the units a
/// second time; a release lost the same way leaves nothing wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stock_write_applied_but_unanswered_takes_the_units_once() {
    let stack = spawn_pipeline(false, quick_pipeline).await;
    let product = stack.product("5.00", 20).await;
    let products = shared::config::TableNames::defaults().products;

    for (i, skip) in [0_u64, 1].into_iter().enumerate() {
        // skip 0: the take's answer is cut; skip 1: the release's.
        set(
            &stack,
            vec![
                dynamodb(Some("UpdateItem"), FaultKind::DropAfter)
                    .on_table(&products)
                    .skip(skip)
                    .times(1),
            ],
        );
        let reply = stack
            .order("buyer", &format!("k-cut-{i}"), &[(&product, 2)])
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(
            injected(&stack, "dynamodb.UpdateItem.drop_after"),
            i as u64 + 1,
            "the fault fired"
        );
        stack.stack.faults().clear();
        let (stock, orders) = holdings(&stack, "buyer", &product).await;
        println!(
            "cut answer of the {}: 201; stock {stock}, orders {}",
            ["take", "release"][i],
            orders.len()
        );
        assert_eq!(
            (stock, orders.len()),
            (20 - 2 * (i as u64 + 1), i + 1),
            "the units taken once"
        );
    }
    stack.stack.shutdown().await;
}

/// Waits for order `id` to settle and checks that its buyer's socket got `PROCESSING` and the
/// terminal event, once each; returns the terminal status and those pushes.
async fn settles_pushing_each_move_once(
    stack: &TestStack,
    ws: &mut WsClient,
    id: &str,
    within: Duration,
) -> (String, Vec<String>) {
    let status = settled_status(stack, "buyer", id, within).await;
    assert!(matches!(status.as_str(), "PAID" | "FAILED"), "{status}");
    let events = drain_ws_events(ws, Duration::from_secs(2)).await;
    let pushes = pushes_by_order(&events).remove(id);
    assert_eq!(
        pushes.as_deref(),
        Some(&["PROCESSING".to_owned(), status.clone()][..]),
        "{events:?}"
    );
    (status, pushes.unwrap_or_default())
}

async fn connected(stack: &TestStack, user: &str) -> WsClient {
    stack
        .ws_connect(&stack.token(user))
        .await
        .expect("the WebSocket opens")
}

/// A pipeline stack (`adjust` after the quick one), a 20-unit product at 5.00, and "buyer"'s
/// socket open.
async fn pipeline_with_buyer(
    locks: bool,
    adjust: impl FnOnce(&mut StackOptions),
) -> (TestStack, String, WsClient) {
    let stack = spawn_pipeline(locks, |options| {
        quick_pipeline(options);
        adjust(options);
    })
    .await;
    let product = stack.product("5.00", 20).await;
    let ws = connected(&stack, "buyer").await;
    (stack, product, ws)
}

/// "buyer" orders 2 units of `product` under `key`: answered 201; the order's id.
async fn placed(stack: &TestStack, key: &str, product: &str) -> String {
    let reply = stack.order("buyer", key, &[(product, 2)]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["data"]["id"].as_str().unwrap().to_owned()
}

/// Order `id` is still PENDING under the faults; once they are cleared it settles, each move
/// pushed once.
async fn pending_until_cleared_then_settles(
    stack: &TestStack,
    ws: &mut WsClient,
    id: &str,
) -> (String, Vec<String>) {
    let pending = stack.read_order("buyer", id).await;
    assert_eq!(pending.body["data"]["status"], "PENDING");
    stack.stack.faults().clear();
    settles_pushing_each_move_once(stack, ws, id, Duration::from_secs(30)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_enqueue_is_left_to_the_reconciler_and_settles_once() {
    let (stack, product, mut ws) = pipeline_with_buyer(true, |_| {}).await;
    set(
        &stack,
        vec![FaultRule::new(
            FaultService::Sqs,
            Some("SendMessage"),
            FaultKind::InternalError,
        )],
    );
    let id = placed(&stack, "k-unqueued", &product).await;
    let attempts = injected(&stack, "sqs.SendMessage.internal_error");
    // Nothing in the queue: the order waits, PENDING, for the reconciler.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, pushes) = pending_until_cleared_then_settles(&stack, &mut ws, &id).await;
    println!(
        "SendMessage failing: the client got 201 after {attempts} failed sends; the order stayed PENDING, then the reconciler enqueued it and it settled {status}; pushes {:?}",
        pushes
    );
    stack.stack.shutdown().await;
}

/// A consumer that fails on every receive (its claim's write refused) sends the message to the
/// DLQ after `maxReceiveCount` receives. The order from items is in no index, so only the
/// reconciler's pass over the DLQ can find it: it sends the message back, and once DynamoDB
/// answers again the order settles, pushed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_that_ran_out_of_receives_is_sent_back_from_the_dlq_and_settles() {
    let (stack, product, mut ws) = pipeline_with_buyer(false, |options| {
        options.local.max_receive_count = 2;
    })
    .await;
    let orders = stack.stack.config().tables.orders.clone();
    set(
        &stack,
        vec![dynamodb(Some("UpdateItem"), FaultKind::InternalError).on_table(&orders)],
    );
    let id = placed(&stack, "k-dead", &product).await;

    // Wait for the message in the DLQ (visible, or received by the reconciler meanwhile).
    let sqs = crate::payments::sqs(&stack).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(stack.stack.dlq_url())
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let count = |name| {
            attributes
                .get(&name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        use aws_sdk_sqs::types::QueueAttributeName as A;
        if count(A::ApproximateNumberOfMessages) + count(A::ApproximateNumberOfMessagesNotVisible)
            > 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the message never reached the DLQ"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed_claims = injected(&stack, "dynamodb.UpdateItem.internal_error");
    let (status, pushes) = pending_until_cleared_then_settles(&stack, &mut ws, &id).await;
    println!(
        "claims failing ({failed_claims} refused writes): the message reached the DLQ after 2 receives with the order PENDING; the reconciler sent it back and it settled {status}; pushes {:?}",
        pushes
    );
    stack.stack.shutdown().await;
}

/// The claim (PENDING to PROCESSING) applied and its answer lost: the SDK's retry fails the
/// condition on the claim's own write. The consumer reads the order, finds its own move (its
/// time), announces it and goes on to the charge: the order settles with each event pushed once,
/// where acknowledging the message would have left it PROCESSING with no message and in no index.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_applied_but_unanswered_still_settles_and_pushes_each_move_once() {
    let (stack, product, mut ws) = pipeline_with_buyer(false, |_| {}).await;
    let orders = stack.stack.config().tables.orders.clone();
    set(
        &stack,
        vec![
            dynamodb(Some("UpdateItem"), FaultKind::DropAfter)
                .on_table(&orders)
                .times(1),
        ],
    );
    let id = placed(&stack, "k-claim-cut", &product).await;
    let (status, pushes) =
        settles_pushing_each_move_once(&stack, &mut ws, &id, Duration::from_secs(20)).await;
    assert_eq!(
        injected(&stack, "dynamodb.UpdateItem.drop_after"),
        1,
        "the claim's answer was cut"
    );
    println!(
        "claim's answer cut: the order settled {status}; pushes {:?}",
        pushes
    );
    stack.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_deletes_redeliver_and_each_order_settles_and_pushes_once() {
    let stack = spawn_pipeline(true, quick_pipeline).await;
    let product = stack.product("5.00", 50).await;
    let mut ws = connected(&stack, "buyer").await;
    set(
        &stack,
        vec![FaultRule::new(
            FaultService::Sqs,
            Some("DeleteMessageBatch"),
            FaultKind::InternalError,
        )],
    );
    let mut ids = vec![];
    for i in 0..6 {
        let reply = stack
            .order("buyer", &format!("k-del-{i}"), &[(&product, 1)])
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        ids.push(reply.body["data"]["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let status = settled_status(&stack, "buyer", id, Duration::from_secs(30)).await;
        assert!(matches!(status.as_str(), "PAID" | "FAILED"), "{status}");
    }
    // Let the undeleted messages come back at least once more before the deletes work again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failed_deletes = injected(&stack, "sqs.DeleteMessageBatch.internal_error");
    stack.stack.faults().clear();
    let events = drain_ws_events(&mut ws, Duration::from_secs(3)).await;
    let pushes = pushes_by_order(&events);
    for id in &ids {
        let statuses = pushes.get(id).cloned().unwrap_or_default();
        assert_eq!(statuses.len(), 2, "one push per transition: {statuses:?}");
        assert_eq!(statuses[0], "PROCESSING");
    }
    let (stock, orders) = holdings(&stack, "buyer", &product).await;
    let paid = orders.iter().filter(|o| o["status"] == "PAID").count() as u64;
    assert_eq!(stock + paid, 50, "stock conserved");
    assert!(failed_deletes >= 2, "deletes failed: {failed_deletes}");
    println!(
        "DeleteMessageBatch failing: {failed_deletes} failed deletes (redeliveries); 6 orders settled once each ({paid} PAID), 2 pushes each; stock {stock} + paid {paid} = 50"
    );
    stack.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_push_loses_the_event_not_the_settlement() {
    let (stack, product, mut ws) = pipeline_with_buyer(true, |_| {}).await;
    let push = |fault| FaultRule::new(FaultService::Apigw, Some("PostToConnection"), fault);

    // One failure: the SDK's retry delivers the push, once.
    set(&stack, vec![push(FaultKind::InternalError).times(1)]);
    let reply = stack.order("buyer", "k-push-once", &[(&product, 1)]).await;
    let first = reply.body["data"]["id"].as_str().unwrap().to_owned();
    let status = settled_status(&stack, "buyer", &first, Duration::from_secs(30)).await;
    let events = drain_ws_events(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(
        pushes_by_order(&events).get(&first).map(Vec::len),
        Some(2),
        "{events:?}"
    );

    // Every push fails: the order still settles; the client reads it instead.
    set(&stack, vec![push(FaultKind::InternalError)]);
    let reply = stack.order("buyer", "k-push-lost", &[(&product, 1)]).await;
    let second = reply.body["data"]["id"].as_str().unwrap().to_owned();
    let lost_status = settled_status(&stack, "buyer", &second, Duration::from_secs(30)).await;
    assert!(
        matches!(lost_status.as_str(), "PAID" | "FAILED"),
        "{lost_status}"
    );
    assert!(
        next_ws_event(&mut ws, Duration::from_secs(1))
            .await
            .is_none()
    );
    let failed = injected(&stack, "apigw.PostToConnection.internal_error");

    // 410 Gone: the connection item is deleted, as for a client that went away.
    let connections = stack.stack.config().tables.connections.clone();
    let dynamo = stack.dynamodb().await;
    let stored = |dynamo: aws_sdk_dynamodb::Client, table: String| async move {
        dynamo
            .scan()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .count()
    };
    assert_eq!(stored(dynamo.clone(), connections.clone()).await, 1);
    set(&stack, vec![push(FaultKind::Gone)]);
    let reply = stack.order("buyer", "k-push-gone", &[(&product, 1)]).await;
    let third = reply.body["data"]["id"].as_str().unwrap().to_owned();
    settled_status(&stack, "buyer", &third, Duration::from_secs(30)).await;
    assert_eq!(stored(dynamo, connections).await, 0);
    println!(
        "PostToConnection: 1 failure -> the push arrived once ({status}); always failing -> order settled {lost_status}, no push ({failed} failed posts); 410 -> the connection item deleted"
    );
    stack.stack.faults().clear();
    stack.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fault_rules_are_set_over_http_too() {
    let stack = spawn(true).await;
    let faults = format!("{}/_local/faults", stack.stack.aws_endpoint());
    let client = reqwest::Client::new();
    let refused = client
        .post(&faults)
        .body(r#"[{"service":"apigw","fault":"drop_after"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let product = stack.product("5.00", 20).await;
    let set = client
        .post(&faults)
        .body(r#"[{"service":"dynamodb","operation":"PutItem","fault":"internal_error"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let reply = stack.order("buyer", "k-http", &[(&product, 1)]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let report: Value = client
        .delete(&faults)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        report["injected"]["dynamodb.PutItem.internal_error"]
            .as_u64()
            .unwrap()
            >= 2,
        "{report}"
    );
    assert_eq!(report["rules"], serde_json::json!([]));
    let reply = stack.order("buyer", "k-http", &[(&product, 1)]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    stack.stack.shutdown().await;
}
