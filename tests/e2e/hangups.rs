//! A client that hangs up mid-request (a buyer closing the tab, a load tool stopping) does not cut
//! the invocation short: API Gateway runs a Lambda invocation to its end whether or not its caller
//! still waits, and so does the local gateway. For each await point of a placement, the step is
//! slowed down (an injected latency), the client gives up during it, and the order must still be
//! placed, sent and settled at once: the reconciler, set to a delay of 10 minutes here, cannot be
//! what settles it.

use std::time::{Duration, Instant};

use localstack::{FaultKind, FaultRule, FaultService};
use shared::domain::{IdempotencyKey, OrderId, UserId};

use crate::payments::settled_status;
use crate::support::{order_body, spawn_pipeline};

/// How long the slowed step takes, and how long the client waits (well before the step ends).
const SLOW_STEP: Duration = Duration::from_millis(800);
const CLIENT_PATIENCE: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_hanging_up_at_any_step_of_a_placement_still_gets_its_order_settled_at_once() {
    let stack = spawn_pipeline(false, |options| {
        options.config.payments.seed = Some(20261207);
        options.config.rate_limit_per_minute = 1_000;
        options.config.reconcile_after = Duration::from_secs(600);
    })
    .await;
    let tables = stack.stack.config().tables.clone();
    let dynamodb = |operation: &str, table: &str| {
        FaultRule::new(FaultService::Dynamodb, Some(operation), FaultKind::Latency).on_table(table)
    };
    let steps: Vec<(&str, FaultRule, &str)> = vec![
        (
            "the rate limit's counter",
            dynamodb("UpdateItem", &tables.rate_limits),
            "dynamodb.UpdateItem.latency",
        ),
        (
            "the price read",
            dynamodb("BatchGetItem", &tables.products),
            "dynamodb.BatchGetItem.latency",
        ),
        (
            "the stock take",
            dynamodb("UpdateItem", &tables.products),
            "dynamodb.UpdateItem.latency",
        ),
        (
            "the order's put",
            dynamodb("PutItem", &tables.orders),
            "dynamodb.PutItem.latency",
        ),
        (
            "the enqueue",
            FaultRule::new(FaultService::Sqs, Some("SendMessage"), FaultKind::Latency),
            "sqs.SendMessage.latency",
        ),
        (
            "the take's release",
            dynamodb("UpdateItem", &tables.products).skip(1),
            "dynamodb.UpdateItem.latency",
        ),
    ];
    let impatient = reqwest::Client::builder()
        .timeout(CLIENT_PATIENCE)
        .build()
        .unwrap();
    let token = stack.token("leaver");
    for (i, (step, rule, injected_key)) in steps.into_iter().enumerate() {
        // A product of its own: the price read is not served from the instance's cache.
        let product = stack.product("5.00", 5).await;
        stack.stack.faults().clear();
        let injected = || {
            stack
                .stack
                .faults()
                .injected()
                .get(injected_key)
                .copied()
                .unwrap_or(0)
        };
        let before = injected();
        stack
            .stack
            .faults()
            .set(vec![rule.latency(SLOW_STEP).times(1)])
            .expect("a valid rule");
        let key = format!("k-leave-{i}");
        let started = Instant::now();
        let sent = impatient
            .post(format!("{}/orders", stack.stack.http_url()))
            .bearer_auth(&token)
            .json(&order_body(&key, &[(&product, 2)]))
            .send()
            .await;
        assert!(
            sent.as_ref().is_err_and(reqwest::Error::is_timeout),
            "{step}: the client hung up before the answer: {sent:?}"
        );
        assert_eq!(
            injected() - before,
            1,
            "{step}: the slowed step was reached"
        );
        let id = OrderId::for_key(
            &UserId::new("leaver"),
            &IdempotencyKey::parse(&key).unwrap(),
        );
        let status = settled_status(&stack, "leaver", id.as_str(), Duration::from_secs(8)).await;
        assert!(
            matches!(status.as_str(), "PAID" | "FAILED"),
            "{step}: the order is {status}, 8 s after its client hung up"
        );
        let stock = stack.stock(&product).await;
        let expected = if status == "PAID" { 3 } else { 5 };
        assert_eq!(stock, expected, "{step}: stock after a {status} order of 2");
        println!(
            "client gone during {step}: the order settled {status} {:?} after the request; stock {stock}",
            started.elapsed()
        );
    }
    stack.stack.shutdown().await;
}
