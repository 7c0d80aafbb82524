//! The client every scenario shares: minted tokens, the HTTP API (products, orders, holds), the
//! order events of a user's WebSocket (both over TLS when the addresses say so, trusting what
//! [`Trust`] holds), and the order queue's depth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use futures::StreamExt;
use serde_json::{Value, json};
use shared::api::auth::mint_hs256;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::tls::{Socket, Trust};

/// How long one HTTP request may take before it counts as a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An answer of the API: status (0 for a transport error), JSON body, and how long it took.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status; 0 when the request failed before an answer (connection, timeout).
    pub status: u16,
    /// The body as JSON (`Null` when empty, a string when not JSON or on a transport error).
    pub body: Value,
    /// From sending the request to reading the whole body.
    pub latency: Duration,
}

impl Answer {
    /// The `error_code` of an error body, or "".
    pub fn code(&self) -> &str {
        self.body["error_code"].as_str().unwrap_or("")
    }

    /// A string member of `data`, or "".
    pub fn data_str(&self, key: &str) -> &str {
        self.body["data"][key].as_str().unwrap_or("")
    }

    /// `201 ...` / `409 INSUFFICIENT_STOCK` / `transport error`: for failure messages.
    pub fn summary(&self) -> String {
        match self.status {
            0 => format!("transport error: {}", self.body.as_str().unwrap_or("")),
            status => format!("{status} {}", self.code()).trim_end().to_owned(),
        }
    }
}

/// A user of this run, with its token.
#[derive(Debug, Clone)]
pub struct User {
    /// `load-<run id>-<name>`.
    pub id: String,
    /// A bearer token for it, valid 24 hours.
    pub token: String,
}

/// The HTTP API of one stack, for one run: every user and product it makes carries the run id.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    trust: Trust,
    base_url: Arc<str>,
    secret: Arc<str>,
    run_id: Arc<str>,
}

impl Api {
    /// A client for `base_url` signing HS256 tokens with `secret`; `run_id` keeps users and
    /// products of different runs apart. Over TLS it trusts the system's roots only.
    pub fn new(base_url: &str, secret: &str, run_id: &str) -> anyhow::Result<Self> {
        Self::with_trust(base_url, secret, run_id, Trust::system()?)
    }

