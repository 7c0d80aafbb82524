//! The local stack end to end: emulators, provisioning and the HTTP gateway, several stacks at once.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use localstack::{LocalSettings, Stack, StackOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn options(seed_products: bool) -> StackOptions {
    StackOptions {
        config: shared::Config::default(),
        local: LocalSettings::ephemeral(),
        seed_products,
        run_workers: true,
    }
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.expect("the gateway answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stacks_run_side_by_side_and_report_healthy() {
    let (first, second) = tokio::join!(Stack::start(options(false)), Stack::start(options(false)));
    let (first, second) = (first.unwrap(), second.unwrap());

    assert_ne!(first.http_url(), second.http_url());
    assert_ne!(first.aws_endpoint(), second.aws_endpoint());
    for stack in [&first, &second] {
        let response = get(&format!("{}/health", stack.http_url())).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"status": "ok", "services": {"dynamodb": "ok", "sqs": "ok"}})
        );
    }
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_get_api_gateways_404() {
    let stack = Stack::start(options(false)).await.unwrap();

    let unknown_path = get(&format!("{}/nope", stack.http_url())).await;
    let wrong_method = reqwest::Client::new()
        .patch(format!("{}/products/x", stack.http_url()))
        .send()
        .await
        .unwrap();

    for response in [unknown_path, wrong_method] {
        assert_eq!(response.status(), 404);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"message": "Not Found"})
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_trace_id_and_a_sent_one_is_echoed() {
    let stack = Stack::start(options(false)).await.unwrap();
    let client = reqwest::Client::new();

    let fresh = client
        .get(format!("{}/health", stack.http_url()))
        .send()
        .await
        .unwrap();
    let echoed = client
        .get(format!("{}/health", stack.http_url()))
        .header("x-trace-id", "trace-abc-123")
        .send()
        .await
        .unwrap();

    let fresh_id = fresh
        .headers()
        .get("x-trace-id")
        .expect("x-trace-id on every response")
        .to_str()
        .unwrap();
    // Without an X-Trace-Id, the root of the X-Ray trace the gateway started, as API Gateway does.
    assert!(
        shared::xray::TraceHeader::parse(&format!("Root={fresh_id}")).is_some(),
        "{fresh_id}"
    );
    assert_eq!(echoed.headers().get("x-trace-id").unwrap(), "trace-abc-123");
    assert!(echoed.headers().contains_key("apigw-requestid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_api_gateways_10_mb_limit_are_refused_with_413() {
    let stack = Stack::start(options(false)).await.unwrap();
    let mut connection =
        tokio::net::TcpStream::connect(stack.http_url().trim_start_matches("http://"))
            .await
            .unwrap();

    // Like curl with a large upload: announce the body and wait for the verdict before sending it.
    let head = format!(
        "POST /orders HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        10 * 1024 * 1024 + 1
    );
    connection.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        connection.read_to_end(&mut response),
    )
    .await
    .unwrap()
    .unwrap();

    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.ends_with(r#"{"message":"Request Entity Too Large"}"#),
        "{response}"
    );
}

/// A client that stops sending is given up on, as API Gateway gives up at 30 s (shortened here):
/// unfinished headers close the connection, an unfinished body is 408 and invokes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_stops_arriving_is_given_up_after_the_read_timeout() {
    let mut slow = options(false);
    slow.local.request_read_timeout = Duration::from_secs(1);
    let stack = Stack::start(slow).await.unwrap();
    let address = stack.http_url().trim_start_matches("http://").to_owned();
    // Reads until the server closes; how long that took and what it sent.
    let answer_of = |head: &'static str| {
        let address = address.clone();
        async move {
            let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
            connection.write_all(head.as_bytes()).await.unwrap();
            let started = std::time::Instant::now();
            let mut response = Vec::new();
            tokio::time::timeout(
                Duration::from_secs(10),
                connection.read_to_end(&mut response),
            )
            .await
            .expect("the gateway kept the connection open")
            .ok();
            (
                started.elapsed(),
                String::from_utf8_lossy(&response).into_owned(),
            )
        }
    };

    let (after, response) =
        answer_of("POST /orders HTTP/1.1\r\nhost: localhost\r\ncontent-ty").await;
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );
    assert!(!response.contains("201"), "{response}");

    let (after, response) = answer_of(
        "POST /orders HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"idem",
    )
    .await;
    assert!(
        after >= Duration::from_millis(900),
        "answered after {after:?}"
    );
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        response.ends_with(r#"{"message":"Request Timeout"}"#),
        "{response}"
    );

    // A request that arrives whole in time is served as usual.
    let (_, response) =
        answer_of("GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_products_are_served_and_provisioning_again_is_idempotent() {
    let stack = Stack::start(options(true)).await.unwrap();
    // A second stack on the first one's endpoint starts no emulator and provisions the same names again.
    let mut again = options(true);
    again.config.aws_endpoint_url = Some(stack.aws_endpoint());
    let second = Stack::start(again).await.unwrap();

    let response = get(&format!("{}/products/espresso-beans", second.http_url())).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["price"], "14.90");
    assert_eq!(second.order_queue_url(), stack.order_queue_url());
    assert_eq!(second.dlq_url(), stack.dlq_url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_queue_has_the_configured_redrive_and_the_consumer_dead_letters_poison() {
    let mut options = options(false);
    options.local.queue_visibility_timeout = Duration::from_secs(1);
    options.local.max_receive_count = 2;
    let stack = Stack::start(options).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&shared::aws::sdk_config(stack.config()).await);

    let attributes = sqs
        .get_queue_attributes()
        .queue_url(stack.order_queue_url())
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    // Not an OrderPlaced: the consumer the stack runs on the queue reports it failed at every delivery.
    sqs.send_message()
        .queue_url(stack.order_queue_url())
        .message_body("hello")
        .send()
        .await
        .unwrap();
    let mut dead = Vec::new();
    let give_up = std::time::Instant::now() + Duration::from_secs(20);
    while dead.is_empty() && std::time::Instant::now() < give_up {
        dead = sqs
            .receive_message()
            .queue_url(stack.dlq_url())
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
    }

    let policy: Value =
        serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(policy["maxReceiveCount"].as_u64(), Some(2));
    assert!(
        policy["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with(":orders-dlq")
    );
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "1");
    assert_eq!(
        attributes[&QueueAttributeName::QueueArn],
        stack.order_queue_arn()
    );
    assert_eq!(
        stack.config().order_queue_url.as_deref(),
        Some(stack.order_queue_url())
    );
    assert_eq!(dead.len(), 1, "the poison message reaches the DLQ");
    assert_eq!(dead[0].body(), Some("hello"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stack_stops_its_listeners() {
    let stack = Stack::start(options(false)).await.unwrap();
    let addresses = [stack.http_url(), stack.ws_url(), stack.aws_endpoint()].map(|url| {
        url.trim_start_matches("http://")
            .trim_start_matches("ws://")
            .to_owned()
    });

    drop(stack);

    for address in addresses {
        let mut closed = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(&address).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(closed, "{address} still accepts connections");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meter_counts_requests_and_the_capacity_dynamodb_charged() {
    let stack = Stack::start(options(true)).await.unwrap();
    let meter = format!("{}/_local/meter", stack.aws_endpoint());
    // Off by default (METER_CAPACITY), switched on for a while.
    let off: Value = get(&meter).await.json().await.unwrap();
    assert_eq!(off["capacity_metered"], false);
    get(&format!("{meter}?reset=true&capacity=on")).await;

    let product = get(&format!("{}/products/espresso-beans", stack.http_url())).await;
    assert_eq!(
        product.status(),
        200,
        "the answer is unchanged by the metering"
    );
    let seen: Value = get(&meter).await.json().await.unwrap();

    assert_eq!(seen["capacity_metered"], true);
    assert!(
        seen["requests"]["DynamoDB.GetItem"].as_u64().unwrap() >= 1,
        "{seen}"
    );
    assert!(
        seen["capacity"]["products"]["read"].as_f64().unwrap() > 0.0,
        "the product read was charged: {seen}"
    );
    let switched_off: Value = get(&format!("{meter}?capacity=off&reset=true"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(switched_off["capacity_metered"], false);
    stack.shutdown().await;
}
