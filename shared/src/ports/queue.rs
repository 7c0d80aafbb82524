//! The order queue that hands placed orders to the payment pipeline, and its dead-letter queue.

use std::future::Future;
use std::time::Duration;

use super::NotWired;
use crate::messages::OrderPlaced;

/// A failure to hand a message to the queue.
#[derive(Debug, thiserror::Error)]
#[error("the queue is unavailable")]
pub struct QueueError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Hands placed orders to the payment pipeline.
pub trait OrderQueue: Send + Sync {
    /// Sends one message, carrying the trace id as a message attribute, delivered after `delay`
    /// (SQS `DelaySeconds`, at most 15 minutes; zero delivers at once).
    fn enqueue(
        &self,
        message: &OrderPlaced,
        delay: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// A message of the order queue's dead-letter queue: it ran out of receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The body, as sent.
    pub body: String,
    /// What removes it (SQS's receipt handle).
    pub receipt: String,
}

/// The order queue's dead-letter queue, which the reconciler empties: a message whose order is
/// not settled goes back to the order queue, any other is removed.
pub trait DeadLetters: Send + Sync {
    /// Up to `max` messages, hidden from other receivers for a while (not removed).
    fn receive_dead(
        &self,
        max: u32,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, QueueError>> + Send;
    /// Removes one received message.
    fn remove_dead(
        &self,
        letter: &DeadLetter,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

impl<Q: OrderQueue> OrderQueue for Option<Q> {
    async fn enqueue(&self, message: &OrderPlaced, delay: Duration) -> Result<(), QueueError> {
        match self {
            Some(queue) => queue.enqueue(message, delay).await,
            None => Err(QueueError(Box::new(NotWired("the order queue")))),
        }
    }
}

impl<Q: DeadLetters> DeadLetters for Option<Q> {
    async fn receive_dead(&self, max: u32) -> Result<Vec<DeadLetter>, QueueError> {
        match self {
            Some(queue) => queue.receive_dead(max).await,
            None => Err(QueueError(Box::new(NotWired("the order queue")))),
        }
    }

    async fn remove_dead(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        match self {
            Some(queue) => queue.remove_dead(letter).await,
            None => Err(QueueError(Box::new(NotWired("the order queue")))),
        }
    }
}
