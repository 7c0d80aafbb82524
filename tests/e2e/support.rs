//! Starting a private stack per test and talking to it like a client would.

use std::time::Duration;

use chrono::Utc;
use localstack::{LocalSettings, Stack, StackOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::api::auth::mint_hs256;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Runs an async test body once with `STOCK_LOCKS=on` and once with `off`.
#[macro_export]
macro_rules! both_lock_modes {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn with_stock_locks() {
                super::$scenario(true).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn without_stock_locks() {
                super::$scenario(false).await;
            }
        }
    };
}

/// A running stack and a client for it.
pub struct TestStack {
    pub stack: Stack,
    pub client: reqwest::Client,
    secret: String,
}

/// A stack for the synchronous API (no payment consumer, so orders stay PENDING) with the given
/// lock mode, no rate limit, and `adjust` applied to its options.
pub async fn spawn_with(locks: bool, adjust: impl FnOnce(&mut StackOptions)) -> TestStack {
    start(locks, false, adjust).await
}

/// The whole stack, payment consumer and reconciler included, with `adjust` applied.
pub async fn spawn_pipeline(locks: bool, adjust: impl FnOnce(&mut StackOptions)) -> TestStack {
    start(locks, true, adjust).await
}

async fn start(
    locks: bool,
    run_workers: bool,
    adjust: impl FnOnce(&mut StackOptions),
) -> TestStack {
    let mut options = StackOptions {
        config: shared::Config {
            rate_limit_per_minute: 0,
            ..shared::Config::default()
        },
        // `AWS_CONDITIONS=on cargo test ...` runs the tests under AWS's latency, transaction
        // conflicts and partition limits (docs/aws-conditions.md); the ports stay ephemeral.
        local: LocalSettings::ephemeral()
            .with_conditions_from_env()
            .expect("AWS_CONDITIONS and the settings beside it are valid"),
        seed_products: false,
        run_workers,
    };
    options.config.locks.enabled = locks;
    adjust(&mut options);
    let secret = options
        .config
        .auth
        .jwt_secret
        .clone()
        .expect("the test stack signs tokens with an HS256 secret");
    let stack = Stack::start(options).await.expect("the local stack starts");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    TestStack {
        stack,
        client,
        secret,
    }
}

/// Payments seeded with `seed`, redelivery after `visibility`, and a reconciler that looks after
/// 2 s, so that recovery paths finish in seconds.
pub fn quick_recovery(options: &mut StackOptions, seed: u64, visibility: Duration) {
    options.config.payments.seed = Some(seed);
    options.local.queue_visibility_timeout = visibility;
    options.local.max_receive_count = 10;
    options.config.reconcile_after = Duration::from_secs(2);
}

/// A stack with the given lock mode and no rate limit.
pub async fn spawn(locks: bool) -> TestStack {
    spawn_with(locks, |_| {}).await
}

/// A response as status and JSON body (`Null` when empty).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The `error_code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error_code"].as_str().unwrap_or("")
    }
}

impl TestStack {
    /// A valid token for `sub`.
    pub fn token(&self, sub: &str) -> String {
        mint_hs256(
            &self.secret,
            sub,
            None,
            Utc::now() + chrono::Duration::hours(1),
        )
    }

    /// A valid admin token.
    pub fn admin_token(&self) -> String {
        mint_hs256(
            &self.secret,
            "admin",
            Some("admin"),
            Utc::now() + chrono::Duration::hours(1),
        )
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.stack.http_url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.reply(request).await
    }

    /// Sends a prepared request.
    pub async fn reply(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("the gateway answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            body,
            headers,
        }
    }

