//! AWS's operating conditions on the embedded endpoint (`AWS_CONDITIONS`), through the real SDK
//! client with retries off so that each refusal is seen: overlapping transactions conflict as
//! DynamoDB's do, single writes are refused on an item in a transaction and pass once it ends,
//! every request takes at least its latency without being serialized, the read limit throttles a
//! hot key only, and with everything off nothing of it happens.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, KeysAndAttributes, TransactWriteItem, Update,
};
use localstack::testing::EmbeddedAws;
use localstack::{LatencyTable, LocalSettings};
use serde_json::Value;
use support::{REGION, dynamodb_client, key_part, string_attribute};

/// A transaction's emulated duration in these tests: long enough that a second request sent once
/// the endpoint has seen the first lands inside it, even on a loaded machine.
const TRANSACTION_MS: u64 = 600;

struct Fixture {
    aws: EmbeddedAws,
    items: Items,
}

/// The test table through the SDK client; cloned into tasks that send concurrently.
#[derive(Clone)]
struct Items {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Fixture {
    /// An endpoint under `settings` with one table keyed by `pk` (hash) and `sk` (range).
    async fn start(settings: &LocalSettings) -> Fixture {
        let aws = EmbeddedAws::with_conditions(REGION, settings)
            .await
            .expect("the embedded AWS endpoint starts");
        let client = dynamodb_client(aws.endpoint());
        let table = format!("conditions-{}", uuid::Uuid::new_v4().simple());
        client
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attribute("pk"))
            .attribute_definitions(string_attribute("sk"))
            .key_schema(key_part("pk", KeyType::Hash))
            .key_schema(key_part("sk", KeyType::Range))
            .send()
            .await
            .expect("CreateTable");
        Fixture {
            aws,
            items: Items { client, table },
        }
    }

    async fn report(&self) -> Value {
        reqwest::get(format!("{}/_local/conditions", self.aws.endpoint()))
            .await
            .expect("the report answers")
            .json()
            .await
            .expect("the report is JSON")
    }

    /// Waits until the endpoint has received `n` transactions: the first one's items are held
    /// from then on.
    async fn until_transactions_seen(&self, n: u64) {
        let started = Instant::now();
        while self.report().await["conflicts"]["transactions_seen"].as_u64() < Some(n) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the endpoint never saw the transaction"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Items {
    /// Sets `n` on the items `(pk, "s")` of `pks`, in that order, in one transaction.
    async fn transact(
        &self,
        pks: &[&str],
        n: i64,
    ) -> Result<TransactWriteItemsOutput, TransactWriteItemsError> {
        let mut request = self.client.transact_write_items();
        for pk in pks {
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S((*pk).into()))
                .key("sk", AttributeValue::S("s".into()))
                .update_expression("SET n = :n")
                .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
                .build()
                .unwrap();
            request = request.transact_items(TransactWriteItem::builder().update(update).build());
        }
        request.send().await.map_err(|e| e.into_service_error())
    }

    async fn put(&self, pk: &str, n: i64) -> Result<(), PutItemError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.into()))
            .item("sk", AttributeValue::S("s".into()))
            .item("n", AttributeValue::N(n.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.into_service_error())
    }

    async fn update(&self, pk: &str, n: i64) -> Result<(), UpdateItemError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S("s".into()))
            .update_expression("SET n = :n")
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.into_service_error())
    }

    async fn get(&self, pk: &str) -> Result<Option<String>, GetItemError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S("s".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| e.into_service_error())?;
        Ok(output
            .item
            .and_then(|item| item.get("n").and_then(|n| n.as_n().ok()).cloned()))
    }
}

