//! The real `local-stack` binary, as `make run`, a process manager or a container runs it: SIGTERM
//! stops it as gracefully as Ctrl-C, and its log, piped, is plain text with no warning for the
//! outcomes a shop sees every minute.

mod common;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use localstack::testing::EmbeddedAws;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::{LocalStackProcess, item_count, ping, token};

/// How long a graceful stop may take: "a few seconds".
const STOP_WITHIN: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websockets_with_1001_runs_disconnect_and_exits_0() {
    // The stack runs against an endpoint of the test's own (the AWS_ENDPOINT_URL path), so the
    // connections table can still be read once the process has gone.
    let aws = EmbeddedAws::start("us-east-1").await.unwrap();
    let config = shared::Config {
        aws_endpoint_url: Some(aws.endpoint().to_owned()),
        ..shared::Config::default()
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&shared::aws::sdk_config(&config).await);
    let table = config.tables.connections.clone();
    let mut stack = tokio::task::spawn_blocking({
        let endpoint = aws.endpoint().to_owned();
        move || LocalStackProcess::start(&[("AWS_ENDPOINT_URL", &endpoint)])
    })
    .await
    .unwrap();
    let (mut client, _) = tokio_tungstenite::connect_async(stack.ws_url(&stack.user_token()))
        .await
        .expect("the banner's WebSocket URL accepts the banner's token");
    let pong = ping(&mut client).await;
    let stored_while_open = item_count(&dynamodb, &table).await;

    stack.terminate();
    // The close frame, then the end of the stream (reading on sends the close reply).
    let mut close = None;
    let read_to_end = async {
        while let Some(frame) = client.next().await {
            match frame {
                Ok(Message::Close(frame)) => close = Some(frame),
                Ok(_) => {}
                Err(error) => panic!("the connection broke instead of closing: {error}"),
            }
        }
    };
    tokio::time::timeout(STOP_WITHIN, read_to_end)
        .await
        .expect("the connection ends soon after SIGTERM");
    let (status, took, output) = tokio::task::spawn_blocking(move || {
        let (status, took) = stack.wait_for_exit(STOP_WITHIN);
        (status, took, stack.output())
    })
    .await
    .unwrap();
    let stored_after_stop = item_count(&dynamodb, &table).await;

    assert_eq!(pong.into_text().unwrap().as_str(), r#"{"event":"pong"}"#);
    assert_eq!(stored_while_open, 1, "$connect stored the connection");
    let close = close
        .expect("a close frame, not a reset")
        .expect("the close frame has a code");
    assert_eq!(close.code, CloseCode::Away, "{close:?}");
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(stored_after_stop, 0, "$disconnect deleted the connection");
    assert!(status.success(), "exit status {status}:\n{output}");
    assert!(took < STOP_WITHIN, "stopped in {took:?}");
    assert!(
        output.contains("SIGTERM: stopping the local stack"),
        "{output}"
    );
    aws.stop().await;
}

/// Sends `request` and returns the status and the JSON body.
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_outcomes_log_no_warning_and_piped_logs_have_no_colours() {
    // A low rate limit, so one user's burst meets 429s; everyone else stays far below it.
    let mut stack = tokio::task::spawn_blocking(|| {
        LocalStackProcess::start(&[("RATE_LIMIT_PER_MINUTE", "20")])
    })
    .await
    .unwrap();
    let http = stack.http_url();
    let (user, admin) = (stack.user_token(), stack.admin_token());
    let client = reqwest::Client::new();
    let as_user = |request: reqwest::RequestBuilder| request.bearer_auth(&user);
    let as_admin = |request: reqwest::RequestBuilder| request.bearer_auth(&admin);
    let order = |key: &str, product: &str, quantity: u32| json!({"idempotency_key": key, "items": [{"product_id": product, "quantity": quantity}]});

    // A WebSocket session with a keep-alive ping, open while the orders below settle.
    let (mut socket, _) = tokio_tungstenite::connect_async(stack.ws_url(&user))
        .await
        .unwrap();
    let pong = ping(&mut socket).await;

    let unknown_put = send(
        as_admin(client.put(format!("{http}/products/no-such-product")))
            .json(&json!({"name": "x"})),
    )
    .await;
    let unknown_delete = send(as_admin(
        client.delete(format!("{http}/products/no-such-product")),
    ))
    .await;
    let too_many = send(as_user(client.post(format!("{http}/orders"))).json(&order(
        "too-many",
        "espresso-beans",
        10_000,
    )))
    .await;
    let placed = send(as_user(client.post(format!("{http}/orders"))).json(&order(
        "one-bag",
        "espresso-beans",
        1,
    )))
    .await;
    let replayed = send(as_user(client.post(format!("{http}/orders"))).json(&order(
        "one-bag",
        "espresso-beans",
        1,
    )))
    .await;
    // Buyers racing for one product: lock retries and failed stock conditions inside.
    let racing: Vec<(u16, Value)> = futures::future::join_all((0..8).map(|i| {
        let buyer = token(&format!("racer-{i}"), None);
        let request = client
            .post(format!("{http}/orders"))
            .bearer_auth(buyer)
            .json(&order(&format!("race-{i}"), "espresso-beans", 60));
        send(request)
    }))
    .await;
    let order_id = placed.1["data"]["id"].as_str().unwrap().to_owned();
    let mut settled = Value::Null;
    for _ in 0..100 {
        let (_, body) = send(as_user(client.get(format!("{http}/orders/{order_id}")))).await;
        if matches!(body["data"]["status"].as_str(), Some("PAID" | "FAILED")) {
            settled = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cancel_settled = send(as_user(
        client.post(format!("{http}/orders/{order_id}/cancel")),
    ))
    .await;
    let burst = token("burst-user", None);
    let mut burst_statuses = Vec::new();
    for _ in 0..25 {
        let request = client.get(format!("{http}/orders")).bearer_auth(&burst);
        burst_statuses.push(send(request).await.0);
    }
    socket.send(Message::Close(None)).await.unwrap();
    while let Some(Ok(_)) = socket.next().await {}

    stack.terminate();
    let (status, output) = tokio::task::spawn_blocking(move || {
        let (status, _) = stack.wait_for_exit(STOP_WITHIN);
        (status, stack.output())
    })
    .await
    .unwrap();

    // The session went as planned...
    assert_eq!(pong.into_text().unwrap().as_str(), r#"{"event":"pong"}"#);
    assert_eq!(unknown_put.0, 404, "{unknown_put:?}");
    assert_eq!(unknown_delete.0, 404, "{unknown_delete:?}");
    assert_eq!(too_many.0, 409, "{too_many:?}");
    assert_eq!(too_many.1["error_code"], "INSUFFICIENT_STOCK");
    assert_eq!(placed.0, 201, "{placed:?}");
    assert_eq!(replayed.0, 200, "{replayed:?}");
    assert!(
        racing.iter().all(|(status, _)| [201, 409].contains(status)),
        "{racing:?}"
    );
    assert!(settled.is_object(), "the order settled");
    assert_eq!(cancel_settled.0, 422, "{cancel_settled:?}");
    assert_eq!(cancel_settled.1["error_code"], "ORDER_NOT_CANCELLABLE");
    assert!(burst_statuses.contains(&429), "{burst_statuses:?}");
    assert!(status.success(), "exit status {status}");
    // ...its lines were captured...
    assert!(
        output.contains("served") && output.contains(r#""DELETE /products/{id}""#),
        "{output}"
    );
    // ...and none of them is a warning (pretty, coloured or not, or JSON) or carries a colour code.
    let warnings: Vec<&str> = output
        .lines()
        .filter(|line| {
            line.contains(" WARN ")
                || line.contains(" WARN\x1b[")
                || line.contains(r#""level":"WARN""#)
        })
        .collect();
    assert!(warnings.is_empty(), "{}", warnings.join("\n"));
    assert!(
        !output.contains("\x1b["),
        "ANSI escapes in piped output:\n{output}"
    );
    // Keep-alive pings are served at debug level, not INFO.
    let pings: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("$default") && line.contains("served"))
        .collect();
    assert!(pings.is_empty(), "{}", pings.join("\n"));
}
