//! The payment consumer: what happens to an order after it is placed, and what a duplicate or a
//! poison message does.
//!
//! Per message: parse the body, load the order, then
//! - PENDING: apply the outcome of a webhook that came before the order, if one waits; else
//!   claim it (conditional PENDING -> PROCESSING; announce `OrderProcessing`), charge,
//!   settle (conditional PROCESSING -> PAID, or -> FAILED with stock restored in one transaction;
//!   announce the terminal event). Losing the claim to a cancel means there is nothing to do;
//!   losing it to another delivery's claim resumes as for PROCESSING (a claim whose answer was
//!   lost is told from another's by its `claim_token`, and won).
//! - PROCESSING: a redelivery after a crash, a duplicate, or the reconciler: resume at the charge
//!   (the provider is idempotent per order) and try to settle; only the writer that wins the
//!   conditional settle announces it, so a duplicate settles once and pushes one terminal event.
//! - PAID, FAILED, CANCELLED: done already; the message is acknowledged.
//!
//! Failures are reported per message in `batchItemFailures`, so one bad message never sends its
//! batch back. Technical errors (store, provider) come back after the visibility timeout and are
//! retried; poison messages (unparseable, unknown order) are reported too and reach the DLQ after
//! `maxReceiveCount` receives instead of looping forever.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use tracing::Instrument;

use super::Worker;
use crate::application::{self, AppError, SettlePayment};
use crate::domain::{Order, OrderStatus};
use crate::messages::{OrderEvent, OrderPlaced, TRACE_ID_ATTRIBUTE};
use crate::ports::{
    Clock, Notifier, OrderReader, OrderSettler, PaymentError, PaymentGateway, StoreError,
    WebhookStore,
};

/// How one message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// This delivery moved the order to a terminal status.
    Settled(OrderStatus),
    /// Nothing to do: already terminal, cancelled first, or settled by a concurrent delivery.
    AlreadyDone(OrderStatus),
}

