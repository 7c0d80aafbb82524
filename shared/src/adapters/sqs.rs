//! The order queue on SQS: one message per placed order, the trace id as a message attribute and
//! the invocation's X-Ray trace header as the `AWSTraceHeader` system attribute; and, for the
//! reconciler, its dead-letter queue.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
};

use crate::messages::{OrderPlaced, TRACE_ID_ATTRIBUTE};
use crate::ports::{DeadLetter, DeadLetters, NotWired, OrderQueue, QueueError, Reachable};
use crate::xray::TraceHeader;

/// How long a dead letter the reconciler received stays hidden: past the run that received it.
const DEAD_LETTER_VISIBILITY_SECONDS: i32 = 60;

/// Sends [`OrderPlaced`] messages to the order queue.
#[derive(Debug, Clone)]
pub struct SqsOrderQueue {
    client: Client,
    queue_url: String,
    dead_letter_url: Option<String>,
}

impl SqsOrderQueue {
    /// Sends to `queue_url` (`ORDER_QUEUE_URL`: the template passes it, so no `GetQueueUrl` runs
    /// at cold start).
    pub fn new(client: Client, queue_url: String) -> Self {
        Self {
            client,
            queue_url,
            dead_letter_url: None,
        }
    }

    /// The same, also receiving from the dead-letter queue at `url` (`ORDER_DLQ_URL`).
    #[must_use]
    pub fn with_dead_letters(mut self, url: String) -> Self {
        self.dead_letter_url = Some(url);
        self
    }

    fn dead_letter_url(&self) -> Result<&str, QueueError> {
        self.dead_letter_url
            .as_deref()
            .ok_or_else(|| QueueError(Box::new(NotWired("the dead-letter queue"))))
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

impl OrderQueue for SqsOrderQueue {
    async fn enqueue(&self, message: &OrderPlaced, delay: Duration) -> Result<(), QueueError> {
        let body = serde_json::to_string(message).map_err(|e| QueueError(Box::new(e)))?;
        let trace = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&message.trace_id)
            .build()
            .map_err(|e| QueueError(Box::new(e)))?;
        // With active tracing, SQS and Lambda join the consumer's invocation to this trace.
        let xray = TraceHeader::current()
            .map(|header| {
                MessageSystemAttributeValue::builder()
                    .data_type("String")
                    .string_value(header.to_string())
                    .build()
            })
            .transpose()
            .map_err(|e| QueueError(Box::new(e)))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes(TRACE_ID_ATTRIBUTE, trace)
            .set_message_system_attributes(
                xray.map(|value| {
                    [(MessageSystemAttributeNameForSends::AwsTraceHeader, value)].into()
                }),
            )
            .delay_seconds(i32::try_from(delay.as_secs().min(900)).unwrap_or(900))
            .send()
            .await
            .map_err(|e| QueueError(Box::new(e)))?;
        Ok(())
    }
}

impl DeadLetters for SqsOrderQueue {
    async fn receive_dead(&self, max: u32) -> Result<Vec<DeadLetter>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(self.dead_letter_url()?)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .visibility_timeout(DEAD_LETTER_VISIBILITY_SECONDS)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| QueueError(Box::new(e)))?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|message| {
                Some(DeadLetter {
                    body: message.body.unwrap_or_default(),
                    receipt: message.receipt_handle?,
                })
            })
            .collect())
    }

    async fn remove_dead(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(self.dead_letter_url()?)
            .receipt_handle(&letter.receipt)
            .send()
            .await
            .map_err(|e| QueueError(Box::new(e)))?;
        Ok(())
    }
}

impl Reachable for SqsOrderQueue {
    async fn unreachable(&self) -> Vec<&'static str> {
        let probe = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .send();
        match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
            Ok(Ok(_)) => Vec::new(),
            _ => vec!["order-queue"],
        }
    }
}