    /// Creates a product as admin and returns its id.
    pub async fn product(&self, price: &str, stock: u32) -> String {
        let reply = self
            .send(
                "POST",
                "/products",
                Some(&self.admin_token()),
                Some(json!({"name": "Test product", "price": price, "stock": stock})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["data"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates a product with its stock over `shards` stock shards and returns its id.
    pub async fn sharded_product(&self, price: &str, stock: u32, shards: u16) -> String {
        let reply = self
            .send(
                "POST",
                "/products",
                Some(&self.admin_token()),
                Some(json!({"name": "Sharded product", "price": price, "stock": stock, "stock_shards": shards})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(reply.body["data"]["stock_shards"], shards, "{}", reply.body);
        reply.body["data"]["id"].as_str().unwrap().to_owned()
    }

    /// A product's live stock.
    pub async fn stock(&self, id: &str) -> u64 {
        let reply = self
            .send("GET", &format!("/products/{id}"), None, None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["data"]["stock"].as_u64().unwrap()
    }

    /// Places an order for `user`.
    pub async fn order(&self, user: &str, key: &str, items: &[(&str, i64)]) -> Reply {
        self.send(
            "POST",
            "/orders",
            Some(&self.token(user)),
            Some(order_body(key, items)),
        )
        .await
    }

    /// The listing of all products, `page` at a time (following cursors), as ids.
    pub async fn product_ids(&self, page: u32) -> Vec<String> {
        let mut ids = vec![];
        let mut path = format!("/products?limit={page}");
        loop {
            let reply = self.send("GET", &path, None, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            ids.extend(
                reply.body["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["id"].as_str().unwrap().to_owned()),
            );
            match reply.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/products?limit={page}&cursor={cursor}"),
                None => return ids,
            }
        }
    }

    /// `GET /orders` as `user`: the first page of their orders.
    pub async fn list_orders(&self, user: &str) -> Reply {
        self.send("GET", "/orders", Some(&self.token(user)), None)
            .await
    }

    /// `n` orders sent at once, the `i`-th by `buyer(i)` under `key`; the replies in that order.
    pub async fn orders_at_once(
        &self,
        n: usize,
        buyer: impl Fn(usize) -> String,
        key: &str,
        items: &[(&str, i64)],
    ) -> Vec<Reply> {
        futures::future::join_all((0..n).map(|i| {
            let user = buyer(i);
            async move { self.order(&user, key, items).await }
        }))
        .await
    }

    /// All of a user's orders (follows cursors).
    pub async fn all_orders(&self, user: &str) -> Vec<Value> {
        let token = self.token(user);
        let mut orders = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/orders?limit=50&cursor={c}"),
                None => "/orders?limit=50".to_owned(),
            };
            let reply = self.send("GET", &path, Some(&token), None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            orders.extend(reply.body["data"].as_array().unwrap().iter().cloned());
            match reply.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return orders,
            }
        }
    }

    /// A DynamoDB client on the stack's emulator, for arranging states no endpoint creates yet.
    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let mut config = self.stack.config().clone();
        config.aws_endpoint_url = Some(self.stack.aws_endpoint());
        aws_sdk_dynamodb::Client::new(&shared::aws::sdk_config(&config).await)
    }
}

/// A `POST /orders` body.
pub fn order_body(key: &str, items: &[(&str, i64)]) -> Value {
    json!({ "idempotency_key": key, "items": items.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>() })
}

/// A WebSocket client (tokio-tungstenite) connected to the stack's WebSocket API.
pub type WsClient = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl TestStack {
    /// Opens a WebSocket to the stack with `?token=`; a refused handshake is the error
    /// (`tungstenite::Error::Http` with the status `$connect` answered).
    pub async fn ws_connect(&self, token: &str) -> Result<WsClient, tungstenite::Error> {
        let url = format!("{}/?token={token}", self.stack.ws_url());
        tokio_tungstenite::connect_async(url)
            .await
            .map(|(client, _)| client)
    }
}

/// The next text frame as JSON, or `None` when none arrives within `wait` (or the socket ends).
pub async fn next_ws_event(client: &mut WsClient, wait: Duration) -> Option<Value> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, client.next())
            .await
            .ok()??;
        match frame.expect("the WebSocket reads cleanly") {
            Message::Text(text) => {
                return Some(
                    serde_json::from_str(&text).unwrap_or(Value::String(text.to_string())),
                );
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Retries a request while it answers 409 `LOCK_CONFLICT`, as a well-behaved client does (the
/// code is documented as retryable, and an idempotency key makes the retry safe).
pub async fn retry_lock_conflict<F, Fut>(mut attempt: F) -> Reply
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    for _ in 0..40 {
        let reply = attempt().await;
        if reply.code() != "LOCK_CONFLICT" {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("still LOCK_CONFLICT after 40 tries");
}

/// The id the API gives the order `user` places with `key`, computed as a payment provider
/// would: lowercase hex of the first 16 bytes of SHA-256(`<user>` "\n" `<key>`).
pub fn derived_order_id(user: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{user}\n{key}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// An `X-Webhook-Signature` value: `t=<timestamp>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
/// computed here independently of the implementation.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let code: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={code}")
}

/// A `POST /payments/webhook` body as raw text (the signature covers these exact bytes).
pub fn webhook_body(key: &str, order_id: &str, success: bool) -> String {
    if success {
        json!({"idempotency_key": key, "order_id": order_id, "status": "success"}).to_string()
    } else {
        json!({"idempotency_key": key, "order_id": order_id, "status": "failure", "reason": "card_declined"})
            .to_string()
    }
}

impl TestStack {
    /// Places a hold for `user` (retrying `LOCK_CONFLICT`).
    pub async fn hold(&self, user: &str, product: &str, quantity: i64) -> Reply {
        let token = self.token(user);
        retry_lock_conflict(|| {
            self.send(
                "POST",
                "/holds",
                Some(&token),
                Some(json!({"product_id": product, "quantity": quantity})),
            )
        })
        .await
    }

    /// `GET /holds/{id}` with `token`.
    pub async fn read_hold(&self, token: &str, id: &str) -> Reply {
        self.send("GET", &format!("/holds/{id}"), Some(token), None)
            .await
    }

    /// `GET /holds/{id}` with `token`, answered 200: the hold as served.
    pub async fn read_hold_data(&self, token: &str, id: &str) -> Value {
        let reply = self.read_hold(token, id).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "GET /holds/{id}: {}",
            reply.body
        );
        reply.body["data"].clone()
    }

    /// Places an order from a hold for `user` (retrying `LOCK_CONFLICT`).
    pub async fn order_from_hold(&self, user: &str, key: &str, hold_id: &str) -> Reply {
        let token = self.token(user);
        retry_lock_conflict(|| {
            self.send(
                "POST",
                "/orders",
                Some(&token),
                Some(json!({"idempotency_key": key, "hold_id": hold_id})),
            )
        })
        .await
    }

    /// Places an items order for `user` (retrying `LOCK_CONFLICT`).
    pub async fn order_retrying(&self, user: &str, key: &str, items: &[(&str, i64)]) -> Reply {
        retry_lock_conflict(|| self.order(user, key, items)).await
    }

    /// `POST /orders/{id}/cancel` as `user`.
    pub async fn cancel(&self, user: &str, id: &str) -> Reply {
        self.send(
            "POST",
            &format!("/orders/{id}/cancel"),
            Some(&self.token(user)),
            None,
        )
        .await
    }

    /// `GET /orders/{id}` as `user`.
    pub async fn read_order(&self, user: &str, id: &str) -> Reply {
        self.send(
            "GET",
            &format!("/orders/{id}"),
            Some(&self.token(user)),
            None,
        )
        .await
    }

    /// Polls an order until `done(status)` holds or `within` passes; the last status read
    /// (empty when the order could not be read).
    pub async fn order_status_when(
        &self,
        user: &str,
        id: &str,
        within: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let reply = self.read_order(user, id).await;
            let status = reply.body["data"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if done(&status) || tokio::time::Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The webhook secret the stack verifies with.
    pub fn webhook_secret(&self) -> String {
        self.stack
            .config()
            .webhook_secret
            .clone()
            .expect("the test stack has a webhook secret")
    }

    /// Delivers a webhook with the given `X-Webhook-Signature` (none when `None`) and no bearer
    /// token; the reply and the response body's exact bytes.
    pub async fn webhook_signed(&self, body: &str, signature: Option<&str>) -> (Reply, Vec<u8>) {
        let mut request = self
            .client
            .post(format!("{}/payments/webhook", self.stack.http_url()))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("X-Webhook-Signature", signature);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap().to_vec();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (
            Reply {
                status,
                body,
                headers,
            },
            bytes,
        )
    }

    /// Delivers a webhook signed now with the stack's secret.
    pub async fn webhook(&self, body: &str) -> (Reply, Vec<u8>) {
        let signature = webhook_signature(&self.webhook_secret(), Utc::now().timestamp(), body);
        self.webhook_signed(body, Some(&signature)).await
    }
}

/// Every event a client received, by order id: the statuses pushed, in order.
pub fn pushes_by_order(events: &[Value]) -> std::collections::HashMap<String, Vec<String>> {
    let mut by_order: std::collections::HashMap<String, Vec<String>> =
        std::collections::HashMap::new();
    for event in events {
        by_order
            .entry(event["order_id"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(event["status"].as_str().unwrap_or_default().to_owned());
    }
    by_order
}

/// Reads events from `client` until none arrives for `quiet`.
pub async fn drain_ws_events(client: &mut WsClient, quiet: Duration) -> Vec<Value> {
    let mut events = vec![];
    while let Some(event) = next_ws_event(client, quiet).await {
        events.push(event);
    }
    events
}

/// How many of `replies` have `status`.
pub fn count_status(replies: &[Reply], status: StatusCode) -> usize {
    replies.iter().filter(|r| r.status == status).count()
}

/// How many of `replies` carry the error code `code`.
pub fn count_code(replies: &[Reply], code: &str) -> usize {
    replies.iter().filter(|r| r.code() == code).count()
}
