//! The partition-throughput emulation through the real SDK client (retries off, so each refusal
//! is seen): a hot key is throttled while other keys pass, a transaction touching it is cancelled
//! and writes nothing, index writes land on the index key, the budget refills within a second, and
//! `/_local/partitions` reports it; off by default.

mod support;

use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, GlobalSecondaryIndex, KeyType, Projection, ProjectionType, Put,
    PutRequest, TransactWriteItem, Update, WriteRequest,
};
use localstack::testing::EmbeddedAws;
use serde_json::Value;
use support::{REGION, dynamodb_client, key_part, string_attribute};

/// Write units per second per key in these tests: low enough to reach in a few hundred ms.
const LIMIT: u32 = 50;
/// Writes tried before a test decides the limit never came.
const ENOUGH: usize = 400;

struct Fixture {
    aws: EmbeddedAws,
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Fixture {
    async fn start(limit: Option<u32>) -> Fixture {
        let aws = match limit {
            Some(units) => EmbeddedAws::with_partition_limit(REGION, units).await,
            None => EmbeddedAws::start(REGION).await,
        }
        .expect("the embedded AWS endpoint starts");
        let client = dynamodb_client(aws.endpoint());
        let table = format!("parts-{}", uuid::Uuid::new_v4().simple());
        client
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attribute("id"))
            .attribute_definitions(string_attribute("kind"))
            .key_schema(key_part("id", KeyType::Hash))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("by-kind")
                    .key_schema(key_part("kind", KeyType::Hash))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("CreateTable");
        Fixture { aws, client, table }
    }

    async fn put(&self, id: &str, kind: Option<&str>, n: usize) -> Result<(), PutItemError> {
        self.put_sized(id, kind, n, 0).await
    }

    /// A put with `pad` bytes more: about `pad / 1024` units, so that the next write to a
    /// throttled key needs more than refills while a loaded machine gets to it (one unit takes
    /// 20 ms at 50 units/s).
    async fn put_sized(
        &self,
        id: &str,
        kind: Option<&str>,
        n: usize,
        pad: usize,
    ) -> Result<(), PutItemError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(id.into()))
            .item("n", AttributeValue::N(n.to_string()));
        if let Some(kind) = kind {
            put = put.item("kind", AttributeValue::S(kind.into()));
        }
        if pad > 0 {
            put = put.item("pad", AttributeValue::S("x".repeat(pad)));
        }
        put.send()
            .await
            .map(|_| ())
            .map_err(|e| e.into_service_error())
    }

    /// Puts `id` (`*`: a new item each time) until a put is throttled; how many passed, and the
    /// refusal.
    async fn exhaust(&self, id: &str, kind: Option<&str>, pad: usize) -> (usize, PutItemError) {
        for n in 0..ENOUGH {
            let item_id = if id == "*" {
                format!("item-{n}")
            } else {
                id.to_owned()
            };
            if let Err(error) = self.put_sized(&item_id, kind, n, pad).await {
                return (n, error);
            }
        }
        panic!("{ENOUGH} writes to one key at {LIMIT} units/s were never throttled");
    }

    async fn n_of(&self, id: &str) -> Option<String> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem")
            .item
            .and_then(|item| item.get("n").and_then(|n| n.as_n().ok()).cloned())
    }

    async fn report(&self, query: &str) -> Value {
        reqwest::get(format!("{}/_local/partitions{query}", self.aws.endpoint()))
            .await
            .expect("the report answers")
            .json()
            .await
            .expect("the report is JSON")
    }
}