/// Conflicts on, and a transaction that lasts [`TRANSACTION_MS`] (single writes stay fast).
fn long_transactions() -> LocalSettings {
    let spec = format!("dynamodb.transact={TRANSACTION_MS}/{}", TRANSACTION_MS + 1);
    LocalSettings {
        latency: LatencyTable::parse(&spec).unwrap(),
        transaction_conflicts: true,
        ..LocalSettings::ephemeral()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_overlapping_another_on_one_item_is_cancelled_at_that_items_position() {
    let fixture = Fixture::start(&long_transactions()).await;
    fixture.items.put("shared", 0).await.unwrap();

    let items = fixture.items.clone();
    let first = tokio::spawn(async move { items.transact(&["first-own", "shared"], 1).await });
    fixture.until_transactions_seen(1).await;
    let second = fixture.items.transact(&["second-own", "shared"], 2).await;
    let first = first.await.unwrap();

    assert!(first.is_ok(), "the first transaction commits: {first:?}");
    let error = second.expect_err("the overlapping transaction is cancelled");
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = &error else {
        panic!("expected TransactionCanceledException, got {error:?}");
    };
    let reasons = cancelled.cancellation_reasons();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].code(), Some("None"));
    assert_eq!(reasons[1].code(), Some("TransactionConflict"));
    assert_eq!(
        reasons[1].message(),
        Some("Transaction is ongoing for the item")
    );
    assert_eq!(
        fixture.items.get("shared").await.unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(
        fixture.items.get("second-own").await.unwrap(),
        None,
        "nothing of the cancelled one was written"
    );
    let report = fixture.report().await;
    assert_eq!(report["conflicts"]["on"], true);
    assert_eq!(report["conflicts"]["transactions_cancelled"], 1);
    assert_eq!(report["conflicts"]["transactions_seen"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_writes_on_an_item_in_a_transaction_are_refused_until_it_ends() {
    let fixture = Fixture::start(&long_transactions()).await;
    fixture.items.put("held", 0).await.unwrap();

    let items = fixture.items.clone();
    let transaction = tokio::spawn(async move { items.transact(&["held"], 1).await });
    fixture.until_transactions_seen(1).await;
    let put = fixture.items.put("held", 7).await;
    let update = fixture.items.update("held", 8).await;
    let elsewhere = fixture.items.put("free", 9).await;
    let committed = transaction.await.unwrap();
    let after = fixture.items.put("held", 10).await;

    let error = put.expect_err("a put during the transaction is refused");
    assert!(
        matches!(error, PutItemError::TransactionConflictException(_)),
        "expected TransactionConflictException, got {error:?}"
    );
    let error = update.expect_err("an update during the transaction is refused");
    assert!(
        matches!(error, UpdateItemError::TransactionConflictException(_)),
        "expected TransactionConflictException, got {error:?}"
    );
    assert_eq!(error.code(), Some("TransactionConflictException"));
    assert!(elsewhere.is_ok(), "another item is writable: {elsewhere:?}");
    assert!(committed.is_ok(), "the transaction commits: {committed:?}");
    assert!(
        after.is_ok(),
        "writable once the transaction answered: {after:?}"
    );
    assert_eq!(
        fixture.items.get("held").await.unwrap().as_deref(),
        Some("10")
    );
    assert_eq!(
        fixture.report().await["conflicts"]["single_writes_refused"],
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_takes_its_latency_and_concurrent_reads_are_not_serialized() {
    let settings = LocalSettings {
        latency: LatencyTable::parse("dynamodb.read=100/101").unwrap(),
        ..LocalSettings::ephemeral()
    };
    let fixture = Fixture::start(&settings).await;
    fixture.items.put("item", 1).await.unwrap();
    // The 1st percentile of a log-normal with median 100 ms and p99 101 ms: 99 ms.
    let floor = Duration::from_millis(99);

    let started = Instant::now();
    fixture.items.get("item").await.unwrap();
    let one = started.elapsed();
    let started = Instant::now();
    let reads: Vec<_> = (0..20)
        .map(|_| {
            let client = fixture.items.client.clone();
            let table = fixture.items.table.clone();
            tokio::spawn(async move {
                client
                    .get_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S("item".into()))
                    .key("sk", AttributeValue::S("s".into()))
                    .send()
                    .await
                    .map(|_| started.elapsed())
            })
        })
        .collect();
    let mut each = Vec::new();
    for read in reads {
        each.push(read.await.unwrap().expect("GetItem"));
    }
    let twenty = started.elapsed();

    assert!(one >= floor, "one GetItem took {one:?}");
    assert!(each.iter().all(|t| *t >= floor), "{each:?}");
    assert!(
        twenty < floor * 10,
        "20 concurrent GetItems took {twenty:?}: serialized, 20 × {floor:?} at least"
    );
    let report = fixture.report().await;
    assert_eq!(report["latency"]["on"], true);
    assert_eq!(
        report["latency"]["classes"]["dynamodb.read"]["median_ms"],
        100.0
    );
    assert!(report["latency"]["delayed_requests"].as_u64().unwrap() >= 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_limit_throttles_a_hot_key_and_leaves_other_keys_alone() {
    let settings = LocalSettings {
        partition_limit: true,
        partition_read_units: 1000,
        partition_scale: 0.01,
        ..LocalSettings::ephemeral()
    };
    let fixture = Fixture::start(&settings).await;
    fixture.items.put("hot", 1).await.unwrap();
    fixture.items.put("cold", 2).await.unwrap();

    // 10 read units a second: a consistent read of a small item costs one.
    let mut refusal = None;
    for _ in 0..400 {
        if let Err(error) = fixture.items.get("hot").await {
            refusal = Some(error);
            break;
        }
    }
    let cold = fixture.items.get("cold").await;
    let batch = fixture
        .items
        .client
        .batch_get_item()
        .request_items(
            &fixture.items.table,
            KeysAndAttributes::builder()
                .consistent_read(true)
                .keys(
                    [
                        ("pk".to_owned(), AttributeValue::S("hot".into())),
                        ("sk".to_owned(), AttributeValue::S("s".into())),
                    ]
                    .into(),
                )
                .keys(
                    [
                        ("pk".to_owned(), AttributeValue::S("cold".into())),
                        ("sk".to_owned(), AttributeValue::S("s".into())),
                    ]
                    .into(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await;

    let error = refusal.expect("400 reads of one key at 10 units/s were never throttled");
    assert_eq!(error.code(), Some("ThrottlingException"));
    let GetItemError::ThrottlingException(throttled) = &error else {
        panic!("expected ThrottlingException, got {error:?}");
    };
    assert_eq!(
        throttled.throttling_reasons()[0].reason(),
        Some("TableReadKeyRangeThroughputExceeded")
    );
    assert_eq!(cold.expect("another key is readable").as_deref(), Some("2"));
    let batch = batch.expect("a batch with one readable key answers");
    let returned = &batch.responses().unwrap()[&fixture.items.table];
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0]["pk"], AttributeValue::S("cold".into()));
    let handed_back = &batch.unprocessed_keys().unwrap()[&fixture.items.table];
    assert_eq!(handed_back.keys()[0]["pk"], AttributeValue::S("hot".into()));
    let report = fixture.report().await;
    assert_eq!(report["partitions"]["on"], true);
    assert_eq!(report["partitions"]["read_units_per_second"], 10.0);
    assert_eq!(report["partitions"]["scale"], 0.01);
    assert!(report["partitions"]["throttled_reads"].as_u64().unwrap() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_everything_off_overlapping_transactions_both_commit_undelayed() {
    let fixture = Fixture::start(&LocalSettings::ephemeral()).await;
    fixture.items.put("shared", 0).await.unwrap();

    let (one, two) = tokio::join!(
        fixture.items.transact(&["a", "shared"], 1),
        fixture.items.transact(&["b", "shared"], 2)
    );
    let put = fixture.items.put("shared", 3).await;

    assert!(one.is_ok() && two.is_ok(), "{one:?} {two:?}");
    assert!(put.is_ok());
    let report = fixture.report().await;
    assert_eq!(report["latency"]["on"], false);
    assert_eq!(report["latency"]["delayed_requests"], 0);
    assert_eq!(report["conflicts"]["on"], false);
    assert_eq!(report["conflicts"]["transactions_seen"], 0);
    assert_eq!(report["partitions"]["on"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_is_charged_to_the_partition_key_its_key_condition_names() {
    let settings = LocalSettings {
        partition_limit: true,
        partition_read_units: 10,
        ..LocalSettings::ephemeral()
    };
    let fixture = Fixture::start(&settings).await;
    fixture.items.put("hot", 1).await.unwrap();
    fixture.items.put("cold", 2).await.unwrap();
    let query = |pk: &str| {
        fixture
            .items
            .client
            .query()
            .table_name(&fixture.items.table)
            .key_condition_expression("#pk = :pk AND begins_with(sk, :s)")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .expression_attribute_values(":s", AttributeValue::S("s".into()))
            .consistent_read(true)
            .send()
    };

    let mut refusal = None;
    for _ in 0..400 {
        if let Err(error) = query("hot").await {
            refusal = Some(error.into_service_error());
            break;
        }
    }
    let cold = query("cold").await;

    let error = refusal.expect("400 queries of one key at 10 units/s were never throttled");
    let QueryError::ThrottlingException(throttled) = &error else {
        panic!("expected ThrottlingException, got {error:?}");
    };
    assert_eq!(
        throttled.throttling_reasons()[0].reason(),
        Some("TableReadKeyRangeThroughputExceeded")
    );
    assert_eq!(cold.expect("another key is queryable").count(), 1);
}
