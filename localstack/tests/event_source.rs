//! The SQS event source emulation against the embedded rustack-sqs, with handlers that fail chosen
//! messages: successes are deleted, failures come back after the visibility timeout with a higher
//! receive count, a message that always fails reaches the DLQ without holding up the others, and
//! the handler sees the event Lambda sends.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use localstack::testing::{EmbeddedAws, SqsEventSource, SqsHandler};
use shared::adapters::sqs::SqsOrderQueue;
use shared::domain::{OrderId, UserId};
use shared::messages::OrderPlaced;
use shared::ports::OrderQueue;
use shared::xray::{self, TraceHeader};
use support::{REGION, create_queue, queue_arn, redrive_policy, sqs_client};

/// Messages come back one second after a failure, and a message fails twice before the DLQ.
const MAX_RECEIVE_COUNT: u32 = 2;

/// A queue with a 1 s visibility timeout and a DLQ, on a fresh embedded endpoint.
struct Fixture {
    aws: EmbeddedAws,
    sqs: Client,
    queue_url: String,
    queue_arn: String,
    dlq_url: String,
}

impl Fixture {
    async fn start() -> Fixture {
        let aws = EmbeddedAws::start(REGION).await.unwrap();
        let sqs = sqs_client(aws.endpoint());
        let dlq_url = create_queue(&sqs, "orders-dlq", &[]).await;
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let queue_url = create_queue(
            &sqs,
            "orders",
            &[
                (QueueAttributeName::VisibilityTimeout, "1".into()),
                (
                    QueueAttributeName::RedrivePolicy,
                    redrive_policy(&dlq_arn, MAX_RECEIVE_COUNT),
                ),
            ],
        )
        .await;
        let queue_arn = queue_arn(&sqs, &queue_url).await;
        Fixture {
            aws,
            sqs,
            queue_url,
            queue_arn,
            dlq_url,
        }
    }

    fn event_source(&self, handler: SqsHandler) -> SqsEventSource {
        SqsEventSource::start(
            self.sqs.clone(),
            self.queue_url.clone(),
            self.queue_arn.clone(),
            REGION.to_owned(),
            handler,
        )
    }

    async fn send(&self, body: &str) -> String {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes(
                "trace_id",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(format!("trace-{body}"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .message_id
            .unwrap()
    }

    /// Visible plus in-flight messages of a queue.
    async fn depth(&self, queue_url: &str) -> u64 {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        attributes.values().map(|v| v.parse::<u64>().unwrap()).sum()
    }
}

/// One delivery the handler saw.
#[derive(Debug, Clone)]
struct Delivery {
    body: String,
    receive_count: u32,
    at: Instant,
    record: SqsMessage,
}

/// Every delivery, in order.
#[derive(Default)]
struct Deliveries(Mutex<Vec<Delivery>>);

impl Deliveries {
    fn of(&self, body: &str) -> Vec<Delivery> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.body == body)
            .cloned()
            .collect()
    }

    fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for delivery in self.0.lock().unwrap().iter() {
            *counts.entry(delivery.body.clone()).or_default() += 1;
        }
        counts
    }
}

/// A handler that records every delivery and fails those `fails(body, receive_count)` picks.
fn recording_handler(
    deliveries: &Arc<Deliveries>,
    fails: impl Fn(&str, u32) -> bool + Send + Sync + 'static,
) -> SqsHandler {
    let deliveries = Arc::clone(deliveries);
    let fails = Arc::new(fails);
    Arc::new(move |event: SqsEvent| {
        let (deliveries, fails) = (Arc::clone(&deliveries), Arc::clone(&fails));
        Box::pin(async move {
            let mut failed = Vec::new();
            for record in event.records {
                let body = record.body.clone().unwrap_or_default();
                let receive_count = record.attributes["ApproximateReceiveCount"]
                    .parse()
                    .unwrap();
                if fails(&body, receive_count) {
                    failed.push(record.message_id.clone().unwrap());
                }
                deliveries.0.lock().unwrap().push(Delivery {
                    body,
                    receive_count,
                    at: Instant::now(),
                    record,
                });
            }
            let mut response = SqsBatchResponse::default();
            response.set_failures(failed);
            response
        })
    })
}

