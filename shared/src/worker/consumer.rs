//! The payment consumer's SQS entry: each record's body parsed as an [`OrderPlaced`], its order
//! taken through [`ProcessPayment`](crate::application::ProcessPayment)
//! (`application/process_payment.rs`: claim, charge, settle, and what a duplicate does), and the
//! batch answered with the records to deliver again.
//!
//! Failures are reported per message in `batchItemFailures`, so one bad message never sends its
//! batch back. Technical errors (store, provider) come back after the visibility timeout and are
//! retried; poison messages (unparseable, unknown order) are reported too and reach the DLQ after
//! `maxReceiveCount` receives instead of looping forever.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use tracing::Instrument;

use super::Worker;
use crate::application::{AppError, ProcessPaymentError, Settlement};
use crate::messages::{OrderPlaced, TRACE_ID_ATTRIBUTE};
use crate::ports::{Clock, Notifier, OrderReader, OrderSettler, PaymentGateway, WebhookStore};
use crate::xray::{AWS_TRACE_HEADER_ATTRIBUTE, TraceHeader};

/// Why a message could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The body is not an `OrderPlaced`.
    #[error("message body is not an OrderPlaced")]
    Unparseable(#[source] serde_json::Error),
    /// Its order could not be processed.
    #[error(transparent)]
    Process(#[from] ProcessPaymentError),
}

impl ConsumerError {
    /// Whether a later delivery may succeed. Both kinds are reported as batch item failures (the
    /// DLQ is where poison goes); this decides how loudly it is logged.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Process(
                ProcessPaymentError::Store(_)
                    | ProcessPaymentError::Payment(_)
                    | ProcessPaymentError::Settle(AppError::Unavailable(_))
            )
        )
    }
}

