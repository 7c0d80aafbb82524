//! Lambda's SQS event source mapping, emulated: pollers long-poll a queue, hand each batch to the
//! handler as the `SqsEvent` Lambda would send, and delete what the handler did not report failed.
//!
//! Failed messages are left alone, as Lambda leaves them: they reappear after the queue's visibility
//! timeout with a higher receive count, and the queue's redrive policy moves them to its dead-letter
//! queue after `maxReceiveCount` receives. Nothing here retries or counts on its own.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::server::ServerTask;

/// The function an event source invokes: what a Lambda handler over `SqsEvent` is, minus the runtime.
pub type SqsHandler =
    Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync + 'static>;

/// How an event source polls and scales.
#[derive(Debug, Clone, Copy)]
pub struct EventSourceOptions {
    /// Messages per `ReceiveMessage` and so per invocation (Lambda's `BatchSize`, at most 10).
    pub batch_size: i32,
    /// Pollers kept running while the queue is empty (AWS keeps a few).
    pub min_pollers: usize,
    /// Most pollers, each with at most one invocation in flight: the mapping's
    /// `ScalingConfig.MaximumConcurrency` (the template's `ConsumerMaximumConcurrency`).
    pub max_concurrency: usize,
    /// Shortest time between two added pollers. AWS adds at most 300 concurrent invocations a
    /// minute in on-demand mode: one every 200 ms.
    pub scale_up_interval: Duration,
    /// Long-poll wait. Short, so that a stop never waits long for an outstanding receive.
    pub wait_time_seconds: i32,
}

impl Default for EventSourceOptions {
    fn default() -> Self {
        EventSourceOptions {
            batch_size: 10,
            min_pollers: 2,
            max_concurrency: 20,
            scale_up_interval: Duration::from_millis(200),
            wait_time_seconds: 1,
        }
    }
}

/// How long a poller waits after a failed `ReceiveMessage` before it tries again.
const POLL_ERROR_BACKOFF: Duration = Duration::from_millis(500);

/// Polls `queue_url` and invokes `handler` with each batch until the returned task is stopped.
///
/// Scaling follows the backlog as Lambda's on-demand mode does: a receive that comes back with a
/// full batch means messages are waiting, so one more poller starts (at most one per
/// `scale_up_interval`, up to `max_concurrency`); a receive that comes back empty means the queue
/// has run dry, so that poller stops (down to `min_pollers`).
pub(crate) fn spawn_sqs_event_source(
    client: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    region: String,
    options: EventSourceOptions,
    handler: SqsHandler,
) -> (ServerTask, Arc<Scaling>) {
    let min = options.min_pollers.max(1);
    let max = options.max_concurrency.max(min);
    let scaling = Arc::new(Scaling::new(min, max, options.scale_up_interval));
    let (grow, mut grow_requests) = mpsc::unbounded_channel::<()>();
    let source = Arc::new(EventSource {
        client,
        queue_url,
        queue_arn,
        region,
        options,
        handler,
        scaling: Arc::clone(&scaling),
        grow,
    });
    let task = ServerTask::spawn("sqs-event-source", move |mut stop| async move {
        let (stopping, stopped) = watch::channel(false);
        let mut pollers = JoinSet::new();
        for _ in 0..min {
            source.scaling.started();
            pollers.spawn(Arc::clone(&source).poll(stopped.clone()));
        }
        loop {
            tokio::select! {
                () = &mut stop => break,
                Some(()) = grow_requests.recv() => {
                    pollers.spawn(Arc::clone(&source).poll(stopped.clone()));
                }
                // Reaps the pollers that stopped on an empty receive.
                Some(_) = pollers.join_next(), if !pollers.is_empty() => {}
            }
        }
        // An invocation in flight finishes and its batch is settled; a waiting receive is dropped.
        let _ = stopping.send(true);
        while pollers.join_next().await.is_some() {}
    });
    (task, scaling)
}

