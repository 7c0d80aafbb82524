//! The `ws-listen` binary against a real local stack: an order event delivered after a newer one
//! for the same order (a push that came late, as the soak saw) is not printed as the order's
//! current state, and a note on stderr says it was skipped.

mod common;
mod support;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use localstack::{LocalSettings, Stack, StackOptions};
use serde_json::{Value, json};
use shared::domain::OrderStatus;

const WS_LISTEN: &str = env!("CARGO_BIN_EXE_ws-listen");

/// How long a step (connecting, an order settling, the listener exiting) may take.
const WITHIN: Duration = Duration::from_secs(15);

/// A running `ws-listen` with its stdout and stderr collected apart; dropping it kills it.
struct Listener {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Listener {
    fn start(url: &str) -> Listener {
        let mut child = Command::new(WS_LISTEN)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ws-listen starts");
        let (stdout, stderr) = Default::default();
        common::collect(child.stdout.take().unwrap(), &stdout);
        common::collect(child.stderr.take().unwrap(), &stderr);
        Listener {
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The events printed for `order_id`, in the order they were printed.
    fn printed_events(&self, order_id: &str) -> Vec<Value> {
        self.stdout()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["order_id"] == order_id)
            .collect()
    }

    /// Waits until `done` holds for this listener; fails with what it printed.
    async fn wait_for(&self, what: &str, done: impl Fn(&Listener) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < WITHIN,
                "no {what} within {WITHIN:?}; stdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ids of `user`'s open connections, from the stack's connections table.
async fn connection_ids(stack: &Stack, user: &str) -> Vec<String> {
    support::dynamodb_client(&stack.aws_endpoint())
        .scan()
        .table_name(&stack.config().tables.connections)
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
        .into_iter()
        .filter(|item| item.get("user_id") == Some(&AttributeValue::S(user.into())))
        .map(|item| item["connection_id"].as_s().unwrap().clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_delivered_after_a_newer_one_of_its_order_is_skipped_not_printed() {
    let stack = Stack::start(StackOptions {
        config: shared::Config::default(),
        local: LocalSettings::ephemeral(),
        seed_products: true,
        run_workers: true,
    })
    .await
    .unwrap();
    let user = "ws-listen-buyer";
    let token = common::token(user, None);
    let listener = Listener::start(&format!("{}/?token={token}", stack.ws_url()));
    listener
        .wait_for("connection", |l| l.stderr().contains("connected to"))
        .await;
    let started = Instant::now();
    let connection_id = loop {
        if let [id] = connection_ids(&stack, user).await.as_slice() {
            break id.clone();
        }
        assert!(
            started.elapsed() < WITHIN,
            "no connection record for {user}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let http = reqwest::Client::new();
    let placed: Value = http
        .post(format!("{}/orders", stack.http_url()))
        .bearer_auth(&token)
        .json(&json!({
            "idempotency_key": "ws-listen-stale",
            "items": [{"product_id": "espresso-beans", "quantity": 1}],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order_id = placed["data"]["id"].as_str().expect("an order").to_owned();
    listener
        .wait_for("terminal event", |l| {
            l.printed_events(&order_id)
                .iter()
                .filter_map(|e| e["status"].as_str()?.parse::<OrderStatus>().ok())
                .any(OrderStatus::is_terminal)
        })
        .await;

    // The consumer's OrderProcessing push, late: delivered now, after the terminal one, through
    // the management API the functions push with.
    let before = listener.printed_events(&order_id);
    let terminal = before.last().unwrap().clone();
    let mut late = terminal.clone();
    late["event"] = json!("OrderProcessing");
    late["status"] = json!("PROCESSING");
    late["version"] = json!(OrderStatus::Processing.version());
    late.as_object_mut().unwrap().remove("reason");
    let connection = format!(
        "{}/@connections/{connection_id}",
        stack.config().ws_management_endpoint.as_deref().unwrap()
    );
    let posted = http
        .post(&connection)
        .body(late.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200, "the late event was delivered");
    // Once the frame has arrived (skipped with a note, or printed), the server closes the
    // connection and ws-listen exits with everything printed.
    listener
        .wait_for("late event", |l| {
            l.stderr().contains("skipped") || l.printed_events(&order_id).len() > before.len()
        })
        .await;
    let closed = http.delete(&connection).send().await.unwrap();
    assert_eq!(closed.status(), 204);
    listener
        .wait_for("exit", |l| l.stderr().contains("closed by the server"))
        .await;

    let printed = listener.printed_events(&order_id);
    assert_eq!(
        printed.last(),
        Some(&terminal),
        "the terminal event stays the last one printed: {printed:#?}"
    );
    let versions: Vec<u64> = printed
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert!(
        versions.is_sorted(),
        "printed versions never go back: {versions:?}"
    );
    assert!(
        listener.stderr().contains(&format!(
            "ws-listen: skipped a stale OrderProcessing for order {order_id} (version {}; version {} was printed)",
            OrderStatus::Processing.version(),
            terminal["version"]
        )),
        "stderr: {}",
        listener.stderr()
    );
    stack.shutdown().await;
}
