//! The order queue on SQS: one message per placed order, the trace id as a message attribute.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::messages::{OrderPlaced, TRACE_ID_ATTRIBUTE};
use crate::ports::{OrderQueue, QueueError, Reachable};

/// Sends [`OrderPlaced`] messages to the order queue.
#[derive(Debug, Clone)]
pub struct SqsOrderQueue {
    client: Client,
    queue_url: String,
}

impl SqsOrderQueue {
    /// Sends to `queue_url` (`ORDER_QUEUE_URL`: the template passes it, so no `GetQueueUrl` runs
    /// at cold start).
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, queue_url }
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
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes(TRACE_ID_ATTRIBUTE, trace)
            .delay_seconds(i32::try_from(delay.as_secs().min(900)).unwrap_or(900))
            .send()
            .await
            .map_err(|e| QueueError(Box::new(e)))?;
        Ok(())
    }
}

impl Reachable for SqsOrderQueue {
    async fn reachable(&self) -> bool {
        let probe = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .send();
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), probe).await,
            Ok(Ok(_))
        )
    }
}