/// The reason and resource of a ThrottlingException.
fn throttling(error: &PutItemError) -> (String, String) {
    let PutItemError::ThrottlingException(throttled) = error else {
        panic!("expected ThrottlingException, got {error:?}");
    };
    let reason = &throttled.throttling_reasons()[0];
    (
        reason.reason().unwrap_or_default().to_owned(),
        reason.resource().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_key_is_throttled_while_other_keys_pass() {
    let fixture = Fixture::start(Some(LIMIT)).await;

    let (passed, error) = fixture.exhaust("hot", None, 0).await;
    let after_refusal = fixture.put("cold-0", None, 0).await;

    // One second's burst, plus what refilled while the writes ran (on a loaded machine).
    assert!(
        (LIMIT as usize..LIMIT as usize * 3).contains(&passed),
        "{passed} writes passed"
    );
    assert_eq!(error.code(), Some("ThrottlingException"));
    let (reason, resource) = throttling(&error);
    assert_eq!(reason, "TableWriteKeyRangeThroughputExceeded");
    assert_eq!(
        resource,
        format!(
            "arn:aws:dynamodb:{REGION}:000000000000:table/{}",
            fixture.table
        )
    );
    assert!(
        after_refusal.is_ok(),
        "another key passes: {after_refusal:?}"
    );
    for n in 1..20 {
        fixture.put(&format!("cold-{n}"), None, n).await.unwrap();
    }
    assert_eq!(
        fixture.n_of("hot").await,
        Some((passed - 1).to_string()),
        "the refused write was not applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_touching_a_throttled_key_is_cancelled_and_writes_nothing() {
    let fixture = Fixture::start(Some(LIMIT)).await;
    fixture.exhaust("hot", None, 4000).await;

    let result = fixture
        .client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&fixture.table)
                        .item("id", AttributeValue::S("new".into()))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&fixture.table)
                        .key("id", AttributeValue::S("hot".into()))
                        .update_expression("SET touched = :t")
                        .expression_attribute_values(":t", AttributeValue::Bool(true))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;

    let error = result
        .expect_err("the transaction is refused")
        .into_service_error();
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = &error else {
        panic!("expected TransactionCanceledException, got {error:?}");
    };
    let codes: Vec<Option<&str>> = cancelled
        .cancellation_reasons()
        .iter()
        .map(|r| r.code())
        .collect();
    assert_eq!(codes, [Some("None"), Some("ThrottlingError")]);
    assert_eq!(fixture.n_of("new").await, None, "nothing of it was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_writes_are_charged_to_the_index_key() {
    let fixture = Fixture::start(Some(LIMIT)).await;

    // Every item its own table key, all of them one index key.
    let (passed, error) = fixture.exhaust("*", Some("same"), 0).await;

    assert!(
        (LIMIT as usize..LIMIT as usize * 3).contains(&passed),
        "{passed} writes passed"
    );
    let (reason, resource) = throttling(&error);
    assert_eq!(reason, "IndexWriteKeyRangeThroughputExceeded");
    assert!(
        resource.ends_with(&format!("table/{}/index/by-kind", fixture.table)),
        "{resource}"
    );
    fixture
        .put("outside-the-index", None, 0)
        .await
        .expect("an item without the index key is not charged to it");
    fixture
        .put("other-kind", Some("other"), 0)
        .await
        .expect("another index key has its own budget");
    let report = fixture.report("").await;
    let index = &report["partitions"][format!("{}/by-kind", fixture.table)];
    assert_eq!(index["kind"], "index");
    assert_eq!(index["hottest"][0]["key"], "same");
    assert!(
        index["hottest"][0]["throttled"].as_u64() >= Some(1),
        "{index}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_moving_items_into_an_index_key_put_it_in_debt() {
    let fixture = Fixture::start(Some(LIMIT)).await;
    let moved = LIMIT as usize * 3 / 2;
    for n in 0..moved {
        fixture.put(&format!("item-{n}"), None, n).await.unwrap();
    }

    // An update's new index key is known only once it is written: these all pass, and the index
    // key owes what it took past its budget.
    for n in 0..moved {
        fixture
            .client
            .update_item()
            .table_name(&fixture.table)
            .key("id", AttributeValue::S(format!("item-{n}")))
            .update_expression("SET kind = :k")
            .expression_attribute_values(":k", AttributeValue::S("same".into()))
            .send()
            .await
            .expect("an update is checked against the keys known before it");
    }
    let refused = fixture.put_sized("newcomer", Some("same"), 0, 8000).await;

    let (reason, _) = throttling(&refused.expect_err("the index key is in debt"));
    assert_eq!(reason, "IndexWriteKeyRangeThroughputExceeded");
    let report = fixture.report("").await;
    let same = &report["partitions"][format!("{}/by-kind", fixture.table)]["hottest"][0];
    assert_eq!(same["units"], moved as f64, "one put per entry moved in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_hands_back_the_items_of_throttled_keys_and_writes_the_others() {
    let fixture = Fixture::start(Some(LIMIT)).await;
    let (passed, _) = fixture.exhaust("hot", None, 4000).await;
    let put = |id: &str| {
        WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .item("id", AttributeValue::S(id.into()))
                    .item("n", AttributeValue::N("-1".into()))
                    .item("pad", AttributeValue::S("x".repeat(8000)))
                    .build()
                    .unwrap(),
            )
            .build()
    };

    let output = fixture
        .client
        .batch_write_item()
        .request_items(&fixture.table, vec![put("hot"), put("cold")])
        .send()
        .await
        .expect("a partly throttled batch succeeds");

    let unprocessed = output.unprocessed_items().expect("unprocessed items");
    let handed_back = &unprocessed[&fixture.table];
    assert_eq!(handed_back.len(), 1);
    assert_eq!(
        handed_back[0].put_request().unwrap().item()["id"],
        AttributeValue::S("hot".into())
    );
    assert_eq!(fixture.n_of("cold").await.as_deref(), Some("-1"));
    assert_eq!(fixture.n_of("hot").await, Some((passed - 1).to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_refills_within_a_second() {
    let fixture = Fixture::start(Some(LIMIT)).await;
    fixture.exhaust("hot", None, 0).await;

    tokio::time::sleep(Duration::from_millis(1050)).await;

    fixture
        .put("hot", None, 0)
        .await
        .expect("a second later the key has its budget back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_gives_each_keys_units_peak_and_throttles_and_resets() {
    let fixture = Fixture::start(Some(LIMIT)).await;
    let (passed, _) = fixture.exhaust("hot", None, 0).await;
    fixture.put("cold", None, 0).await.unwrap();

    let report = fixture.report("?reset=true").await;

    assert_eq!(report["limit"], "on");
    assert_eq!(report["write_units_per_second"], f64::from(LIMIT));
    assert_eq!(report["throttled_requests"], 1);
    let table = &report["partitions"][&fixture.table];
    assert_eq!(table["kind"], "table");
    assert_eq!(table["keys"], 2);
    let hot = &table["hottest"][0];
    assert_eq!(hot["key"], "hot");
    assert_eq!(hot["units"], passed as f64);
    assert_eq!(hot["throttled"], 1);
    // The burst and what refilled, within one or two calendar seconds.
    let peak = hot["peak_units_per_s"].as_f64().unwrap();
    assert!(
        peak >= passed as f64 / 2.0 && peak <= passed as f64,
        "{peak}"
    );
    assert_eq!(table["hottest"][1]["key"], "cold");
    let after_reset = fixture.report("").await;
    assert_eq!(after_reset["partitions"], serde_json::json!({}));
    assert_eq!(after_reset["requests"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_nothing_is_charged_or_refused() {
    let fixture = Fixture::start(None).await;

    for n in 0..(LIMIT as usize * 3) {
        fixture
            .put("hot", Some("same"), n)
            .await
            .expect("no limit by default");
    }

    let report = fixture.report("").await;
    assert_eq!(report["limit"], "off");
    assert_eq!(report["partitions"], serde_json::json!({}));
}
