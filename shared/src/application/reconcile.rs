//! Reconciling: no order stays PENDING or PROCESSING forever. The reconciler's schedule runs it.
//!
//! An order's message is the record of its unsettled work, so a run looks where a message can be
//! missing or stuck:
//!
//! - **An order whose message was never sent.** An order from items keeps its stock take marked
//!   in its product's journal until its message is sent. The journal's sweep finds the marks
//!   older than `RECONCILE_AFTER_SECONDS`; for a PENDING owner it sends the message (after the
//!   rest of the cancel window), then releases the mark. A take whose owner was never written is
//!   undone (`adapters/dynamodb/stock_journal/`).
//! - **A message that ran out of receives.** A consumer that fails or dies is retried by SQS
//!   after the visibility timeout (a PROCESSING order resumes at the charge); after
//!   `maxReceiveCount` receives the message is in the dead-letter queue. Each run sends the dead
//!   letters of orders that are not settled back to the order queue and removes the others.
//! - **An order from a hold** (its checkout takes no stock, so it has no journal mark) or one
//!   placed before orders from items left the index: the sparse `unsettled-orders` index, queried
//!   for orders whose last change is older than `RECONCILE_AFTER_SECONDS`.
//!
//! Sending a message for an order that is merely slow is harmless: [`super::ProcessPayment`]'s
//! conditional writes make a duplicate a no-op. A schedule was chosen over DynamoDB Streams: a
//! stream sees the insert, but not the absence of a later change (docs/decisions.md, "The
//! reconciler").

use std::time::Duration;

use chrono::Duration as ChronoDuration;

use crate::domain::{OrderId, OrderStatus, UserId};
use crate::messages::OrderPlaced;
use crate::metrics::{self, BusinessMetric};
use crate::ports::{
    Clock, DeadLetters, JournalSweep, OrderQueue, OrderReader, StockJournal, StockReserver,
    StoreError, UnsettledOrders,
};

/// Most orders re-enqueued per status and run, and most dead letters read per run; the next run
/// takes the rest.
const BATCH: u32 = 200;
/// Dead letters SQS returns per receive at most.
const DEAD_LETTERS_PER_RECEIVE: u32 = 10;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Orders enqueued again (found in the index, or in the journal without a message).
    pub requeued: usize,
    /// Orders whose enqueue failed (tried again next run).
    pub enqueue_failures: usize,
    /// Dead letters whose unsettled order went back to the order queue.
    pub redriven: usize,
    /// Dead letters of settled orders, removed.
    pub dead_removed: usize,
    /// Dead letters left for an operator: unreadable, or naming no order.
    pub dead_left: usize,
    /// Stock moves finished for writers that stopped between their steps.
    pub journal: JournalSweep,
}

impl ReconcileReport {
    /// Whether the run found anything to do.
    pub fn did_something(&self) -> bool {
        *self != Self::default()
    }
}

/// The ports reconciling uses.
pub struct ReconcileOrders<'a, S, Q, C> {
    /// Unsettled orders, the stock journal, and the orders dead letters name.
    pub store: &'a S,
    /// The order queue (messages sent again) and its dead-letter queue.
    pub queue: &'a Q,
    /// The time.
    pub clock: &'a C,
    /// `RECONCILE_AFTER_SECONDS`: how long an order may stay PENDING or PROCESSING unnoticed.
    pub reconcile_after: Duration,
    /// `CANCEL_WINDOW_SECONDS`: added to `reconcile_after` for PENDING orders, whose message is
    /// delayed by that window on purpose.
    pub cancel_window: Duration,
}