    /// [`Api::new`] trusting `trust`'s certificates, over HTTPS and on its WebSockets.
    pub fn with_trust(
        base_url: &str,
        secret: &str,
        run_id: &str,
        trust: Trust,
    ) -> anyhow::Result<Self> {
        let http = trust
            .http_client()
            .pool_max_idle_per_host(256)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            http,
            trust,
            base_url: base_url.trim_end_matches('/').into(),
            secret: secret.into(),
            run_id: run_id.into(),
        })
    }

    /// This run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The certificates this client trusts.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The user `load-<run id>-<name>` with a fresh token.
    pub fn user(&self, name: &str) -> User {
        let id = format!("load-{}-{name}", self.run_id);
        let token = mint_hs256(
            &self.secret,
            &id,
            None,
            Utc::now() + chrono::Duration::hours(24),
        );
        User { id, token }
    }

    /// An admin token for this run.
    pub fn admin_token(&self) -> String {
        let id = format!("load-{}-admin", self.run_id);
        mint_hs256(
            &self.secret,
            &id,
            Some("admin"),
            Utc::now() + chrono::Duration::hours(24),
        )
    }

    /// Sends one request; never fails: a transport error is status 0.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = Instant::now();
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        }
        .await;
        let latency = started.elapsed();
        match result {
            Ok((status, text)) => Answer {
                status,
                body: if text.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).unwrap_or(Value::String(text))
                },
                latency,
            },
            Err(error) => Answer {
                status: 0,
                body: Value::String(error_chain(&error)),
                latency,
            },
        }
    }

    /// `GET path` with an optional token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// `POST path` with a token and JSON body.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    /// Creates a product as admin (its name carries the run id) and returns its id.
    pub async fn create_product(&self, name: &str, stock: u64) -> anyhow::Result<String> {
        self.create_sharded_product(name, stock, 1).await
    }

    /// [`Api::create_product`] with its stock over `stock_shards` items (1 to 64); the field is
    /// sent only when above 1, so that a stack from before stock shards still takes the request.
    pub async fn create_sharded_product(
        &self,
        name: &str,
        stock: u64,
        stock_shards: u32,
    ) -> anyhow::Result<String> {
        let mut body = json!({
            "name": format!("load {} {name}", self.run_id),
            "price": "1.00",
            "stock": stock,
        });
        if stock_shards > 1 {
            body["stock_shards"] = json!(stock_shards);
        }
        let answer = self.post("/products", &self.admin_token(), &body).await;
        if answer.status != 201 {
            bail!(
                "POST /products answered {}: {}",
                answer.summary(),
                answer.body
            );
        }
        Ok(answer.data_str("id").to_owned())
    }

    /// A product's live stock.
    pub async fn stock(&self, product_id: &str) -> anyhow::Result<u64> {
        let answer = self.get(&format!("/products/{product_id}"), None).await;
        if answer.status != 200 {
            bail!("GET /products/{product_id} answered {}", answer.summary());
        }
        answer.body["data"]["stock"]
            .as_u64()
            .context("a product without a numeric stock")
    }

    /// `POST /orders` for `quantity` units of one product.
    pub async fn place_order(
        &self,
        user: &User,
        key: &str,
        product_id: &str,
        quantity: u32,
    ) -> Answer {
        let body = json!({
            "idempotency_key": key,
            "items": [{"product_id": product_id, "quantity": quantity}],
        });
        self.post("/orders", &user.token, &body).await
    }

    /// Every order of `user`, following the cursors of `GET /orders`.
    pub async fn all_orders(&self, user: &User) -> anyhow::Result<Vec<Value>> {
        let mut orders = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/orders?limit=50&cursor={}", encode_query(cursor)),
                None => "/orders?limit=50".to_owned(),
            };
            let answer = self.get(&path, Some(&user.token)).await;
            if answer.status != 200 {
                bail!("GET {path} answered {}", answer.summary());
            }
            if let Some(page) = answer.body["data"].as_array() {
                orders.extend(page.iter().cloned());
            }
            match answer.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(orders),
            }
        }
    }
}

/// An error and its causes, `: `-separated: reqwest's own message names only the URL, while
/// the cause (a refused connection, `invalid peer certificate: UnknownIssuer`) is in its sources.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        // An I/O error wrapping a TLS error shows the same message as its source.
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// Percent-encodes everything but unreserved characters (cursors are base64 with `=`, `+`, `/`).
fn encode_query(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `GET url` as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    http.get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))
}

/// The WebSocket URL for `token`: the API's address (any `/?token=...` a banner printed is
/// dropped) with `?token=`, on the stage path `/` when the address has no path of its own.
pub fn ws_url_for(ws_base: &str, token: &str) -> String {
    let base = ws_base
        .split("?token=")
        .next()
        .unwrap_or(ws_base)
        .trim_end_matches('/');
    let has_path = base
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('/'));
    if has_path {
        format!("{base}?token={token}")
    } else {
        format!("{base}/?token={token}")
    }
}

/// When each order's terminal event (`OrderPaid`, `OrderFailed`, `OrderCancelled`) arrived.
pub type TerminalEvents = Arc<Mutex<HashMap<String, (Instant, String)>>>;

impl Api {
    /// Opens `token`'s WebSocket at `ws_base` (`ws://` or `wss://`, trusting what this client
    /// trusts).
    pub async fn open_websocket(&self, ws_base: &str, token: &str) -> anyhow::Result<Socket> {
        let url = ws_url_for(ws_base, token);
        self.trust
            .connect_websocket(&url)
            .await
            .map_err(|error| anyhow::anyhow!(error_chain(&error)))
            .with_context(|| format!("opening the WebSocket {ws_base} (trusting {})", self.trust))
    }

