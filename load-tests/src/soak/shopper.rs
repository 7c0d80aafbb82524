//! The shoppers: each a user who places orders (some retried with the same key, some over two
//! products), cancels, holds and checks out (or lets holds expire), sends payment webhooks before
//! and after its orders and duplicate order messages, retrying what a real client retries, and
//! writes down in its [`Book`] every answer the checkpoints check.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use shared::domain::{IdempotencyKey, OrderId, UserId};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::Api;
use crate::client::{Answer, User, ws_url_for};

/// Tries of one request before a shopper gives up on it (the answer stays unknown).
const MAX_TRIES: u32 = 40;

/// What every shopper, the stock watcher and the checkpoints share.
pub(crate) struct World {
    pub api: Api,
    pub base_url: String,
    pub ws_url: String,
    pub sqs: aws_sdk_sqs::Client,
    /// The stack's AWS endpoint, where a checkpoint reads the stock journal.
    pub aws_endpoint: String,
    pub order_queue_url: String,
    pub webhook_secret: String,
    pub http: reqwest::Client,
    pub products: Vec<String>,
    /// Shoppers hold it for reading during each operation; a checkpoint takes it for writing,
    /// which waits for operations in flight and holds new ones back.
    pub gate: RwLock<()>,
    pub stop: AtomicBool,
    pub books: Vec<Arc<Mutex<Book>>>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl World {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        api: Api,
        base_url: String,
        ws_url: String,
        sqs: aws_sdk_sqs::Client,
        aws_endpoint: String,
        order_queue_url: String,
        webhook_secret: String,
        products: Vec<String>,
        shoppers: usize,
    ) -> anyhow::Result<Self> {
        let books = (0..shoppers)
            .map(|index| Arc::new(Mutex::new(Book::new(api.user(&format!("s{index}-r0"))))))
            .collect();
        Ok(World {
            api,
            base_url,
            ws_url,
            sqs,
            aws_endpoint,
            order_queue_url,
            webhook_secret,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            products,
            gate: RwLock::new(()),
            stop: AtomicBool::new(false),
            books,
            counts: Mutex::new(BTreeMap::new()),
        })
    }

    /// Adds one to `what`.
    pub(crate) fn count(&self, what: &'static str) {
        *lock(&self.counts).entry(what).or_default() += 1;
    }

    /// Every count so far.
    pub(crate) fn counts(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.counts).clone()
    }

    /// Sends until the answer is one a client would not retry (409 `LOCK_CONFLICT`, any 5xx or a
    /// transport error are retried with the same request, so the same idempotency key), at most
    /// [`MAX_TRIES`] times; the last answer.
    async fn until_answered<F, Fut>(&self, mut send: F) -> Answer
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Answer>,
    {
        let mut answer = send().await;
        for attempt in 1..MAX_TRIES {
            if !retryable(&answer) {
                return answer;
            }
            self.count("retries");
            let pause = 20 * u64::from(attempt.min(15));
            tokio::time::sleep(Duration::from_millis(pause)).await;
            answer = send().await;
        }
        if retryable(&answer) {
            self.count("gave up");
        }
        answer
    }

    /// `POST /payments/webhook`, signed now with the stack's secret.
    async fn webhook(&self, body: &Value) -> Answer {
        let raw = body.to_string();
        let signature = webhook_signature(&self.webhook_secret, Utc::now().timestamp(), &raw);
        let started = Instant::now();
        let result = async {
            let response = self
                .http
                .post(format!("{}/payments/webhook", self.base_url))
                .header("Content-Type", "application/json")
                .header("X-Webhook-Signature", signature)
                .body(raw)
                .send()
                .await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        }
        .await;
        match result {
            Ok((status, text)) => Answer {
                status,
                body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                latency: started.elapsed(),
            },
            Err(error) => Answer {
                status: 0,
                body: Value::String(error.to_string()),
                latency: started.elapsed(),
            },
        }
    }
}

fn retryable(answer: &Answer) -> bool {
    answer.status == 0
        || answer.status >= 500
        || (answer.status == 409 && answer.code() == "LOCK_CONFLICT")
}

/// One shopper's round between two checkpoints: who it is, what it was answered, what its
/// WebSocket received. Reset at each checkpoint, so that memory and checking stay flat.
pub(crate) struct Book {
    pub user: User,
    next_key: u64,
    /// Idempotency key -> the order id a 201 or 200 gave.
    pub acknowledged: HashMap<String, String>,
    orders: Vec<String>,
    open_holds: Vec<String>,
    /// Every hold answered 201 this round.
    pub holds: Vec<String>,
    early_keys: Vec<String>,
    /// Order id -> (event, status, version) pushed to the WebSocket, in arrival order.
    pub events: HashMap<String, Vec<(String, String, u64)>>,
    socket: Option<JoinHandle<()>>,
}

