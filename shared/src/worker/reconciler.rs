//! The reconciler (a scheduled function): no order stays PENDING or PROCESSING forever.
//!
//! An order's message is the record of its unsettled work, so the reconciler looks where a
//! message can be missing or stuck:
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
//! Sending a message for an order that is merely slow is harmless: the consumer's conditional
//! writes make a duplicate a no-op. A schedule was chosen over DynamoDB Streams: a stream sees
//! the insert, but not the absence of a later change (docs/decisions.md, "The reconciler").

use chrono::Duration as ChronoDuration;

use super::Worker;
use crate::domain::{OrderId, OrderStatus, UserId};
use crate::messages::OrderPlaced;
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

/// One reconciler run.
pub async fn run<S, P, N, Q, C>(
    worker: &Worker<S, P, N, Q, C>,
) -> Result<ReconcileReport, StoreError>
where
    S: UnsettledOrders + StockJournal + StockReserver + OrderReader,
    Q: OrderQueue + DeadLetters,
    C: Clock,
{
    let now = worker.clock.now();
    let ago =
        |d: std::time::Duration| now - ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX);
    let mut report = ReconcileReport {
        journal: worker
            .store
            .sweep_stock_journal(ago(worker.reconcile_after))
            .await?,
        ..ReconcileReport::default()
    };
    for unsent in std::mem::take(&mut report.journal.unsent) {
        // The rest of the cancel window, as the placement would have delayed it.
        let waited = (now - unsent.placed_at).to_std().unwrap_or_default();
        let delay = worker.cancel_window.saturating_sub(waited);
        if enqueue(
            worker,
            &unsent.order_id,
            &unsent.user_id,
            delay,
            &mut report,
        )
        .await
        {
            worker.store.release_taken(&unsent.taken).await;
            report.requeued += 1;
            report.journal.released += 1;
        }
    }
    for status in [OrderStatus::Pending, OrderStatus::Processing] {
        // A PENDING order is not stuck while its cancel window keeps it from the consumer.
        let cutoff = match status {
            OrderStatus::Pending => ago(worker.reconcile_after + worker.cancel_window),
            _ => ago(worker.reconcile_after),
        };
        for order in worker.store.unsettled(status, cutoff, BATCH).await? {
            let zero = std::time::Duration::ZERO;
            if enqueue(worker, &order.id, &order.user_id, zero, &mut report).await {
                report.requeued += 1;
            }
        }
    }
    redrive_dead_letters(worker, &mut report).await?;
    Ok(report)
}

