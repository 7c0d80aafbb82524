//! The WebSocket API through the real local stack with a real client (tokio-tungstenite): the
//! handshake's authentication, ping/pong, order events (cancel, and payment through the consumer)
//! reaching only their owner, and a stale connection record removed by the next push's 410 Gone.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::SinkExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::api::auth::mint_hs256;
use shared::domain::OrderStatus;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::{TestStack, WsClient, next_ws_event, spawn, spawn_pipeline};

/// How long a pushed event may take (the acceptance bound).
const EVENT_WITHIN: Duration = Duration::from_secs(5);
/// How long a socket that must receive nothing is watched.
const QUIET_FOR: Duration = Duration::from_secs(1);

type Item = HashMap<String, AttributeValue>;

fn refusal_status(result: Result<WsClient, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal of the handshake, got {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

/// The connection records of `user` in the stack's connections table.
async fn connection_records(stack: &TestStack, user: &str) -> Vec<Item> {
    let output = stack
        .dynamodb()
        .await
        .scan()
        .table_name(&stack.stack.config().tables.connections)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    output
        .items
        .unwrap_or_default()
        .into_iter()
        .filter(|item| item.get("user_id") == Some(&AttributeValue::S(user.into())))
        .collect()
}

fn connection_id(item: &Item) -> String {
    item["connection_id"].as_s().unwrap().clone()
}

/// Waits until `user` has exactly `expected` connection records.
async fn wait_for_records(stack: &TestStack, user: &str, expected: usize) -> Vec<Item> {
    let deadline = tokio::time::Instant::now() + EVENT_WITHIN;
    loop {
        let records = connection_records(stack, user).await;
        if records.len() == expected {
            return records;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user} has {} connection records, expected {expected}",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Places an order for `user` and cancels it through the HTTP API; the id of the cancelled order.
/// The payment consumer may take an order first (then cancel answers 422 and the order settles),
/// so this places again until a cancel wins the race.
async fn place_and_cancel(stack: &TestStack, user: &str, product: &str) -> String {
    for attempt in 0..20 {
        let placed = stack
            .order(user, &format!("ws-cancel-{attempt}"), &[(product, 1)])
            .await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
        let id = placed.body["data"]["id"].as_str().unwrap().to_owned();
        let cancelled = stack
            .send(
                "POST",
                &format!("/orders/{id}/cancel"),
                Some(&stack.token(user)),
                None,
            )
            .await;
        match (cancelled.status, cancelled.body["data"]["status"].as_str()) {
            (StatusCode::OK, Some("CANCELLED")) => return id,
            (StatusCode::UNPROCESSABLE_ENTITY, _) => continue,
            _ => panic!("cancel answered {}: {}", cancelled.status, cancelled.body),
        }
    }
    panic!("the payment consumer took every order before its cancel");
}

/// Reads `client`'s events until `OrderCancelled` for `order_id` arrives; events of other orders
/// (ones the consumer took in [`place_and_cancel`]) are skipped.
async fn cancelled_event(client: &mut WsClient, order_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + EVENT_WITHIN;
    loop {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = next_ws_event(client, wait)
            .await
            .unwrap_or_else(|| panic!("no OrderCancelled for {order_id} within {EVENT_WITHIN:?}"));
        if event["order_id"] == order_id && event["event"] == "OrderCancelled" {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_and_expired_tokens_are_refused_at_the_handshake_and_a_good_one_gets_pong() {
    let stack = spawn(true).await;
    let expired = mint_hs256(
        stack.stack.config().auth.jwt_secret.as_deref().unwrap(),
        "alice",
        None,
        chrono::Utc::now() - chrono::Duration::seconds(120),
    );
    let foreign = mint_hs256(
        "not-the-stack-secret",
        "alice",
        None,
        chrono::Utc::now() + chrono::Duration::hours(1),
    );

    let bad = stack.ws_connect(&foreign).await;
    let late = stack.ws_connect(&expired).await;
    let garbage = stack.ws_connect("not-a-jwt").await;
    let mut good = stack
        .ws_connect(&stack.token("alice"))
        .await
        .expect("a valid token connects");
    good.send(Message::Text(r#"{"action":"ping"}"#.into()))
        .await
        .unwrap();
    let pong = next_ws_event(&mut good, EVENT_WITHIN).await;

    assert_eq!(refusal_status(bad), 401);
    assert_eq!(refusal_status(late), 401);
    assert_eq!(refusal_status(garbage), 401);
    assert_eq!(pong, Some(json!({"event": "pong"})));
    assert_eq!(
        connection_records(&stack, "alice").await.len(),
        1,
        "only the accepted handshake is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_order_reaches_every_socket_of_its_owner_and_no_one_else() {
    let stack = spawn(true).await;
    let product = stack.product("12.50", 100).await;
    let mut phone = stack.ws_connect(&stack.token("alice")).await.unwrap();
    let mut laptop = stack.ws_connect(&stack.token("alice")).await.unwrap();
    let mut bob = stack.ws_connect(&stack.token("bob")).await.unwrap();

    let order_id = place_and_cancel(&stack, "alice", &product).await;
    let (on_phone, on_laptop) = tokio::join!(
        cancelled_event(&mut phone, &order_id),
        cancelled_event(&mut laptop, &order_id)
    );
    let on_bobs = next_ws_event(&mut bob, QUIET_FOR).await;

    for event in [&on_phone, &on_laptop] {
        assert_eq!(event["event"], "OrderCancelled");
        assert_eq!(event["order_id"], order_id.as_str());
        assert_eq!(event["status"], "CANCELLED");
        assert_eq!(event["total_amount"], "12.50");
        assert!(event["trace_id"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(event["timestamp"].as_str().is_some());
    }
    assert_eq!(on_bobs, None, "bob's socket stays silent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_or_failed_order_reaches_its_owner_through_the_consumer() {
    let stack = spawn_pipeline(true, |options| {
        options.config.payments.success_rate = 0.5;
    })
    .await;
    let product = stack.product("7.25", 100).await;
    let mut alice = stack.ws_connect(&stack.token("alice")).await.unwrap();
    let mut bob = stack.ws_connect(&stack.token("bob")).await.unwrap();

    let placed = stack
        .order("alice", "ws-paid", &[(product.as_str(), 2)])
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order_id = placed.body["data"]["id"].as_str().unwrap().to_owned();
    let trace_id = placed.headers["x-trace-id"].to_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + EVENT_WITHIN;
    let mut seen = vec![];
    let settled = loop {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = next_ws_event(&mut alice, wait)
            .await
            .unwrap_or_else(|| panic!("no terminal event within {EVENT_WITHIN:?}; saw {seen:?}"));
        seen.push(event["event"].clone());
        if event["order_id"] == order_id.as_str()
            && matches!(event["event"].as_str(), Some("OrderPaid" | "OrderFailed"))
        {
            break event;
        }
    };
    let stored = stack
        .send(
            "GET",
            &format!("/orders/{order_id}"),
            Some(&stack.token("alice")),
            None,
        )
        .await;
    let on_bobs = next_ws_event(&mut bob, QUIET_FOR).await;

    assert_eq!(seen.first(), Some(&json!("OrderProcessing")));
    // The gateway started an X-Ray trace, the request took its root as trace id, and the consumer's
    // push carries it: one trace from `POST /orders` to the last push.
    assert_eq!(
        shared::xray::TraceHeader::parse(&format!("Root={trace_id}"))
            .map(|header| header.root().to_owned()),
        Some(trace_id.clone()),
        "the request's trace id is an X-Ray root"
    );
    assert_eq!(settled["trace_id"], trace_id.as_str());
    assert_eq!(settled["status"], stored.body["data"]["status"]);
    let settled_status: OrderStatus = settled["status"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        (&settled["version"], &stored.body["data"]["version"]),
        (
            &json!(settled_status.version()),
            &json!(settled_status.version())
        ),
        "the terminal event and the stored order carry the version of their status"
    );
    assert_eq!(settled["total_amount"], "14.50");
    match settled["event"].as_str() {
        Some("OrderPaid") => assert_eq!(settled["status"], "PAID"),
        _ => {
            assert_eq!(settled["status"], "FAILED");
            assert!(settled["reason"].as_str().is_some(), "{settled}");
        }
    }
    assert_eq!(on_bobs, None, "bob's socket stays silent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_record_of_a_closed_socket_is_removed_by_the_next_push() {
    let stack = spawn(true).await;
    let product = stack.product("3.00", 100).await;
    let mut live = stack.ws_connect(&stack.token("alice")).await.unwrap();
    let first = wait_for_records(&stack, "alice", 1).await.remove(0);
    let mut closing = stack.ws_connect(&stack.token("alice")).await.unwrap();
    let records = wait_for_records(&stack, "alice", 2).await;
    let stale = records
        .into_iter()
        .find(|item| connection_id(item) != connection_id(&first))
        .unwrap();

    // The client closes; `$disconnect` deletes the record. API Gateway delivers `$disconnect` on a
    // best-effort basis, so put the record back as if it had been lost: only a push's 410 removes it.
    closing.close(None).await.unwrap();
    wait_for_records(&stack, "alice", 1).await;
    stack
        .dynamodb()
        .await
        .put_item()
        .table_name(&stack.stack.config().tables.connections)
        .set_item(Some(stale.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(connection_records(&stack, "alice").await.len(), 2);
    let management = management_client(&stack).await;
    let lookup = management
        .get_connection()
        .connection_id(connection_id(&stale))
        .send()
        .await;
    assert!(
        matches!(&lookup, Err(e) if e.as_service_error().is_some_and(|e| e.is_gone_exception())),
        "the closed connection is gone at the gateway: {lookup:?}"
    );

    let order_id = place_and_cancel(&stack, "alice", &product).await;
    let event = cancelled_event(&mut live, &order_id).await;
    let remaining = wait_for_records(&stack, "alice", 1).await;

    assert_eq!(event["status"], "CANCELLED");
    assert_eq!(
        connection_id(&remaining[0]),
        connection_id(&first),
        "the live connection keeps its record, the stale one is gone"
    );
}

/// The real aws-sdk-apigatewaymanagement client on the stack's management endpoint.
async fn management_client(stack: &TestStack) -> aws_sdk_apigatewaymanagement::Client {
    let config = stack.stack.config();
    let endpoint = config
        .ws_management_endpoint
        .clone()
        .expect("the stack sets its management endpoint");
    let sdk = shared::aws::sdk_config(config).await;
    aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build(),
    )
}

/// A message over API Gateway's 128 KB (or a frame over 32 KB) closes the connection with 1009
/// without reaching a route, and the connection's record goes with it; a message under passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_message_closes_the_connection_unserved() {
    let stack = spawn(false).await;
    let mut client = stack
        .ws_connect(&stack.token("bob"))
        .await
        .expect("a valid token connects");
    wait_for_records(&stack, "bob", 1).await;
    // Under the limits: an unknown action in 20 KB is answered, not closed.
    let padding = "x".repeat(20 * 1024);
    client
        .send(Message::Text(
            json!({"action": "ping", "padding": padding})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    assert_eq!(
        next_ws_event(&mut client, EVENT_WITHIN).await,
        Some(json!({"event": "pong"}))
    );
    // 200 KB in one message: the gateway closes the connection with 1009, as API Gateway does.
    let flood = "y".repeat(200 * 1024);
    let _ = client
        .send(Message::Text(
            json!({"action": "ping", "padding": flood})
                .to_string()
                .into(),
        ))
        .await;
    // What the client sees is a close frame saying why, never an answer.
    let ended = tokio::time::timeout(EVENT_WITHIN, async {
        loop {
            match futures::StreamExt::next(&mut client).await {
                Some(Ok(Message::Text(text))) => panic!("the oversized message was served: {text}"),
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                other @ (Some(Err(_)) | None) => panic!("no close frame: {other:?}"),
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(
        ended,
        Ok(Some(1009)),
        "the connection was not closed with 1009 (message too big)"
    );
    wait_for_records(&stack, "bob", 0).await;
}

/// Sends `count` pings as fast as the socket takes them while reading what comes back; the pongs
/// received and the close code, if the gateway closed the connection.
async fn flood(client: WsClient, count: usize) -> (usize, Option<u16>) {
    use futures::StreamExt;
    let (mut tx, mut rx) = client.split();
    let sender = tokio::spawn(async move {
        for _ in 0..count {
            let ping = Message::Text(json!({"action": "ping"}).to_string().into());
            if tx.send(ping).await.is_err() {
                return;
            }
        }
    });
    let mut pongs = 0;
    let mut closed_with = None;
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(frame) = rx.next().await {
            match frame {
                Ok(Message::Text(_)) => pongs += 1,
                Ok(Message::Close(frame)) => {
                    closed_with = frame.map(|f| u16::from(f.code));
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the flooded connection neither closed nor ended"
    );
    let _ = sender.await;
    (pongs, closed_with)
}

/// A client that sends 2,000 small messages as fast as it can is closed with 1008 (policy
/// violation) after the local per-connection budget (a burst of 100, then 50 a second), far from
/// all answered, and its record goes with `$disconnect`. A client pinging at 20 a second is served
/// every time, and another user's connection open through the flood still gets its pong.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_flood_closes_the_connection_and_spares_the_others() {
    let stack = spawn(false).await;
    let flooder = stack.ws_connect(&stack.token("bob")).await.unwrap();
    let mut bystander = stack.ws_connect(&stack.token("carol")).await.unwrap();
    let mut steady = stack.ws_connect(&stack.token("dave")).await.unwrap();
    wait_for_records(&stack, "bob", 1).await;
    wait_for_records(&stack, "carol", 1).await;

    let steady_client = tokio::spawn(async move {
        let mut answered = 0;
        for _ in 0..40 {
            steady
                .send(Message::Text(json!({"action": "ping"}).to_string().into()))
                .await
                .unwrap();
            if next_ws_event(&mut steady, EVENT_WITHIN).await == Some(json!({"event": "pong"})) {
                answered += 1;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        answered
    });
    let (pongs, closed_with) = flood(flooder, 2_000).await;
    eprintln!("flood: {pongs} of 2000 messages answered, closed with {closed_with:?}");

    assert_eq!(closed_with, Some(1008), "closed as a policy violation");
    assert!(pongs < 2_000, "the flood was all answered");
    assert!(
        pongs <= 200,
        "{pongs} messages answered past a burst of 100"
    );
    wait_for_records(&stack, "bob", 0).await;
    assert_eq!(
        steady_client.await.unwrap(),
        40,
        "the steady client was served every time"
    );
    bystander
        .send(Message::Text(json!({"action": "ping"}).to_string().into()))
        .await
        .unwrap();
    assert_eq!(
        next_ws_event(&mut bystander, EVENT_WITHIN).await,
        Some(json!({"event": "pong"}))
    );
    assert_eq!(wait_for_records(&stack, "carol", 1).await.len(), 1);
}