    /// Opens `token`'s WebSocket and records the arrival of every terminal order event into
    /// `events` until the task is aborted or the socket closes.
    pub async fn watch_terminal_events(
        &self,
        ws_base: &str,
        token: &str,
        events: TerminalEvents,
    ) -> anyhow::Result<JoinHandle<()>> {
        let socket = self.open_websocket(ws_base, token).await?;
        Ok(tokio::spawn(record_terminal_events(socket, events, false)))
    }

    /// [`Api::watch_terminal_events`] for a user who places one order: the task ends, closing
    /// the socket, once a terminal event has arrived, so that a sale of one-order users does not
    /// keep thousands of sockets open.
    pub async fn watch_first_terminal_event(
        &self,
        ws_base: &str,
        token: &str,
        events: TerminalEvents,
    ) -> anyhow::Result<JoinHandle<()>> {
        let socket = self.open_websocket(ws_base, token).await?;
        Ok(tokio::spawn(record_terminal_events(socket, events, true)))
    }
}

async fn record_terminal_events(mut socket: Socket, events: TerminalEvents, first_only: bool) {
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else {
            continue;
        };
        let arrived = Instant::now();
        let Ok(event) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let kind = event["event"].as_str().unwrap_or("");
        if matches!(kind, "OrderPaid" | "OrderFailed" | "OrderCancelled")
            && let Some(order_id) = event["order_id"].as_str()
        {
            events
                .lock()
                .expect("the events map is never poisoned")
                .entry(order_id.to_owned())
                .or_insert((arrived, kind.to_owned()));
            if first_only {
                return;
            }
        }
    }
}

/// The order queue of a stack, read through SQS for its depth.
#[derive(Clone)]
pub struct QueueProbe {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl QueueProbe {
    /// An SQS client on `aws_endpoint` for the queue at `url`.
    pub async fn new(aws_endpoint: &str, url: &str) -> Self {
        QueueProbe {
            sqs: sqs_client(aws_endpoint).await,
            url: url.to_owned(),
        }
    }

    /// Messages visible, in flight and delayed.
    pub async fn depth(&self) -> anyhow::Result<u64> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .context("GetQueueAttributes on the order queue")?;
        Ok(attributes
            .attributes()
            .map(|all| {
                all.values()
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>()
            })
            .unwrap_or(0))
    }

    /// Waits until the queue is empty (or `limit` passes); how long it took, `None` on timeout.
    pub async fn wait_empty(&self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if matches!(self.depth().await, Ok(0)) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

/// An SQS client for an emulator at `aws_endpoint` (us-east-1, dummy credentials).
pub async fn sqs_client(aws_endpoint: &str) -> aws_sdk_sqs::Client {
    let config = shared::Config {
        aws_endpoint_url: Some(aws_endpoint.to_owned()),
        ..shared::Config::default()
    };
    aws_sdk_sqs::Client::new(&shared::aws::sdk_config(&config).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls_keep_a_stage_path_and_drop_a_banner_placeholder() {
        assert_eq!(
            ws_url_for("ws://127.0.0.1:3001/?token=<JWT>", "t"),
            "ws://127.0.0.1:3001/?token=t"
        );
        assert_eq!(
            ws_url_for("ws://127.0.0.1:3001", "t"),
            "ws://127.0.0.1:3001/?token=t"
        );
        assert_eq!(
            ws_url_for("wss://abc.execute-api.us-east-1.amazonaws.com/prod", "t"),
            "wss://abc.execute-api.us-east-1.amazonaws.com/prod?token=t"
        );
    }

    #[test]
    fn cursors_are_percent_encoded() {
        assert_eq!(encode_query("a+b/c="), "a%2Bb%2Fc%3D");
    }
}