/// Sends the message of `order_id` again; `false` when the send failed (counted; the next run
/// tries again).
async fn enqueue<S, P, N, Q: OrderQueue, C>(
    worker: &Worker<S, P, N, Q, C>,
    order_id: &OrderId,
    user_id: &UserId,
    delay: std::time::Duration,
    report: &mut ReconcileReport,
) -> bool {
    let message = OrderPlaced {
        order_id: order_id.clone(),
        user_id: user_id.clone(),
        trace_id: format!("reconcile-{}", uuid::Uuid::new_v4()),
    };
    match worker.queue.enqueue(&message, delay).await {
        Ok(()) => {
            tracing::info!(%order_id, trace_id = %message.trace_id, "re-enqueued an unsettled order");
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
async fn redrive_dead_letters<S, P, N, Q, C>(
    worker: &Worker<S, P, N, Q, C>,
    report: &mut ReconcileReport,
) -> Result<(), StoreError>
where
    S: OrderReader,
    Q: OrderQueue + DeadLetters,
{
    let mut seen = 0;
    while seen < BATCH {
        let letters = match worker.queue.receive_dead(DEAD_LETTERS_PER_RECEIVE).await {
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
            let Some(order) = worker.store.get_order(&placed.order_id).await? else {
                tracing::error!(order_id = %placed.order_id, "a dead letter names no order; left for an operator");
                report.dead_left += 1;
                continue;
            };
            if !order.status.is_terminal() {
                let sent = enqueue(
                    worker,
                    &order.id,
                    &order.user_id,
                    std::time::Duration::ZERO,
                    report,
                )
                .await;
                if !sent {
                    continue;
                }
                report.redriven += 1;
            } else {
                report.dead_removed += 1;
            }
            if let Err(error) = worker.queue.remove_dead(&letter).await {
                tracing::warn!(order_id = %order.id, %error, "removing a dead letter failed; it comes back");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{IdempotencyKey, Order, OrderId, UserId};
    use crate::worker::TestWorker;

    /// An order with no lines in `status`, last changed now on the worker's clock.
    fn order_at(worker: &TestWorker, id: &str, status: OrderStatus) -> Order {
        let mut order = Order::place(
            OrderId::new(id),
            UserId::new("u"),
            IdempotencyKey::parse(id).unwrap(),
            vec![],
            worker.clock.now(),
        );
        order.status = status;
        order
    }

    #[tokio::test]
    async fn only_orders_unsettled_for_longer_than_the_delay_are_enqueued_again() {
        let worker = TestWorker::with_fakes();
        let order = |id: &str, status| order_at(&worker, id, status);
        worker
            .store
            .insert_order(order("stuck-pending", OrderStatus::Pending));
        worker
            .store
            .insert_order(order("stuck-processing", OrderStatus::Processing));
        worker.store.insert_order(order("done", OrderStatus::Paid));
        worker.clock.advance(Duration::from_secs(61));
        worker
            .store
            .insert_order(order("fresh", OrderStatus::Pending));

        let report = run(&worker).await.unwrap();

        assert_eq!(sent_ids(&worker), vec!["stuck-pending", "stuck-processing"]);
        assert_eq!(
            report,
            ReconcileReport {
                requeued: 2,
                ..ReconcileReport::default()
            }
        );
    }

    #[tokio::test]
    async fn a_pending_order_inside_its_cancel_window_is_not_stuck() {
        let mut worker = TestWorker::with_fakes();
        worker.cancel_window = Duration::from_secs(30);
        let placed = |id: &str, status| order_at(&worker, id, status);
        worker
            .store
            .insert_order(placed("waiting", OrderStatus::Pending));
        worker
            .store
            .insert_order(placed("claimed", OrderStatus::Processing));
        worker.clock.advance(Duration::from_secs(61));
        run(&worker).await.unwrap();
        assert_eq!(
            sent_ids(&worker),
            vec!["claimed"],
            "60 s + the 30 s window have not passed for PENDING"
        );
        worker.clock.advance(Duration::from_secs(30));
        run(&worker).await.unwrap();
        assert_eq!(worker.queue.sent().len(), 3, "then both are enqueued again");
    }

    fn sent_ids(worker: &TestWorker) -> Vec<String> {
        let mut sent: Vec<String> = worker
            .queue
            .sent()
            .into_iter()
            .map(|m| m.order_id.to_string())
            .collect();
        sent.sort();
        sent
    }

    #[tokio::test]
    async fn an_order_whose_placement_stopped_before_its_message_is_sent_then_released() {
        let worker = TestWorker::with_fakes();
        let order = |id: &str, status| order_at(&worker, id, status);
        worker
            .store
            .insert_unsent_order(order("unsent", OrderStatus::Pending));
        // Its message went out (a duplicate delivery moved it on) before the writer stopped.
        worker
            .store
            .insert_unsent_order(order("moved-on", OrderStatus::Processing));
        worker.clock.advance(Duration::from_secs(59));
        let early = run(&worker).await.unwrap();
        assert!(!early.did_something(), "younger than the delay: {early:?}");
        assert_eq!(worker.store.marked_takes(), 2);

        worker.clock.advance(Duration::from_secs(2));
        let report = run(&worker).await.unwrap();
        assert_eq!(sent_ids(&worker), vec!["unsent"]);
        assert_eq!(report.requeued, 1);
        assert_eq!(report.journal.released, 2, "both marks released");
        assert_eq!(worker.store.marked_takes(), 0);
        run(&worker).await.unwrap();
        assert_eq!(worker.queue.sent().len(), 1, "sent once");
    }

    #[tokio::test]
    async fn a_mark_stays_while_its_message_cannot_be_sent() {
        let worker = TestWorker::with_fakes();
        worker
            .store
            .insert_unsent_order(order_at(&worker, "unsent", OrderStatus::Pending));
        worker.clock.advance(Duration::from_secs(61));
        worker.queue.set_down(true);
        let report = run(&worker).await.unwrap();
        assert_eq!(report.enqueue_failures, 1);
        assert_eq!(
            worker.store.marked_takes(),
            1,
            "the mark still stands for it"
        );
        worker.queue.set_down(false);
        run(&worker).await.unwrap();
        assert_eq!(sent_ids(&worker), vec!["unsent"]);
        assert_eq!(worker.store.marked_takes(), 0);
    }

    #[tokio::test]
    async fn dead_letters_of_unsettled_orders_go_back_and_the_rest_are_removed() {
        let worker = TestWorker::with_fakes();
        let order = |id: &str, status| order_at(&worker, id, status);
        let letter = |id: &str| {
            serde_json::to_string(&OrderPlaced {
                order_id: OrderId::new(id),
                user_id: UserId::new("u"),
                trace_id: "t".into(),
            })
            .unwrap()
        };
        // Settled orders and one stuck mid-payment, none in the index (orders from items).
        let (mut stuck, mut paid) = (
            order("stuck", OrderStatus::Processing),
            order("paid", OrderStatus::Paid),
        );
        stuck.updated_at = worker.clock.now();
        paid.updated_at = worker.clock.now();
        worker.store.insert_unsent_order(stuck);
        worker.store.insert_unsent_order(paid);
        for id in ["stuck", "paid", "unknown"] {
            worker.queue.dead_letter(&letter(id));
        }
        worker.queue.dead_letter("not json");

        let report = run(&worker).await.unwrap();

        assert_eq!(sent_ids(&worker), vec!["stuck"]);
        assert_eq!(
            (report.redriven, report.dead_removed, report.dead_left),
            (1, 1, 2)
        );
        let mut left = worker.queue.dead_letters();
        left.sort();
        assert_eq!(left, vec!["not json".to_owned(), letter("unknown")]);
        // A letter left for an operator comes back after its visibility timeout, still left.
        worker.queue.end_dead_letter_visibility();
        let again = run(&worker).await.unwrap();
        assert_eq!((again.redriven, again.dead_left), (0, 2));
    }
}
