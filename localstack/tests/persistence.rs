//! `LOCAL_DATA_DIR`: the tables outlive the process. A graceful restart finds every product, order,
//! hold and stock unit; a `kill -9` in the middle of a flash sale loses no stock unit and no
//! answered order, and the orders whose queue messages died with the process are settled anyway
//! (the reconciler re-drives them from the order table).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use localstack::{LocalSettings, Stack, StackOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::domain::OrderStatus;

use common::{LocalStackProcess, token};

/// A directory of its own under the system's temporary directory, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        DataDir(std::env::temp_dir().join(format!("{name}-{}", uuid::Uuid::new_v4())))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Status and JSON body of one request, or the transport error's text.
async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(StatusCode, Value), String> {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// `send` that must get an answer.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    send(client, method, url, token, body.as_ref())
        .await
        .unwrap_or_else(|error| panic!("{url} did not answer: {error}"))
}

async fn create_product(client: &reqwest::Client, http: &str, stock: u32) -> String {
    let (status, body) = call(
        client,
        reqwest::Method::POST,
        &format!("{http}/products"),
        Some(&token("admin", Some("admin"))),
        Some(json!({"name": "Persisted product", "price": "10.00", "stock": stock})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"]["id"].as_str().unwrap().to_owned()
}

async fn stock(client: &reqwest::Client, http: &str, product: &str) -> i64 {
    let (status, body) = call(
        client,
        reqwest::Method::GET,
        &format!("{http}/products/{product}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["stock"].as_i64().unwrap()
}

/// Every order of `user`, read by an admin, page by page.
async fn orders_of(client: &reqwest::Client, http: &str, user: &str) -> Vec<Value> {
    let admin = token("admin", Some("admin"));
    let mut orders = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{http}/orders?user_id={user}&limit=50");
        if let Some(cursor) = &cursor {
            url.push_str("&cursor=");
            url.push_str(&percent_encoded(cursor));
        }
        let response = client
            .get(url)
            .bearer_auth(&admin)
            .send()
            .await
            .expect("the API answers");
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        orders.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return orders,
        }
    }
}

/// `text` as one query-string value.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Units of `product` that `order` holds while it is PENDING, PROCESSING or PAID.
/// The stock journal entries on `product`'s item (`adapters/dynamodb/stock_journal/`), read
/// straight from the embedded DynamoDB: `('o', order, units)` for a take, `('r', order, units)`
/// for a restore intent.
async fn journal_of(
    client: &reqwest::Client,
    aws: &str,
    product: &str,
) -> Vec<(char, String, i64)> {
    let body = serde_json::json!({
        "TableName": shared::config::TableNames::defaults().products,
        "Key": {"id": {"S": product}},
        "ConsistentRead": true,
    });
    let reply: Value = client
        .post(aws)
        .header("x-amz-target", "DynamoDB_20120810.GetItem")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-date", "20260101T000000Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut entries: Vec<(char, String, i64)> = reply["Item"]
        .as_object()
        .unwrap_or_else(|| panic!("the product item: {reply}"))
        .iter()
        .filter_map(|(name, value)| {
            let kind = match name.get(..2)? {
                "~t" => 'o',
                "~r" => 'r',
                _ => return None,
            };
            let mut fields = value["S"].as_str()?.split(' ');
            let owner = fields.next()?.strip_prefix('o')?.to_owned();
            let units = fields.next()?.parse().ok()?;
            Some((kind, owner, units))
        })
        .collect();
    entries.sort();
    entries
}

/// The order status a JSON order carries.
fn status_of(order: &Value) -> OrderStatus {
    order["status"].as_str().unwrap().parse().unwrap()
}

fn units_taken(order: &Value, product: &str) -> i64 {
    if !status_of(order).holds_stock() {
        return 0;
    }
    order["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["product_id"] == product)
        .map(|item| item["quantity"].as_i64().unwrap())
        .sum()
}

fn stack_options(data_dir: &Path) -> StackOptions {
    StackOptions {
        config: shared::Config {
            rate_limit_per_minute: 0,
            ..shared::Config::default()
        },
        local: LocalSettings {
            data_dir: Some(data_dir.to_owned()),
            ..LocalSettings::ephemeral()
        },
        seed_products: true,
        // Orders stay PENDING: what the restart must keep is exactly what was written.
        run_workers: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_data_dir_keeps_products_orders_holds_and_stock() {
    // Arrange: a product, five orders (one cancelled), a hold, and a seeded product sold from.
    let data_dir = DataDir::new("order-localstack-persistence");
    let client = client();
    let stack = Stack::start(stack_options(data_dir.path()))
        .await
        .expect("the first stack starts on a fresh data dir");
    assert!(
        data_dir.path().join(LocalSettings::DYNAMODB_FILE).is_file(),
        "the tables live in {}",
        data_dir.path().display()
    );
    let http = stack.http_url();
    let product = create_product(&client, &http, 50).await;
    let alice = token("alice", None);
    let mut placed = Vec::new();
    for quantity in 1..=5 {
        let (status, body) = call(
            &client,
            reqwest::Method::POST,
            &format!("{http}/orders"),
            Some(&alice),
            Some(
                json!({"idempotency_key": format!("before-restart-{quantity}"),
                        "items": [{"product_id": product, "quantity": quantity}]}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        placed.push(body["data"]["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = call(
        &client,
        reqwest::Method::POST,
        &format!("{http}/orders/{}/cancel", placed[1]),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &client,
        reqwest::Method::POST,
        &format!("{http}/holds"),
        Some(&alice),
        Some(json!({"product_id": product, "quantity": 4})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let hold = body["data"]["hold_id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &client,
        reqwest::Method::POST,
        &format!("{http}/orders"),
        Some(&alice),
        Some(json!({"idempotency_key": "sneakers",
                    "items": [{"product_id": "flash-sale-sneaker", "quantity": 3}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // 50 - (1 + 3 + 4 + 5) ordered - 4 held; the cancelled order's 2 came back.
    assert_eq!(stock(&client, &http, &product).await, 33);
    let orders_before = orders_of(&client, &http, "alice").await;
    stack.shutdown().await;

    // Act: a second stack on the same directory, seeding again.
    let stack = Stack::start(stack_options(data_dir.path()))
        .await
        .expect("a second start on the same data dir neither fails nor conflicts");
    let http = stack.http_url();

    // Assert: everything is there, as it was, and consistent.
    let orders_after = orders_of(&client, &http, "alice").await;
    let by_id = |orders: &[Value]| -> BTreeMap<String, Value> {
        orders
            .iter()
            .map(|o| (o["id"].as_str().unwrap().to_owned(), o.clone()))
            .collect()
    };
    assert_eq!(orders_after.len(), 6);
    assert_eq!(by_id(&orders_after), by_id(&orders_before));
    let statuses: Vec<_> = placed
        .iter()
        .map(|id| {
            by_id(&orders_after)[id]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        statuses,
        ["PENDING", "CANCELLED", "PENDING", "PENDING", "PENDING"]
    );
    let available = stock(&client, &http, &product).await;
    let (status, body) = call(
        &client,
        reqwest::Method::GET,
        &format!("{http}/holds/{hold}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "ACTIVE");
    let held = body["data"]["quantity"].as_i64().unwrap();
    let ordered: i64 = orders_after.iter().map(|o| units_taken(o, &product)).sum();
    assert_eq!(
        (available, ordered, held),
        (33, 13, 4),
        "stock conservation: 50 = available + ordered + held"
    );
    // Provisioning did not seed over the sold sneakers (10 seeded, 3 ordered).
    assert_eq!(stock(&client, &http, "flash-sale-sneaker").await, 7);
    // The idempotency records survived too: the same key replays the same order.
    let (status, body) = call(
        &client,
        reqwest::Method::POST,
        &format!("{http}/orders"),
        Some(&alice),
        Some(json!({"idempotency_key": "before-restart-3",
                    "items": [{"product_id": product, "quantity": 3}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["id"], placed[2].as_str());
    // And the restarted stack takes new orders from the same stock.
    let (status, body) = call(
        &client,
        reqwest::Method::POST,
        &format!("{http}/orders"),
        Some(&alice),
        Some(json!({"idempotency_key": "after-restart",
                    "items": [{"product_id": product, "quantity": 2}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(stock(&client, &http, &product).await, 31);
    stack.shutdown().await;
}

/// What a buyer finally got for one idempotency key.
#[derive(Debug, Clone)]
enum Outcome {
    /// 201 or 200, with the order id the answer named.
    Ordered {
        status: StatusCode,
        order_id: String,
    },
    /// 409 INSUFFICIENT_STOCK.
    SoldOut,
}

/// Where the buyers send their requests, and how far they got.
struct Sale {
    http: RwLock<String>,
    answered: AtomicUsize,
    unanswered: AtomicUsize,
    killed: AtomicBool,
}

/// One idempotency key of `user`, retried with the same key and body until the answer is final:
/// 2xx, or a 4xx that is not one of the retryable 409s (lock contention, the same key in flight).
async fn buy(client: &reqwest::Client, sale: &Sale, user: &str, body: Value) -> Outcome {
    let token = token(user, None);
    loop {
        let http = sale.http.read().unwrap().clone();
        match send(
            client,
            reqwest::Method::POST,
            &format!("{http}/orders"),
            Some(&token),
            Some(&body),
        )
        .await
        {
            Ok((status, answer)) if status.is_success() => {
                sale.answered.fetch_add(1, Ordering::SeqCst);
                assert!(
                    status == StatusCode::CREATED || status == StatusCode::OK,
                    "{status} {answer}"
                );
                return Outcome::Ordered {
                    status,
                    order_id: answer["data"]["id"].as_str().unwrap().to_owned(),
                };
            }
            Ok((status, answer)) if status == StatusCode::CONFLICT => {
                match answer["error_code"].as_str().unwrap_or("") {
                    "INSUFFICIENT_STOCK" => {
                        sale.answered.fetch_add(1, Ordering::SeqCst);
                        return Outcome::SoldOut;
                    }
                    "LOCK_CONFLICT" | "IDEMPOTENCY_IN_PROGRESS" => {}
                    other => panic!("unexpected 409 {other}: {answer}"),
                }
            }
            Ok((status, answer)) if status.is_client_error() => {
                panic!("a buyer got {status}: {answer}")
            }
            // A 5xx, or no answer at all (the process was killed, or is not back yet).
            Ok(_) | Err(_) => {
                sale.unanswered.fetch_add(1, Ordering::SeqCst);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_flash_sale_loses_no_unit_and_every_order_settles_after_restart() {
    const STOCK: i64 = 150;
    const BUYERS: usize = 24;
    const ORDERS_PER_BUYER: usize = 6;
    let data_dir = DataDir::new("order-localstack-crash");
    let env = [
        ("LOCAL_DATA_DIR", data_dir.path().to_str().unwrap()),
        ("RATE_LIMIT_PER_MINUTE", "0"),
        // Unsettled orders are re-enqueued 2 s after their last change, the reconciler runs
        // every 2 s; each new order waits 1 s in the queue (SQS DelaySeconds), so the orders of
        // the last second before the kill have their only message in the killed process.
        ("RECONCILE_AFTER_SECONDS", "2"),
        ("CANCEL_WINDOW_SECONDS", "1"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "warn"),
    ]
    .map(|(name, value)| (name, value.to_owned()));
    let first = LocalStackProcess::start(&env);
    let client = client();
    let product = create_product(&client, &first.http_url(), STOCK as u32).await;
    let sale = Arc::new(Sale {
        http: RwLock::new(first.http_url()),
        answered: AtomicUsize::new(0),
        unanswered: AtomicUsize::new(0),
        killed: AtomicBool::new(false),
    });

    // Act: 24 buyers, 6 orders each of 1 or 2 units (216 units asked for 150).
    let mut buyers = tokio::task::JoinSet::new();
    for buyer in 0..BUYERS {
        let sale = Arc::clone(&sale);
        let client = client.clone();
        let product = product.clone();
        buyers.spawn(async move {
            let user = format!("buyer-{buyer}");
            let mut outcomes = Vec::new();
            for n in 0..ORDERS_PER_BUYER {
                let key = format!("sale-{buyer}-{n}");
                let quantity = 1 + (buyer + n) % 2;
                let body = json!({"idempotency_key": key,
                                  "items": [{"product_id": product, "quantity": quantity}]});
                let outcome = buy(&client, &sale, &user, body).await;
                outcomes.push((user.clone(), key, outcome));
            }
            outcomes
        });
    }
    // Mid-sale: a third of the keys answered.
    let started = Instant::now();
    while sale.answered.load(Ordering::SeqCst) < BUYERS * ORDERS_PER_BUYER / 3 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sale stalled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_at = Utc::now();
    first.kill_9();
    sale.killed.store(true, Ordering::SeqCst);
    let answered_before_kill = sale.answered.load(Ordering::SeqCst);

    let second = tokio::task::spawn_blocking(move || LocalStackProcess::start(&env))
        .await
        .unwrap();
    let http = second.http_url();
    // Before the buyers come back: what the crash left. Only a FAILED payment moves this
    // product's stock now (the reconciler's first run is 2 s away), so a read of the orders
    // between two equal stock reads is a consistent picture.
    let aws = second.banner_value("  AWS endpoint").unwrap();
    let (at_restart, stock_at_restart, journal) = loop {
        let before = stock(&client, &http, &product).await;
        let journal = journal_of(&client, &aws, &product).await;
        let mut orders = Vec::new();
        for buyer in 0..BUYERS {
            orders.extend(orders_of(&client, &http, &format!("buyer-{buyer}")).await);
        }
        if stock(&client, &http, &product).await == before
            && journal_of(&client, &aws, &product).await == journal
        {
            break (orders, before, journal);
        }
    };
    let taken_at_restart: i64 = at_restart.iter().map(|o| units_taken(o, &product)).sum();
    // Units a killed writer left in the stock journal: taken for an order never written, or owed
    // back by a committed FAILED move (the reconciler's sweep settles both).
    let in_journal: i64 = journal
        .iter()
        .filter(|(kind, order_id, _)| {
            let order = at_restart.iter().find(|o| o["id"] == order_id.as_str());
            match kind {
                'o' => order.is_none(),
                _ => order.is_some_and(|o| o["status"] == "FAILED"),
            }
        })
        .map(|(_, _, units)| units)
        .sum();
    let unsettled_at_restart = at_restart
        .iter()
        .filter(|o| !status_of(o).is_terminal())
        .count();
    *sale.http.write().unwrap() = http.clone();
    let mut outcomes = Vec::new();
    while let Some(done) = buyers.join_next().await {
        outcomes.extend(done.expect("a buyer finished"));
    }

    // Assert: every unsettled order settles with no message that survived the kill.
    let settle_started = Instant::now();
    let orders = loop {
        let mut orders = Vec::new();
        for buyer in 0..BUYERS {
            orders.extend(orders_of(&client, &http, &format!("buyer-{buyer}")).await);
        }
        let unsettled = orders
            .iter()
            .filter(|o| !status_of(o).is_terminal())
            .count();
        if unsettled == 0 {
            break orders;
        }
        assert!(
            settle_started.elapsed() < Duration::from_secs(30),
            "{unsettled} orders still unsettled 30 s after the sale"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let settled_after = settle_started.elapsed();
    let available = stock(&client, &http, &product).await;
    let paid: i64 = orders.iter().map(|o| units_taken(o, &product)).sum();
    let mut per_key: HashMap<(String, String), Vec<&Value>> = HashMap::new();
    for order in &orders {
        per_key
            .entry((
                order["user_id"].as_str().unwrap().to_owned(),
                order["idempotency_key"].as_str().unwrap().to_owned(),
            ))
            .or_default()
            .push(order);
    }
    let committed_before_kill = orders
        .iter()
        .filter(|o| {
            chrono::DateTime::parse_from_rfc3339(o["created_at"].as_str().unwrap()).unwrap()
                <= killed_at
        })
        .count();
    let replayed = outcomes
        .iter()
        .filter(|(_, _, outcome)| {
            matches!(outcome, Outcome::Ordered { status, .. } if *status == StatusCode::OK)
        })
        .count();
    let sold_out = outcomes
        .iter()
        .filter(|(_, _, outcome)| matches!(outcome, Outcome::SoldOut))
        .count();
    let paid_orders = orders.iter().filter(|o| o["status"] == "PAID").count();
    let failed_orders = orders.iter().filter(|o| o["status"] == "FAILED").count();
    println!(
        "crash mid-sale: stock {STOCK}, {} keys; {answered_before_kill} answered before the kill, \
         {} attempts without an answer (retried); at restart {} orders in the table ({committed_before_kill} \
         committed before the kill), {unsettled_at_restart} PENDING/PROCESSING, stock \
         {stock_at_restart}, {taken_at_restart} units in orders, {in_journal} in the stock journal; \
         after the sale {} orders \
         ({replayed} answers were replays, 200), {sold_out} keys sold out; all settled {:.1} s \
         after the sale: {paid_orders} PAID, {failed_orders} FAILED; stock {available}, \
         {paid} units paid",
        outcomes.len(),
        sale.unanswered.load(Ordering::SeqCst),
        at_restart.len(),
        orders.len(),
        settled_after.as_secs_f64(),
    );

    assert!(sale.killed.load(Ordering::SeqCst));
    assert_eq!(outcomes.len(), BUYERS * ORDERS_PER_BUYER);
    assert_eq!(
        stock_at_restart + taken_at_restart + in_journal,
        STOCK,
        "no unit lost or duplicated by the kill"
    );
    assert_eq!(available + paid, STOCK, "no unit lost or duplicated in all");
    assert!(
        unsettled_at_restart > 0,
        "the kill left no unsettled order: it did not hit the sale mid-flight"
    );
    for (user, key, outcome) in &outcomes {
        let found = per_key
            .get(&(user.clone(), key.clone()))
            .map_or(&[][..], Vec::as_slice);
        match outcome {
            Outcome::Ordered { order_id, .. } => {
                assert_eq!(found.len(), 1, "{user} {key}: {found:?}");
                assert_eq!(found[0]["id"], order_id.as_str(), "{user} {key}");
            }
            Outcome::SoldOut => assert!(found.is_empty(), "{user} {key}: {found:?}"),
        }
    }
    assert_eq!(
        orders.len(),
        outcomes
            .iter()
            .filter(|(_, _, o)| matches!(o, Outcome::Ordered { .. }))
            .count(),
        "every order in the table was answered to its buyer"
    );
    drop(second);
}
