//! The payment pipeline through the real stack: orders go through SQS to the consumer and end
//! PAID or FAILED; duplicates, poison messages, crashes and cancel races keep stock conserved.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use localstack::StackOptions;
use reqwest::StatusCode;
use serde_json::json;
use shared::adapters::dynamodb::DynamoStore;
use shared::domain::{
    IdempotencyKey, Money, Order, OrderId, OrderItem, ProductId, Quantity, UserId,
};
use shared::ports::StockReserver;

use crate::support::{TestStack, next_ws_event, spawn_pipeline};

/// Fast retries and redrive so failure paths finish in seconds.
fn pipeline(options: &mut StackOptions) {
    options.config.payments.seed = Some(20261122);
    options.local.queue_visibility_timeout = Duration::from_secs(1);
    options.local.max_receive_count = 2;
    options.config.reconcile_after = Duration::from_secs(2);
}

/// Polls an order until it is terminal (or the deadline passes) and returns its status.
pub async fn settled_status(stack: &TestStack, user: &str, id: &str, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    let token = stack.token(user);
    loop {
        let reply = stack
            .send("GET", &format!("/orders/{id}"), Some(&token), None)
            .await;
        let status = reply.body["data"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if matches!(status.as_str(), "PAID" | "FAILED" | "CANCELLED")
            || tokio::time::Instant::now() > deadline
        {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Places an order like a well-behaved client: 409 LOCK_CONFLICT is retryable, and the same
/// idempotency key makes the retry safe.
async fn place_retrying(
    stack: &TestStack,
    user: &str,
    key: &str,
    lines: &[(&str, i64)],
) -> crate::support::Reply {
    for _ in 0..20 {
        let reply = stack.order(user, key, lines).await;
        if reply.code() != "LOCK_CONFLICT" {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("still LOCK_CONFLICT after 20 tries");
}

pub(crate) async fn sqs(stack: &TestStack) -> aws_sdk_sqs::Client {
    let mut config = stack.stack.config().clone();
    config.aws_endpoint_url = Some(stack.stack.sqs_endpoint());
    aws_sdk_sqs::Client::new(&shared::aws::sdk_config(&config).await)
}

/// 50 orders at a 50 % success rate all end PAID or FAILED, and every product's stock equals its
/// initial stock minus what PENDING, PROCESSING and PAID orders hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_orders_settle_and_stock_is_conserved() {
    let stack = spawn_pipeline(true, |c| {
        pipeline(c);
        c.config.payments.success_rate = 0.5;
    })
    .await;
    let products = [
        stack.product("3.00", 200).await,
        stack.product("7.50", 200).await,
    ];

    let replies = join_all((0..50).map(|i| {
        let (stack, products) = (&stack, &products);
        async move {
            let lines: Vec<(&str, i64)> = if i % 2 == 0 {
                vec![(products[0].as_str(), 1 + i % 3)]
            } else {
                vec![(products[0].as_str(), 1), (products[1].as_str(), 2)]
            };
            (
                format!("buyer-{i}"),
                place_retrying(stack, &format!("buyer-{i}"), "k", &lines).await,
            )
        }
    }))
    .await;

    let mut held: HashMap<String, u64> = HashMap::new();
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for (user, reply) in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let id = reply.body["data"]["id"].as_str().unwrap();
        let status = settled_status(&stack, user, id, Duration::from_secs(30)).await;
        assert!(
            matches!(status.as_str(), "PAID" | "FAILED"),
            "order {id} ended {status}"
        );
        if status == "PAID" {
            for item in reply.body["data"]["items"].as_array().unwrap() {
                *held
                    .entry(item["product_id"].as_str().unwrap().to_owned())
                    .or_default() += item["quantity"].as_u64().unwrap();
            }
        }
        *statuses.entry(status).or_default() += 1;
    }
    println!("settled: {statuses:?}");
    assert!(
        statuses.get("PAID").is_some_and(|n| *n > 5)
            && statuses.get("FAILED").is_some_and(|n| *n > 5),
        "a 0.5 rate gives both outcomes: {statuses:?}"
    );
    for product in &products {
        assert_eq!(
            stack.stock(product).await + held.get(product).copied().unwrap_or(0),
            200,
            "stock conserved for {product}"
        );
    }
}

/// Two extra deliveries of one order's message (plus the one placement sent) settle it once and
/// push one terminal event to the owner's socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_deliveries_settle_once() {
    let stack = spawn_pipeline(true, |c| {
        pipeline(c);
        c.config.payments.success_rate = 0.0;
    })
    .await;
    let product = stack.product("1.00", 10).await;
    let mut socket = stack.ws_connect(&stack.token("alice")).await.unwrap();
    let reply = stack.order("alice", "dup", &[(product.as_str(), 4)]).await;
    let id = reply.body["data"]["id"].as_str().unwrap().to_owned();
    let body = json!({"order_id": id, "user_id": "alice", "trace_id": "dup-test"}).to_string();
    let sqs = sqs(&stack).await;
    for _ in 0..2 {
        sqs.send_message()
            .queue_url(stack.stack.order_queue_url())
            .message_body(&body)
            .send()
            .await
            .unwrap();
    }

    assert_eq!(
        settled_status(&stack, "alice", &id, Duration::from_secs(15)).await,
        "FAILED"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stack.stock(&product).await,
        10,
        "a failed order gives its 4 units back exactly once"
    );
    let mut events = vec![];
    while let Some(event) = next_ws_event(&mut socket, Duration::from_millis(500)).await {
        events.push(event["event"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(
        events,
        ["OrderProcessing", "OrderFailed"],
        "one event per change"
    );
}

/// An unparseable message and one for an unknown order end in the DLQ after maxReceiveCount,
/// while a good order sent between them settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_reach_the_dlq_without_blocking_others() {
    let stack = spawn_pipeline(true, pipeline).await;
    let product = stack.product("1.00", 10).await;
    let sqs = sqs(&stack).await;
    let queue = stack.stack.order_queue_url();
    sqs.send_message()
        .queue_url(queue)
        .message_body("{this is not json")
        .send()
        .await
        .unwrap();
    let good = stack.order("alice", "good", &[(product.as_str(), 1)]).await;
    let ghost =
        json!({"order_id": "no-such-order", "user_id": "alice", "trace_id": "ghost"}).to_string();
    sqs.send_message()
        .queue_url(queue)
        .message_body(&ghost)
        .send()
        .await
        .unwrap();

    let id = good.body["data"]["id"].as_str().unwrap();
    let status = settled_status(&stack, "alice", id, Duration::from_secs(15)).await;
    assert!(matches!(status.as_str(), "PAID" | "FAILED"), "{status}");

    let mut dead = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while dead.len() < 2 && tokio::time::Instant::now() < deadline {
        let output = sqs
            .receive_message()
            .queue_url(stack.stack.dlq_url())
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in output.messages.unwrap_or_default() {
            dead.push(message.body.unwrap_or_default());
            sqs.delete_message()
                .queue_url(stack.stack.dlq_url())
                .receipt_handle(message.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    dead.sort();
    assert_eq!(dead, vec![ghost, "{this is not json".to_owned()]);
}

/// An order committed without its enqueue (the function died in between) still settles through
/// the reconciler.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_never_enqueued_is_settled_by_the_reconciler() {
    let stack = spawn_pipeline(true, pipeline).await;
    let product = stack.product("2.00", 10).await;
    let store = DynamoStore::new(stack.dynamodb().await, stack.stack.config().tables.clone());
    let item = OrderItem {
        product_id: ProductId::new(&product),
        quantity: Quantity::parse(3).unwrap(),
        unit_price: Money::parse("2.00").unwrap(),
        shards: shared::domain::ShardSplit::default(),
    };
    let (user, key) = (
        UserId::new("alice"),
        IdempotencyKey::parse("crash").unwrap(),
    );
    let order = Order::place(
        OrderId::for_key(&user, &key),
        user,
        key,
        vec![item],
        chrono::Utc::now(),
    );
    store.place_order(&order, "fingerprint").await.unwrap();

    let status = settled_status(&stack, "alice", order.id.as_str(), Duration::from_secs(20)).await;

    assert!(
        matches!(status.as_str(), "PAID" | "FAILED"),
        "the reconciler settled it: {status}"
    );
    let stock = stack.stock(&product).await;
    assert_eq!(stock + if status == "PAID" { 3 } else { 0 }, 10);
}

/// Cancels racing the consumer: every order ends in exactly one terminal status, a 200 cancel
/// means CANCELLED, and stock is conserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_racing_the_consumer_has_one_winner_per_order() {
    let stack = spawn_pipeline(true, pipeline).await;
    let product = stack.product("1.00", 500).await;
    let trials = 40;

    let outcomes = join_all((0..trials).map(|i| {
        let (stack, product) = (&stack, &product);
        async move {
            let user = format!("racer-{i}");
            let placed = place_retrying(stack, &user, "k", &[(product.as_str(), 2)]).await;
            let id = placed.body["data"]["id"].as_str().unwrap().to_owned();
            // Vary the head start so cancels land before, during and after the claim.
            tokio::time::sleep(Duration::from_millis((i % 8) * 15)).await;
            let cancel = stack.cancel(&user, &id).await;
            let status = settled_status(stack, &user, &id, Duration::from_secs(30)).await;
            (cancel, status)
        }
    }))
    .await;

    let mut tally: HashMap<String, usize> = HashMap::new();
    let mut held = 0;
    for (cancel, status) in &outcomes {
        match cancel.status {
            StatusCode::OK => assert_eq!(status, "CANCELLED"),
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(cancel.code(), "ORDER_NOT_CANCELLABLE");
                assert!(matches!(status.as_str(), "PAID" | "FAILED"), "{status}");
            }
            other => panic!("unexpected cancel answer {other}: {}", cancel.body),
        }
        if status == "PAID" {
            held += 2;
        }
        *tally.entry(status.clone()).or_default() += 1;
    }
    println!("cancel race outcomes: {tally:?}");
    assert_eq!(tally.values().sum::<usize>(), trials as usize);
    assert_eq!(stack.stock(&product).await + held, 500, "stock conserved");
}