/// Handles one SQS batch; the response lists the messages to be delivered again.
pub async fn handle<S, P, N, Q, C>(
    worker: &Worker<S, P, N, Q, C>,
    event: SqsEvent,
) -> SqsBatchResponse
where
    S: OrderReader + OrderSettler + WebhookStore,
    P: PaymentGateway,
    N: Notifier,
    C: Clock,
{
    let outcomes = join_all(event.records.iter().map(|message| {
        let xray = xray_trace_id(message);
        let trace_id = trace_id(message, xray.as_deref());
        let span = tracing::info_span!("message", message_id = message.message_id.as_deref().unwrap_or(""), %trace_id, xray_trace_id = xray.as_deref().unwrap_or(""));
        async move { (message, settle_message(worker, message, &trace_id).await) }.instrument(span)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message, outcome) in outcomes {
        match outcome {
            // The variant and the status (`Settled(Paid)`), not the whole order: one short line.
            Ok(Settlement::Settled(order)) => {
                tracing::info!(
                    settlement = format_args!("Settled({:?})", order.status),
                    "message handled"
                );
            }
            Ok(Settlement::AlreadyDone(order)) => {
                tracing::info!(
                    settlement = format_args!("AlreadyDone({:?})", order.status),
                    "message handled"
                );
            }
            Err(error) => {
                if error.is_retryable() {
                    tracing::warn!(error = %error, source = ?std::error::Error::source(&error), "message failed; it will be retried");
                } else {
                    tracing::error!(error = %error, "poison message; it will reach the DLQ after maxReceiveCount");
                }
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

/// The trace id of a message's logs and of the events it causes: the `trace_id` attribute (the
/// placing request's id, which is its X-Ray trace id unless the client named its own), else the
/// X-Ray trace id of its `AWSTraceHeader`, else a new UUID.
fn trace_id(message: &SqsMessage, xray: Option<&str>) -> String {
    message
        .message_attributes
        .get(TRACE_ID_ATTRIBUTE)
        .and_then(|a| a.string_value.clone())
        .or_else(|| xray.map(str::to_owned))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The X-Ray trace id (Root) of the header SQS hands over with the message, if it is well formed.
fn xray_trace_id(message: &SqsMessage) -> Option<String> {
    TraceHeader::parse(message.attributes.get(AWS_TRACE_HEADER_ATTRIBUTE)?)
        .map(|header| header.root().to_owned())
}

/// Processes the payment of the order one message names.
async fn settle_message<S, P, N, Q, C>(
    worker: &Worker<S, P, N, Q, C>,
    message: &SqsMessage,
    trace_id: &str,
) -> Result<Settlement, ConsumerError>
where
    S: OrderReader + OrderSettler + WebhookStore,
    P: PaymentGateway,
    N: Notifier,
    C: Clock,
{
    let placed: OrderPlaced = serde_json::from_str(message.body.as_deref().unwrap_or(""))
        .map_err(ConsumerError::Unparseable)?;
    Ok(worker
        .process_payment()
        .run(&placed.order_id, trace_id)
        .await?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{
        IdempotencyKey, Money, Order, OrderId, OrderItem, OrderStatus, Product, ProductId,
        Quantity, UserId,
    };
    use crate::ports::StockReserver;
    use crate::worker::TestWorker;
    use proptest::strategy::Strategy as _;

    fn worker() -> TestWorker {
        let worker = TestWorker::with_fakes();
        worker.store.insert_product(Product {
            id: ProductId::new("p"),
            name: "P".into(),
            price: Money::parse("2.50").unwrap(),
            stock: 10,
            stock_shards: 1,
            created_at: worker.clock.now(),
            updated_at: worker.clock.now(),
        });
        worker
    }

    async fn placed(worker: &TestWorker, id: &str, quantity: i64) -> Order {
        let item = OrderItem {
            product_id: ProductId::new("p"),
            quantity: Quantity::parse(quantity).unwrap(),
            unit_price: Money::parse("2.50").unwrap(),
            shards: crate::domain::ShardSplit::default(),
        };
        let order = Order::place(
            OrderId::new(id),
            UserId::new("alice"),
            IdempotencyKey::parse(id).unwrap(),
            vec![item],
            worker.clock.now(),
        );
        worker.store.place_order(&order, "fp").await.unwrap();
        order
    }

    fn message(id: &str, body: &str) -> serde_json::Value {
        json!({
            "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {"trace_id": {"stringValue": format!("trace-{id}"), "dataType": "String", "stringListValues": [], "binaryListValues": []}},
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders", "awsRegion": "us-east-1"
        })
    }

    fn order_message(id: &str) -> serde_json::Value {
        message(
            &format!("m-{id}"),
            &json!({"order_id": id, "user_id": "alice", "trace_id": "t"}).to_string(),
        )
    }

    fn batch(messages: Vec<serde_json::Value>) -> SqsEvent {
        serde_json::from_value(json!({ "Records": messages })).unwrap()
    }

    fn failed(response: &SqsBatchResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    async fn status(worker: &TestWorker, id: &str) -> OrderStatus {
        worker
            .store
            .get_order(&OrderId::new(id))
            .await
            .unwrap()
            .unwrap()
            .status
    }

    #[tokio::test]
    async fn poison_messages_are_reported_alone_and_the_rest_of_the_batch_settles() {
        let worker = worker();
        placed(&worker, "good", 1).await;

        let response = handle(
            &worker,
            batch(vec![
                message("garbage", "{not json"),
                order_message("ghost"),
                order_message("good"),
            ]),
        )
        .await;

        assert_eq!(
            failed(&response),
            vec!["garbage".to_owned(), "m-ghost".to_owned()]
        );
        assert_eq!(status(&worker, "good").await, OrderStatus::Paid);
        // The record's trace id attribute, not the body's, follows the order into its events.
        let events = worker.notifier.events();
        assert!(events.iter().all(|(_, e)| e.trace_id == "trace-m-good"));
    }

    #[tokio::test]
    async fn a_record_without_the_trace_id_attribute_takes_the_x_ray_root_of_its_aws_trace_header()
    {
        let worker = worker();
        placed(&worker, "traced", 1).await;
        let mut record = order_message("traced");
        record["messageAttributes"] = json!({});
        record["attributes"]["AWSTraceHeader"] =
            json!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");

        let response = handle(&worker, batch(vec![record])).await;

        assert!(failed(&response).is_empty());
        let events = worker.notifier.events();
        assert!(!events.is_empty());
        assert!(
            events
                .iter()
                .all(|(_, e)| e.trace_id == "1-5759e988-bd862e3fe1be46a994272793"),
            "{events:?}"
        );
    }

    #[test]
    fn the_trace_id_attribute_wins_over_the_aws_trace_header_and_a_bad_header_is_ignored() {
        let mut record = order_message("both");
        record["attributes"]["AWSTraceHeader"] =
            json!("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
        let both: SqsMessage = serde_json::from_value(record.clone()).unwrap();
        record["messageAttributes"] = json!({});
        record["attributes"]["AWSTraceHeader"] = json!("Root=not-a-root");
        let neither: SqsMessage = serde_json::from_value(record).unwrap();

        let xray = xray_trace_id(&both);

        assert_eq!(trace_id(&both, xray.as_deref()), "trace-m-both");
        assert_eq!(xray.as_deref(), Some("1-5759e988-bd862e3fe1be46a994272793"));
        assert_eq!(xray_trace_id(&neither), None);
        assert_eq!(trace_id(&neither, None).len(), 36, "a new UUID");
    }

    #[tokio::test]
    async fn a_store_outage_is_a_retryable_failure() {
        let worker = worker();
        placed(&worker, "o1", 1).await;
        worker.store.set_down(true);

        let response = handle(&worker, batch(vec![order_message("o1")])).await;

        assert_eq!(failed(&response), vec!["m-o1".to_owned()]);
        worker.store.set_down(false);
        assert_eq!(status(&worker, "o1").await, OrderStatus::Pending);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever a record's body holds (any text, or JSON that names no order of ours), the
        /// record alone is reported as a batch item failure (the DLQ takes it after
        /// maxReceiveCount), the good record beside it settles, and the other order is untouched:
        /// still PENDING, its stock still held, never charged, never announced.
        #[test]
        fn a_malformed_record_is_a_batch_item_failure_and_touches_no_order(
            body in proptest::prop_oneof![
                ".{0,80}",
                r#"\{"order_id":"[a-z0-9]{0,6}"(,"user_id":"alice")?(,"trace_id":"t")?\}"#,
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)
                    .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
            ],
        ) {
            let names_an_order = serde_json::from_str::<OrderPlaced>(&body)
                .is_ok_and(|p| ["bystander", "good"].contains(&p.order_id.as_str()));
            proptest::prop_assume!(!names_an_order);
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let worker = worker();
                placed(&worker, "bystander", 2).await;
                placed(&worker, "good", 1).await;

                let response = handle(
                    &worker,
                    batch(vec![message("bad", &body), order_message("good")]),
                )
                .await;

                proptest::prop_assert_eq!(failed(&response), vec!["bad".to_owned()]);
                proptest::prop_assert_eq!(status(&worker, "bystander").await, OrderStatus::Pending);
                proptest::prop_assert_eq!(status(&worker, "good").await, OrderStatus::Paid);
                proptest::prop_assert_eq!(worker.store.stock("p"), Some(7));
                proptest::prop_assert_eq!(worker.payments.charges(), vec![OrderId::new("good")]);
                proptest::prop_assert!(
                    worker.notifier.events().iter().all(|(_, e)| e.order_id.as_str() == "good")
                );
                Ok(())
            })?;
        }
    }

    /// `events/order-consumer.json` (also for `cargo lambda invoke`) deserializes as the runtime
    /// does; its order does not exist here, so it is reported for redelivery.
    #[tokio::test]
    async fn the_sample_event_is_a_valid_sqs_batch() {
        let worker = worker();
        let event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/order-consumer.json")).unwrap();

        let response = handle(&worker, event).await;

        assert_eq!(
            failed(&response),
            vec!["2e1424d4-f796-459a-8184-9c92662be6da".to_owned()]
        );
    }
}