/// How many pollers run, and the rules for adding and removing one.
#[derive(Debug)]
pub struct Scaling {
    pollers: AtomicUsize,
    peak: AtomicUsize,
    min: usize,
    max: usize,
    interval: Duration,
    last_added: Mutex<Option<Instant>>,
}

impl Scaling {
    fn new(min: usize, max: usize, interval: Duration) -> Self {
        Scaling {
            pollers: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            min,
            max,
            interval,
            last_added: Mutex::new(None),
        }
    }

    /// Pollers running now.
    pub fn pollers(&self) -> usize {
        self.pollers.load(Ordering::SeqCst)
    }

    /// Most pollers that ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn started(&self) {
        let now = self.pollers.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    /// Claims a new poller's place when the backlog calls for one and the pace allows it.
    fn try_grow(&self) -> bool {
        let mut last = self.last_added.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < self.interval) {
            return false;
        }
        let grown = self
            .pollers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            });
        match grown {
            Ok(previous) => {
                self.peak.fetch_max(previous + 1, Ordering::SeqCst);
                *last = Some(Instant::now());
                true
            }
            Err(_) => false,
        }
    }

    /// Gives up this poller's place when more than the minimum run.
    fn try_shrink(&self) -> bool {
        self.pollers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n > self.min).then_some(n - 1)
            })
            .is_ok()
    }

    fn stopped(&self) {
        self.pollers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One queue's mapping to one handler.
struct EventSource {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    region: String,
    options: EventSourceOptions,
    handler: SqsHandler,
    scaling: Arc<Scaling>,
    grow: mpsc::UnboundedSender<()>,
}

impl EventSource {
    async fn poll(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        loop {
            let receive = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(self.options.batch_size)
                .wait_time_seconds(self.options.wait_time_seconds)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send();
            let received = tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                received = receive => received,
            };
            match received {
                Ok(output) => {
                    let messages = output.messages.unwrap_or_default();
                    if messages.is_empty() {
                        if self.scaling.try_shrink() {
                            return;
                        }
                        continue;
                    }
                    let full =
                        messages.len() >= usize::try_from(self.options.batch_size).unwrap_or(10);
                    if full && self.scaling.try_grow() && self.grow.send(()).is_err() {
                        // The source is stopping: the place claimed is not taken.
                        self.scaling.stopped();
                    }
                    self.invoke(messages).await;
                }
                Err(error) => {
                    tracing::warn!(
                        queue = %self.queue_url,
                        error = %aws_sdk_sqs::error::DisplayErrorContext(&error),
                        "ReceiveMessage failed; polling again shortly"
                    );
                    tokio::select! {
                        _ = stopped.wait_for(|stop| *stop) => break,
                        () = tokio::time::sleep(POLL_ERROR_BACKOFF) => {}
                    }
                }
            }
        }
        self.scaling.stopped();
    }

    /// One invocation: the event, the handler, then the deletes.
    async fn invoke(&self, messages: Vec<Message>) {
        let event = match self.event(&messages) {
            Ok(event) => event,
            Err(error) => {
                // Cannot happen for what SQS returns; left in the queue, the batch ends in the DLQ.
                tracing::error!(%error, "the received batch does not make an SqsEvent");
                return;
            }
        };
        let invocation = AssertUnwindSafe((self.handler)(event)).catch_unwind();
        let failed: HashSet<&str> = match invocation.await {
            Ok(response) => self.failed_ids(&messages, &response),
            Err(panic) => {
                tracing::error!(
                    queue = %self.queue_url,
                    panic = panic_message(&*panic),
                    "the handler panicked; every message of the batch counts as failed"
                );
                return;
            }
        };
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
            .collect();
        tracing::debug!(
            queue = %self.queue_url,
            batch = messages.len(),
            failed = failed.len(),
            "invocation settled"
        );
        self.delete(&done).await;
    }

    /// The event Lambda sends, built as its JSON and read back through serde as the runtime reads it,
    /// so a field the handler relies on is spelled exactly as in AWS.
    fn event(&self, messages: &[Message]) -> serde_json::Result<SqsEvent> {
        let records: Vec<Value> = messages.iter().map(|m| self.record(m)).collect();
        serde_json::from_value(json!({ "Records": records }))
    }

    fn record(&self, message: &Message) -> Value {
        let attributes: Map<String, Value> = message
            .attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str().to_owned(), Value::from(value.as_str())))
            .collect();
        let message_attributes: Map<String, Value> = message
            .message_attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.clone(), message_attribute(value)))
            .collect();
        json!({
            "messageId": message.message_id(),
            "receiptHandle": message.receipt_handle(),
            "body": message.body(),
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.md5_of_body(),
            "md5OfMessageAttributes": message.md5_of_message_attributes(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        })
    }

    /// The message ids to leave in the queue. Like Lambda, a failure that names no message of the
    /// batch (empty or unknown id) fails the whole batch.
    fn failed_ids<'a>(
        &self,
        messages: &'a [Message],
        response: &SqsBatchResponse,
    ) -> HashSet<&'a str> {
        let ids: HashSet<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
        let named: HashSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        if let Some(unknown) = named.iter().find(|id| !ids.contains(**id)) {
            tracing::error!(
                queue = %self.queue_url,
                item_identifier = unknown,
                "batchItemFailures names no message of the batch; the whole batch counts as failed"
            );
            return ids;
        }
        ids.into_iter().filter(|id| named.contains(id)).collect()
    }

    /// `DeleteMessageBatch` for the settled messages, ten at a time (its limit).
    async fn delete(&self, messages: &[&Message]) {
        for chunk in messages.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(index, message)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(message.receipt_handle()?)
                        .build()
                        .ok()
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            match self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => {
                    for failure in output.failed() {
                        // Processed but still queued: it comes back, and the handler sees a duplicate.
                        tracing::warn!(
                            queue = %self.queue_url,
                            code = failure.code(),
                            message = failure.message(),
                            "a processed message was not deleted"
                        );
                    }
                }
                Err(error) => tracing::warn!(
                    queue = %self.queue_url,
                    error = %aws_sdk_sqs::error::DisplayErrorContext(&error),
                    "DeleteMessageBatch failed; the processed messages will be delivered again"
                ),
            }
        }
    }
}