impl Book {
    fn new(user: User) -> Self {
        Book {
            user,
            next_key: 0,
            acknowledged: HashMap::new(),
            orders: Vec::new(),
            open_holds: Vec::new(),
            holds: Vec::new(),
            early_keys: Vec::new(),
            events: HashMap::new(),
            socket: None,
        }
    }

    fn fresh_key(&mut self, prefix: &str) -> String {
        self.next_key += 1;
        format!("{}-{prefix}-{}", self.user.id, self.next_key)
    }

    fn pick<'a>(list: &'a [String], rng: &mut StdRng) -> Option<&'a String> {
        (!list.is_empty()).then(|| &list[rng.random_range(0..list.len())])
    }
}

/// Locks a mutex whose holders never panic while holding it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts the next round for `book`: a new user, its WebSocket open (the old one closed first,
/// so that no push reaches two sockets of the same shopper).
pub(crate) async fn new_round(world: &World, book: &Arc<Mutex<Book>>, user: User) {
    let old = lock(book).socket.take();
    if let Some(old) = old {
        old.abort();
        let _ = old.await;
    }
    *lock(book) = Book::new(user);
    let token = lock(book).user.token.clone();
    let url = ws_url_for(&world.ws_url, &token);
    // Faults are off during a checkpoint, so the handshake fails only if the stack is broken;
    // without a socket the round checks no pushes for this shopper.
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
        world.count("websocket refused");
        return;
    };
    let writer = Arc::clone(book);
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            let Message::Text(text) = frame else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let (Some(order_id), Some(kind)) =
                (event["order_id"].as_str(), event["event"].as_str())
            else {
                continue;
            };
            let status = event["status"].as_str().unwrap_or_default().to_owned();
            let version = event["version"].as_u64().unwrap_or_default();
            lock(&writer)
                .events
                .entry(order_id.to_owned())
                .or_default()
                .push((kind.to_owned(), status, version));
        }
    });
    lock(book).socket = Some(reader);
}

/// Shopper `index` until the world stops, seeded from `seed` so that a replay makes the same
/// choices (not with the same timing).
pub(crate) async fn shop(world: Arc<World>, index: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(
        seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    );
    let book = Arc::clone(&world.books[index]);
    while !world.stop.load(Ordering::Acquire) {
        {
            let _open = world.gate.read().await;
            if world.stop.load(Ordering::Acquire) {
                break;
            }
            act(&world, &book, &mut rng).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..60))).await;
    }
}