/// Why a message could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The body is not an `OrderPlaced`.
    #[error("message body is not an OrderPlaced")]
    Unparseable(#[source] serde_json::Error),
    /// The order does not exist.
    #[error("order {0} does not exist")]
    UnknownOrder(String),
    /// DynamoDB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The payment provider failed technically.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// Settling failed: a store outage (retried) or a fault of ours.
    #[error(transparent)]
    Settle(#[from] AppError),
}

impl ConsumerError {
    /// Whether a later delivery may succeed. Both kinds are reported as batch item failures (the
    /// DLQ is where poison goes); this decides how loudly it is logged.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Store(_) | Self::Payment(_) | Self::Settle(AppError::Unavailable(_))
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
        let trace_id = trace_id(message);
        let span = tracing::info_span!("message", message_id = message.message_id.as_deref().unwrap_or(""), %trace_id);
        async move { (message, settle_message(worker, message, &trace_id).await) }.instrument(span)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message, outcome) in outcomes {
        match outcome {
            Ok(settlement) => tracing::info!(?settlement, "message handled"),
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

fn trace_id(message: &SqsMessage) -> String {
    message
        .message_attributes
        .get(TRACE_ID_ATTRIBUTE)
        .and_then(|a| a.string_value.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Settles the order one message names.
pub async fn settle_message<S, P, N, Q, C>(
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
    let order = worker
        .store
        .get_order(&placed.order_id)
        .await?
        .ok_or_else(|| ConsumerError::UnknownOrder(placed.order_id.to_string()))?;
    let settle = SettlePayment {
        store: &worker.store,
        notifier: &worker.notifier,
        clock: &worker.clock,
    };
    let processing = match order.status {
        OrderStatus::Pending => {
            // A webhook that came before the order decides; no charge.
            if let Some(settled) = settle.apply_pending(order.clone(), trace_id).await? {
                return Ok(Settlement::from(settled));
            }
            match claim(worker, &order, trace_id).await? {
                Some(processing) => processing,
                // Lost: to a cancel or a settlement (done), or to another delivery's claim (the
                // store tells this claim's own write, whose answer was lost, from it). A
                // PROCESSING order is resumed, as a redelivery resumes it, without its event (the
                // winner announces it): acknowledging it could leave it PROCESSING with no message
                // should the winner fail for good (an order from items is in no index).
                None => match current(worker, &order).await? {
                    current if current.status == OrderStatus::Processing => current,
                    current => return Ok(Settlement::AlreadyDone(current.status)),
                },
            }
        }
        OrderStatus::Processing => order,
        done => return Ok(Settlement::AlreadyDone(done)),
    };
    let outcome = worker.payments.charge(&processing).await?;
    Ok(settle.run(processing, &outcome, trace_id).await?.into())
}

impl From<application::Settlement> for Settlement {
    fn from(settlement: application::Settlement) -> Self {
        match settlement {
            application::Settlement::Settled(order) => Settlement::Settled(order.status),
            application::Settlement::AlreadyDone(order) => Settlement::AlreadyDone(order.status),
        }
    }
}

/// PENDING -> PROCESSING, announced; `None` when a cancel (or another delivery) got there first.
async fn claim<S, P, N, Q, C>(
    worker: &Worker<S, P, N, Q, C>,
    order: &Order,
    trace_id: &str,
) -> Result<Option<Order>, ConsumerError>
where
    S: OrderSettler,
    N: Notifier,
    C: Clock,
{
    let processing = order
        .transitioned(OrderStatus::Processing, worker.clock.now())
        .expect("PENDING may become PROCESSING");
    if !worker.store.start_processing(&processing).await? {
        return Ok(None);
    }
    announce(worker, &processing, None, trace_id).await;
    Ok(Some(processing))
}

/// The order as stored now (as `order` if it is gone).
async fn current<S: OrderReader, P, N, Q, C>(
    worker: &Worker<S, P, N, Q, C>,
    order: &Order,
) -> Result<Order, ConsumerError> {
    Ok(worker
        .store
        .get_order(&order.id)
        .await?
        .unwrap_or_else(|| order.clone()))
}

async fn announce<S, P, N: Notifier, Q, C>(
    worker: &Worker<S, P, N, Q, C>,
    order: &Order,
    reason: Option<String>,
    trace_id: &str,
) {
    if let Some(event) = OrderEvent::for_order(order, reason, trace_id) {
        worker.notifier.notify(&order.user_id, &event).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{
        IdempotencyKey, Money, OrderId, OrderItem, Product, ProductId, Quantity, UserId,
    };
    use crate::messages::OrderEventKind;
    use crate::ports::{OrderReader, PaymentOutcome, StockReserver};
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

    fn announced(worker: &TestWorker) -> Vec<OrderEventKind> {
        worker
            .notifier
            .events()
            .into_iter()
            .map(|(_, e)| e.event)
            .collect()
    }

    #[tokio::test]
    async fn a_pending_order_is_charged_paid_and_announced_twice() {
        let worker = worker();
        placed(&worker, "o1", 2).await;

        let response = handle(&worker, batch(vec![order_message("o1")])).await;

        assert!(failed(&response).is_empty());
        assert_eq!(status(&worker, "o1").await, OrderStatus::Paid);
        assert_eq!(
            announced(&worker),
            vec![OrderEventKind::OrderProcessing, OrderEventKind::OrderPaid]
        );
        let (user, event) = &worker.notifier.events()[1];
        assert_eq!(
            (
                user.as_str(),
                event.trace_id.as_str(),
                event.total_amount.as_str()
            ),
            ("alice", "trace-m-o1", "5.00")
        );
        assert_eq!(worker.store.stock("p"), Some(8));
    }

    #[tokio::test]
    async fn a_declined_payment_fails_the_order_and_gives_the_stock_back() {
        let worker = worker();
        placed(&worker, "o1", 3).await;
        worker.payments.then(Ok(PaymentOutcome::Declined {
            reason: "card_declined".into(),
        }));

        handle(&worker, batch(vec![order_message("o1")])).await;

        assert_eq!(status(&worker, "o1").await, OrderStatus::Failed);
        assert_eq!(worker.store.stock("p"), Some(10));
        let (_, event) = worker.notifier.events().pop().unwrap();
        assert_eq!(
            (event.event, event.reason.as_deref()),
            (OrderEventKind::OrderFailed, Some("card_declined"))
        );
    }

    #[tokio::test]
    async fn the_same_message_twice_settles_once_and_announces_one_terminal_event() {
        let worker = worker();
        placed(&worker, "o1", 1).await;

        let response = handle(
            &worker,
            batch(vec![order_message("o1"), order_message("o1")]),
        )
        .await;
        handle(&worker, batch(vec![order_message("o1")])).await;

        assert!(failed(&response).is_empty());
        assert_eq!(status(&worker, "o1").await, OrderStatus::Paid);
        let terminal = announced(&worker)
            .into_iter()
            .filter(|e| *e == OrderEventKind::OrderPaid)
            .count();
        assert_eq!(terminal, 1);
        assert_eq!(worker.store.stock("p"), Some(9));
    }

    #[tokio::test]
    async fn a_cancelled_order_is_acknowledged_without_a_charge() {
        let worker = worker();
        let order = placed(&worker, "o1", 1).await;
        worker
            .store
            .cancel_order(&order.cancelled(worker.clock.now()).unwrap())
            .await
            .unwrap();

        let response = handle(&worker, batch(vec![order_message("o1")])).await;

        assert!(failed(&response).is_empty());
        assert!(worker.payments.charges().is_empty());
        assert_eq!(status(&worker, "o1").await, OrderStatus::Cancelled);
        assert!(announced(&worker).is_empty());
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
    }

    #[tokio::test]
    async fn a_technical_payment_error_is_retried_and_the_redelivery_resumes_processing() {
        let worker = worker();
        placed(&worker, "o1", 1).await;
        worker.payments.then(Err(()));

        let first = handle(&worker, batch(vec![order_message("o1")])).await;
        assert_eq!(failed(&first), vec!["m-o1".to_owned()]);
        assert_eq!(status(&worker, "o1").await, OrderStatus::Processing);

        let again = handle(&worker, batch(vec![order_message("o1")])).await;
        assert!(failed(&again).is_empty());
        assert_eq!(status(&worker, "o1").await, OrderStatus::Paid);
        assert_eq!(
            announced(&worker),
            vec![OrderEventKind::OrderProcessing, OrderEventKind::OrderPaid]
        );
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