/// A message attribute as Lambda writes it: list fields always present, binaries in base64.
fn message_attribute(value: &MessageAttributeValue) -> Value {
    let mut attribute = Map::new();
    if let Some(text) = value.string_value() {
        attribute.insert("stringValue".into(), text.into());
    }
    if let Some(binary) = value.binary_value() {
        attribute.insert("binaryValue".into(), BASE64.encode(binary.as_ref()).into());
    }
    attribute.insert(
        "stringListValues".into(),
        value.string_list_values().to_vec().into(),
    );
    attribute.insert(
        "binaryListValues".into(),
        value
            .binary_list_values()
            .iter()
            .map(|b| Value::from(BASE64.encode(b.as_ref())))
            .collect::<Vec<_>>()
            .into(),
    );
    attribute.insert("dataType".into(), value.data_type().into());
    Value::Object(attribute)
}

/// The text a panic carries, when it is a string.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::primitives::Blob;

    fn source() -> EventSource {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .build();
        EventSource {
            client: aws_sdk_sqs::Client::from_conf(config),
            queue_url: "http://127.0.0.1:1/000000000000/orders".into(),
            queue_arn: "arn:aws:sqs:eu-west-1:000000000000:orders".into(),
            region: "eu-west-1".into(),
            options: EventSourceOptions::default(),
            handler: Arc::new(|_| Box::pin(async { SqsBatchResponse::default() })),
            scaling: Arc::new(Scaling::new(2, 2, Duration::ZERO)),
            grow: mpsc::unbounded_channel().0,
        }
    }

    #[test]
    fn pollers_grow_at_the_allowed_pace_up_to_the_maximum_and_shrink_to_the_minimum() {
        let scaling = Scaling::new(2, 4, Duration::from_secs(3600));
        scaling.started();
        scaling.started();
        assert!(scaling.try_grow(), "the first poller added needs no wait");
        assert!(!scaling.try_grow(), "the next one waits for the interval");
        assert_eq!(scaling.pollers(), 3);

        let fast = Scaling::new(1, 2, Duration::ZERO);
        fast.started();
        assert!(fast.try_grow());
        assert!(!fast.try_grow(), "never past the maximum");
        assert_eq!(fast.peak(), 2);
        assert!(fast.try_shrink());
        assert!(!fast.try_shrink(), "never under the minimum");
        assert_eq!(fast.pollers(), 1);
    }

    fn message(id: &str) -> Message {
        Message::builder()
            .message_id(id)
            .receipt_handle(format!("handle-{id}"))
            .body(r#"{"order_id":"o-1"}"#)
            .md5_of_body("5d41402abc4b2a76b9719d911017c592")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1520621625029")
            .message_attributes(
                "trace_id",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("trace-1")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "blob",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(b"1100".to_vec()))
                    .build()
                    .unwrap(),
            )
            .build()
    }

    fn failures(ids: &[&str]) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.set_failures(ids.iter().copied());
        response
    }

    #[test]
    fn the_event_has_the_shape_lambda_sends() {
        let event = source().event(&[message("m-1")]).unwrap();

        let record = &event.records[0];
        assert_eq!(record.message_id.as_deref(), Some("m-1"));
        assert_eq!(record.receipt_handle.as_deref(), Some("handle-m-1"));
        assert_eq!(record.body.as_deref(), Some(r#"{"order_id":"o-1"}"#));
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(
            record.event_source_arn.as_deref(),
            Some("arn:aws:sqs:eu-west-1:000000000000:orders")
        );
        assert_eq!(record.aws_region.as_deref(), Some("eu-west-1"));
        assert_eq!(record.attributes["ApproximateReceiveCount"], "2");
        assert_eq!(record.attributes["SentTimestamp"], "1520621625029");
        let trace = &record.message_attributes["trace_id"];
        assert_eq!(trace.string_value.as_deref(), Some("trace-1"));
        assert_eq!(trace.data_type.as_deref(), Some("String"));
        let blob = &record.message_attributes["blob"];
        assert_eq!(blob.binary_value.as_ref().unwrap().0, b"1100");
    }

    #[test]
    fn a_record_is_spelled_like_the_lambda_fixture() {
        let record = source().record(&message("m-1"));

        for key in [
            "messageId",
            "receiptHandle",
            "body",
            "attributes",
            "messageAttributes",
            "md5OfBody",
            "eventSource",
            "eventSourceARN",
            "awsRegion",
        ] {
            assert!(record.get(key).is_some(), "{key} missing from {record}");
        }
        assert_eq!(
            record["messageAttributes"]["trace_id"],
            json!({"stringValue": "trace-1", "stringListValues": [], "binaryListValues": [], "dataType": "String"})
        );
    }

    #[test]
    fn only_the_reported_messages_stay_in_the_queue() {
        let batch = [message("a"), message("b"), message("c")];

        let failed = source().failed_ids(&batch, &failures(&["b"]));

        assert_eq!(failed, HashSet::from(["b"]));
    }

    #[test]
    fn a_failure_naming_no_message_of_the_batch_fails_the_whole_batch() {
        let batch = [message("a"), message("b")];

        let unknown = source().failed_ids(&batch, &failures(&["zzz"]));
        let empty = source().failed_ids(&batch, &failures(&[""]));

        assert_eq!(unknown, HashSet::from(["a", "b"]));
        assert_eq!(empty, HashSet::from(["a", "b"]));
    }

    #[test]
    fn an_empty_response_means_the_whole_batch_succeeded() {
        let batch = [message("a"), message("b")];

        assert!(
            source()
                .failed_ids(&batch, &SqsBatchResponse::default())
                .is_empty()
        );
    }
}