/// One random operation.
async fn act(world: &World, book: &Mutex<Book>, rng: &mut StdRng) {
    let product = world.products[rng.random_range(0..world.products.len())].clone();
    let quantity = rng.random_range(1..=3_u32);
    let token = lock(book).user.token.clone();
    match rng.random_range(0..100) {
        0..28 => {
            let key = lock(book).fresh_key("order");
            let mut items = vec![json!({"product_id": product, "quantity": quantity})];
            let second = &world.products[rng.random_range(0..world.products.len())];
            if *second != product && rng.random_bool(0.3) {
                items.push(json!({"product_id": second, "quantity": 1}));
            }
            let body = json!({"idempotency_key": key, "items": items});
            place(world, book, &token, &key, &body, rng.random_bool(0.15)).await;
        }
        28..38 => {
            let Some(id) = Book::pick(&lock(book).orders, rng).cloned() else {
                return;
            };
            world.count("cancel");
            let path = format!("/orders/{id}/cancel");
            world
                .until_answered(|| {
                    world
                        .api
                        .send(reqwest::Method::POST, &path, Some(&token), None)
                })
                .await;
        }
        38..54 => {
            world.count("hold");
            let body = json!({"product_id": product, "quantity": quantity});
            // Not idempotent: only a refusal that took nothing (LOCK_CONFLICT) is retried; a hold
            // whose answer was lost expires on its own.
            let mut answer = world.api.post("/holds", &token, &body).await;
            for _ in 0..10 {
                if answer.code() != "LOCK_CONFLICT" {
                    break;
                }
                world.count("retries");
                tokio::time::sleep(Duration::from_millis(30)).await;
                answer = world.api.post("/holds", &token, &body).await;
            }
            if answer.status == 201 {
                let id = answer.data_str("hold_id").to_owned();
                let mut book = lock(book);
                book.holds.push(id.clone());
                book.open_holds.push(id);
            }
        }
        54..66 => {
            // A third of the holds are left to expire: checkouts take the others, in any order.
            let hold = {
                let mut book = lock(book);
                if book.open_holds.is_empty() || rng.random_bool(0.33) {
                    return;
                }
                let at = rng.random_range(0..book.open_holds.len());
                book.open_holds.swap_remove(at)
            };
            let key = lock(book).fresh_key("checkout");
            let body = json!({"idempotency_key": key, "hold_id": hold});
            world.count("checkout");
            place(world, book, &token, &key, &body, false).await;
        }
        66..78 => {
            let Some(id) = Book::pick(&lock(book).orders, rng).cloned() else {
                return;
            };
            let body = webhook_body(&lock(book).fresh_key("evt"), &id, rng.random_bool(0.6));
            world.count("webhook");
            world.until_answered(|| world.webhook(&body)).await;
        }
        78..85 => {
            let (key, user_id) = {
                let mut book = lock(book);
                let key = book.fresh_key("early");
                book.early_keys.push(key.clone());
                (key, book.user.id.clone())
            };
            let id = derived_order_id(&user_id, &key);
            let body = webhook_body(&lock(book).fresh_key("evt"), &id, rng.random_bool(0.6));
            world.count("webhook before its order");
            world.until_answered(|| world.webhook(&body)).await;
        }
        85..92 => {
            let key = {
                let mut book = lock(book);
                if book.early_keys.is_empty() {
                    return;
                }
                let at = rng.random_range(0..book.early_keys.len());
                book.early_keys.swap_remove(at)
            };
            let body = json!({"idempotency_key": key,
                "items": [{"product_id": product, "quantity": quantity}]});
            world.count("order after its webhook");
            place(world, book, &token, &key, &body, false).await;
        }
        _ => {
            let (id, user_id) = {
                let book = lock(book);
                let Some(id) = Book::pick(&book.orders, rng).cloned() else {
                    return;
                };
                (id, book.user.id.clone())
            };
            world.count("duplicate delivery");
            let message = json!({"order_id": id, "user_id": user_id, "trace_id": "soak-duplicate"});
            let sent = world
                .sqs
                .send_message()
                .queue_url(&world.order_queue_url)
                .message_body(message.to_string())
                .send()
                .await;
            if sent.is_err() {
                world.count("duplicate delivery refused");
            }
        }
    }
}

/// `POST /orders` with `body` until answered; with `twice`, the same request again as a client
/// that lost the first answer would, which must name the same order. Records the order.
async fn place(
    world: &World,
    book: &Mutex<Book>,
    token: &str,
    key: &str,
    body: &Value,
    twice: bool,
) {
    world.count("order");
    let send = || world.api.post("/orders", token, body);
    let answer = world.until_answered(send).await;
    if !matches!(answer.status, 200 | 201) {
        return;
    }
    let id = answer.data_str("id").to_owned();
    {
        let mut book = lock(book);
        book.acknowledged.insert(key.to_owned(), id.clone());
        book.orders.push(id.clone());
    }
    if twice {
        world.count("order retried with its key");
        let again = world.until_answered(send).await;
        if matches!(again.status, 200 | 201) && again.data_str("id") != id {
            // Recorded under a key of its own, so the exactly-once check reports it.
            lock(book)
                .acknowledged
                .insert(format!("{key} (again)"), again.data_str("id").to_owned());
        }
    }
}

/// A webhook body for `order_id`.
fn webhook_body(key: &str, order_id: &str, success: bool) -> Value {
    if success {
        json!({"idempotency_key": key, "order_id": order_id, "status": "success"})
    } else {
        json!({"idempotency_key": key, "order_id": order_id, "status": "failure", "reason": "card_declined"})
    }
}

/// The order id the API derives from (user, key), as a payment provider computes it
/// (`OrderId::for_key`); the soak's users and keys are valid ids.
pub(crate) fn derived_order_id(user: &str, key: &str) -> String {
    let user = UserId::parse(user).expect("the soak's user ids are valid");
    let key = IdempotencyKey::parse(key).expect("the soak's keys are valid");
    OrderId::for_key(&user, &key).as_str().to_owned()
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as the payment provider signs.
fn webhook_signature(secret: &str, timestamp: i64, body: &str) -> String {
    shared::domain::webhook::sign(secret.as_bytes(), timestamp, body.as_bytes())
}
