//! The reconciler (a scheduled function): no order stays PENDING or PROCESSING forever.
//!
//! Orders whose last change is older than `RECONCILE_AFTER_SECONDS` are enqueued again: a PENDING
//! order whose enqueue after commit failed (or whose function died between commit and enqueue),
//! and a PROCESSING order whose consumer died mid-payment. Enqueuing one that is merely slow is
//! harmless: the consumer's conditional writes make a duplicate a no-op.
//!
//! Each run also sweeps the stock journal: a stock move a writer left half-done (its function died
//! between the single-item stock write and its transaction) is finished or undone once it is older
//! than the same delay (`adapters/dynamodb/stock_journal.rs`).
//!
//! A schedule was chosen over DynamoDB Streams: a stream sees the insert, but not the absence of a
//! later change, so it would still need a timer to notice an order that nobody moved on; the
//! schedule alone covers both cases with one indexed query per status.

use chrono::Duration as ChronoDuration;

use super::Worker;
use crate::domain::OrderStatus;
use crate::messages::OrderPlaced;
use crate::ports::{Clock, JournalSweep, OrderQueue, StockJournal, StoreError, UnsettledOrders};

/// Most orders re-enqueued per status and run; the next run takes the rest.
const BATCH: u32 = 200;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Orders enqueued again.
    pub requeued: usize,
    /// Orders whose enqueue failed (tried again next run).
    pub enqueue_failures: usize,
    /// Stock moves finished for writers that stopped between their steps.
    pub journal: JournalSweep,
}

/// One reconciler run.
pub async fn run<S, P, N, Q, C>(
    worker: &Worker<S, P, N, Q, C>,
) -> Result<ReconcileReport, StoreError>
where
    S: UnsettledOrders + StockJournal,
    Q: OrderQueue,
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
    for status in [OrderStatus::Pending, OrderStatus::Processing] {
        // A PENDING order is not stuck while its cancel window keeps it from the consumer.
        let cutoff = match status {
            OrderStatus::Pending => ago(worker.reconcile_after + worker.cancel_window),
            _ => ago(worker.reconcile_after),
        };
        for order in worker.store.unsettled(status, cutoff, BATCH).await? {
            let message = OrderPlaced {
                order_id: order.id.clone(),
                user_id: order.user_id.clone(),
                trace_id: format!("reconcile-{}", uuid::Uuid::new_v4()),
            };
            match worker
                .queue
                .enqueue(&message, std::time::Duration::ZERO)
                .await
            {
                Ok(()) => {
                    tracing::info!(order_id = %order.id, %status, trace_id = %message.trace_id, "re-enqueued an unsettled order");
                    report.requeued += 1;
                }
                Err(e) => {
                    tracing::warn!(order_id = %order.id, error = %e, "re-enqueue failed; next run tries again");
                    report.enqueue_failures += 1;
                }
            }
        }
    }
    Ok(report)
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

        let mut sent: Vec<String> = worker
            .queue
            .sent()
            .into_iter()
            .map(|m| m.order_id.to_string())
            .collect();
        sent.sort();
        assert_eq!(sent, vec!["stuck-pending", "stuck-processing"]);
        assert_eq!(
            report,
            ReconcileReport {
                requeued: 2,
                enqueue_failures: 0,
                journal: JournalSweep::default(),
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
        let sent: Vec<String> = worker
            .queue
            .sent()
            .into_iter()
            .map(|m| m.order_id.to_string())
            .collect();
        assert_eq!(
            sent,
            vec!["claimed"],
            "60 s + the 30 s window have not passed for PENDING"
        );
        worker.clock.advance(Duration::from_secs(30));
        run(&worker).await.unwrap();
        assert_eq!(worker.queue.sent().len(), 3, "then both are enqueued again");
    }
}