impl<S, Q, C> ReconcileOrders<'_, S, Q, C>
where
    S: UnsettledOrders + StockJournal + StockReserver + OrderReader,
    Q: OrderQueue + DeadLetters,
    C: Clock,
{
    /// One reconciler run.
    pub async fn run(&self) -> Result<ReconcileReport, StoreError> {
        let now = self.clock.now();
        let ago = |d: Duration| now - ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX);
        let mut report = ReconcileReport {
            journal: self
                .store
                .sweep_stock_journal(ago(self.reconcile_after))
                .await?,
            ..ReconcileReport::default()
        };
        for unsent in std::mem::take(&mut report.journal.unsent) {
            // The rest of the cancel window, as the placement would have delayed it.
            let waited = (now - unsent.placed_at).to_std().unwrap_or_default();
            let delay = self.cancel_window.saturating_sub(waited);
            if self
                .enqueue(&unsent.order_id, &unsent.user_id, delay, &mut report)
                .await
            {
                self.store.release_taken(&unsent.taken).await;
                report.requeued += 1;
                report.journal.released += 1;
            }
        }
        for status in [OrderStatus::Pending, OrderStatus::Processing] {
            // A PENDING order is not stuck while its cancel window keeps it from the consumer.
            let cutoff = match status {
                OrderStatus::Pending => ago(self.reconcile_after + self.cancel_window),
                _ => ago(self.reconcile_after),
            };
            for order in self.store.unsettled(status, cutoff, BATCH).await? {
                let zero = Duration::ZERO;
                if self
                    .enqueue(&order.id, &order.user_id, zero, &mut report)
                    .await
                {
                    report.requeued += 1;
                }
            }
        }
        self.redrive_dead_letters(&mut report).await?;
        Ok(report)
    }

    /// Sends the message of `order_id` again; `false` when the send failed (counted; the next run
    /// tries again).
    async fn enqueue(
        &self,
        order_id: &OrderId,
        user_id: &UserId,
        delay: Duration,
        report: &mut ReconcileReport,
    ) -> bool {
        let message = OrderPlaced {
            order_id: order_id.clone(),
            user_id: user_id.clone(),
            trace_id: format!("reconcile-{}", uuid::Uuid::new_v4()),
        };
        match self.queue.enqueue(&message, delay).await {
            Ok(()) => {
                tracing::info!(%order_id, trace_id = %message.trace_id, "re-enqueued an unsettled order");
                metrics::count(BusinessMetric::ReconcilerResends);
                true
            }
            Err(e) => {
                tracing::warn!(%order_id, error = %e, "re-enqueue failed; next run tries again");
                report.enqueue_failures += 1;
                false
            }
        }
    }

    /// Empties the dead-letter queue (up to [`BATCH`] messages): an unsettled order's message goes
    /// back to the order queue, a settled one's is removed, one that names no order stays for an
    /// operator (the DLQ alarm). A failed send or removal leaves the letter for the next run.
    async fn redrive_dead_letters(&self, report: &mut ReconcileReport) -> Result<(), StoreError> {
        let mut seen = 0;
        while seen < BATCH {
            let letters = match self.queue.receive_dead(DEAD_LETTERS_PER_RECEIVE).await {
                Ok(letters) => letters,
                Err(error) => {
                    tracing::warn!(%error, "reading the dead-letter queue failed; next run tries again");
                    return Ok(());
                }
            };
            if letters.is_empty() {
                return Ok(());
            }
            seen += u32::try_from(letters.len()).unwrap_or(BATCH);
            for letter in letters {
                let Ok(placed) = serde_json::from_str::<OrderPlaced>(&letter.body) else {
                    tracing::error!(body = %letter.body, "a dead letter is not an order's message; left for an operator");
                    report.dead_left += 1;
                    continue;
                };
                let Some(order) = self.store.get_order(&placed.order_id).await? else {
                    tracing::error!(order_id = %placed.order_id, "a dead letter names no order; left for an operator");
                    report.dead_left += 1;
                    continue;
                };
                if !order.status.is_terminal() {
                    let sent = self
                        .enqueue(&order.id, &order.user_id, Duration::ZERO, report)
                        .await;
                    if !sent {
                        continue;
                    }
                    report.redriven += 1;
                } else {
                    report.dead_removed += 1;
                }
                if let Err(error) = self.queue.remove_dead(&letter).await {
                    tracing::warn!(order_id = %order.id, %error, "removing a dead letter failed; it comes back");
                }
            }
        }
        Ok(())
    }
}