async fn until(within: Duration, done: impl Fn() -> bool) {
    let give_up = Instant::now() + within;
    while !done() && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successes_are_deleted_and_failures_come_back_with_a_higher_receive_count() {
    let fixture = Fixture::start().await;
    let deliveries = Arc::new(Deliveries::default());
    let source = fixture.event_source(recording_handler(&deliveries, |body, receive_count| {
        body == "flaky" && receive_count == 1
    }));

    for body in ["ok-1", "flaky", "ok-2"] {
        fixture.send(body).await;
    }
    until(Duration::from_secs(15), || {
        deliveries.of("flaky").len() >= 2
    })
    .await;
    // Long enough for a message that was wrongly left in the queue to come back.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let flaky = deliveries.of("flaky");
    assert_eq!(
        flaky.iter().map(|d| d.receive_count).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(
        flaky[1].at - flaky[0].at >= Duration::from_millis(900),
        "redelivered after {:?}, before the visibility timeout",
        flaky[1].at - flaky[0].at
    );
    assert_eq!(
        deliveries.counts(),
        HashMap::from([("ok-1".into(), 1), ("ok-2".into(), 1), ("flaky".into(), 2)])
    );
    assert_eq!(fixture.depth(&fixture.queue_url).await, 0);
    assert_eq!(fixture.depth(&fixture.dlq_url).await, 0);
    source.stop().await;
    fixture.aws.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_always_fails_ends_in_the_dlq_while_the_others_are_processed() {
    let fixture = Fixture::start().await;
    let deliveries = Arc::new(Deliveries::default());
    let source = fixture.event_source(recording_handler(&deliveries, |body, _| body == "poison"));

    fixture.send("poison").await;
    for n in 1..=5 {
        fixture.send(&format!("ok-{n}")).await;
    }
    let mut dead = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(20);
    while dead.is_empty() && Instant::now() < give_up {
        dead = fixture
            .sqs
            .receive_message()
            .queue_url(&fixture.dlq_url)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
    }

    assert_eq!(dead.len(), 1, "the poison message in the DLQ");
    assert_eq!(dead[0].body(), Some("poison"));
    let trace = &dead[0].message_attributes().unwrap()["trace_id"];
    assert_eq!(trace.string_value(), Some("trace-poison"));
    let poison = deliveries.of("poison");
    assert_eq!(
        poison.iter().map(|d| d.receive_count).collect::<Vec<_>>(),
        [1, 2],
        "delivered maxReceiveCount times, then moved"
    );
    for n in 1..=5 {
        let ok = deliveries.of(&format!("ok-{n}"));
        assert_eq!(ok.len(), 1, "ok-{n} delivered {} times", ok.len());
        // Handled at its first delivery, not after the poison message was given up on.
        assert!(
            ok[0].at < poison[1].at,
            "ok-{n} waited for the poison message"
        );
    }
    assert_eq!(fixture.depth(&fixture.queue_url).await, 0);
    source.stop().await;
    fixture.aws.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_sees_the_event_lambda_sends() {
    let fixture = Fixture::start().await;
    let deliveries = Arc::new(Deliveries::default());
    let source = fixture.event_source(recording_handler(&deliveries, |_, _| false));

    let sent = fixture
        .sqs
        .send_message()
        .queue_url(&fixture.queue_url)
        .message_body(r#"{"order_id":"o-1"}"#)
        .message_attributes(
            "trace_id",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("trace-shape")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    until(Duration::from_secs(10), || !deliveries.counts().is_empty()).await;

    let record = deliveries.0.lock().unwrap()[0].record.clone();
    assert_eq!(record.message_id, sent.message_id);
    assert!(record.receipt_handle.is_some_and(|h| !h.is_empty()));
    assert_eq!(record.body.as_deref(), Some(r#"{"order_id":"o-1"}"#));
    assert_eq!(record.md5_of_body, sent.md5_of_message_body);
    assert_eq!(
        record.md5_of_message_attributes,
        sent.md5_of_message_attributes
    );
    assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
    assert_eq!(
        record.event_source_arn.as_deref(),
        Some(fixture.queue_arn.as_str())
    );
    assert_eq!(record.aws_region.as_deref(), Some(REGION));
    assert_eq!(record.attributes["ApproximateReceiveCount"], "1");
    for name in [
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    ] {
        assert!(record.attributes.contains_key(name), "{name} missing");
    }
    let trace = &record.message_attributes["trace_id"];
    assert_eq!(trace.string_value.as_deref(), Some("trace-shape"));
    assert_eq!(trace.data_type.as_deref(), Some("String"));
    source.stop().await;
    fixture.aws.stop().await;
}

/// The order queue's adapter sends the invocation's X-Ray trace header as the `AWSTraceHeader`
/// system attribute, and the record the consumer gets carries it, as SQS and Lambda do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invocation_trace_header_crosses_the_queue_as_aws_trace_header() {
    let fixture = Fixture::start().await;
    let deliveries = Arc::new(Deliveries::default());
    let source = fixture.event_source(recording_handler(&deliveries, |_, _| false));
    let queue = SqsOrderQueue::new(fixture.sqs.clone(), fixture.queue_url.clone());
    let header = TraceHeader::parse(
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    );
    let placed = |id: &str| OrderPlaced {
        order_id: OrderId::new(id),
        user_id: UserId::new("alice"),
        trace_id: format!("trace-{id}"),
    };

    xray::in_invocation(header, queue.enqueue(&placed("traced"), Duration::ZERO))
        .await
        .unwrap();
    queue
        .enqueue(&placed("untraced"), Duration::ZERO)
        .await
        .unwrap();
    until(Duration::from_secs(10), || deliveries.counts().len() == 2).await;

    let records: HashMap<String, SqsMessage> = deliveries
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|d| (d.body.clone(), d.record.clone()))
        .collect();
    let traced = &records[r#"{"order_id":"traced","user_id":"alice","trace_id":"trace-traced"}"#];
    assert_eq!(
        traced.attributes.get("AWSTraceHeader").map(String::as_str),
        Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    );
    let untraced =
        &records[r#"{"order_id":"untraced","user_id":"alice","trace_id":"trace-untraced"}"#];
    assert!(!untraced.attributes.contains_key("AWSTraceHeader"));
    source.stop().await;
    fixture.aws.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_its_whole_batch() {
    let fixture = Fixture::start().await;
    let deliveries = Arc::new(Deliveries::default());
    let recording = recording_handler(&deliveries, |_, _| false);
    let handler: SqsHandler = Arc::new(move |event: SqsEvent| {
        let first_delivery = event
            .records
            .iter()
            .all(|r| r.attributes["ApproximateReceiveCount"] == "1");
        let recorded = recording(event);
        Box::pin(async move {
            let response = recorded.await;
            assert!(!first_delivery, "the handler panics at first delivery");
            response
        })
    });
    let source = fixture.event_source(handler);

    fixture.send("panics-once").await;
    until(Duration::from_secs(10), || {
        deliveries.of("panics-once").len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let counts: Vec<u32> = deliveries
        .of("panics-once")
        .iter()
        .map(|d| d.receive_count)
        .collect();
    assert_eq!(
        counts,
        [1, 2],
        "delivered again after the panic, then deleted"
    );
    assert_eq!(fixture.depth(&fixture.queue_url).await, 0);
    source.stop().await;
    fixture.aws.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_returns_promptly_while_the_pollers_wait() {
    let fixture = Fixture::start().await;
    let source = fixture.event_source(recording_handler(&Arc::default(), |_, _| false));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopping = Instant::now();
    source.stop().await;

    assert!(
        stopping.elapsed() < Duration::from_millis(500),
        "stop took {:?}",
        stopping.elapsed()
    );
    fixture.aws.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_follow_the_backlog_up_to_the_maximum_concurrency_and_back() {
    let fixture = Fixture::start().await;
    let deliveries = Arc::new(Deliveries::default());
    let recording = recording_handler(&deliveries, |_, _| false);
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most_in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (now, most) = (Arc::clone(&in_flight), Arc::clone(&most_in_flight));
    // Each invocation takes 100 ms, like a batch of charges against a slow provider.
    let handler: SqsHandler = Arc::new(move |event: SqsEvent| {
        use std::sync::atomic::Ordering::SeqCst;
        let recorded = recording(event);
        let (now, most) = (Arc::clone(&now), Arc::clone(&most));
        Box::pin(async move {
            most.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            now.fetch_sub(1, SeqCst);
            recorded.await
        })
    });
    let bodies: Vec<String> = (0..400).map(|n| format!("m{n}")).collect();
    for chunk in bodies.chunks(10) {
        let entries = chunk
            .iter()
            .map(|body| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(body)
                    .message_body(body)
                    .build()
                    .unwrap()
            })
            .collect();
        fixture
            .sqs
            .send_message_batch()
            .queue_url(&fixture.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
    let source = SqsEventSource::start_with(
        fixture.sqs.clone(),
        fixture.queue_url.clone(),
        fixture.queue_arn.clone(),
        REGION.to_owned(),
        localstack::testing::EventSourceOptions {
            min_pollers: 2,
            max_concurrency: 8,
            scale_up_interval: Duration::from_millis(20),
            ..Default::default()
        },
        handler,
    );

    until(Duration::from_secs(20), || {
        deliveries.counts().len() == bodies.len()
    })
    .await;
    assert_eq!(
        deliveries.counts().len(),
        bodies.len(),
        "every message delivered"
    );
    let peak = source.scaling().peak();
    let most = most_in_flight.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        peak, 8,
        "the backlog drove the pollers to the maximum concurrency"
    );
    assert!(
        (3..=8).contains(&most),
        "{most} invocations ran at once with at most 8 pollers"
    );
    // The queue is dry: empty receives take the pollers back to the minimum.
    let shrunk = Instant::now() + Duration::from_secs(10);
    while source.scaling().pollers() > 2 && Instant::now() < shrunk {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        source.scaling().pollers(),
        2,
        "back to the minimum once the queue is empty"
    );
    assert_eq!(fixture.depth(&fixture.queue_url).await, 0);
    source.stop().await;
    fixture.aws.stop().await;
}
