//! The reconciler's schedule entry: each scheduled run is one [`ReconcileOrders`] over the
//! worker's ports, answered with its [`ReconcileReport`]. What a run does is in
//! `application/reconcile.rs`.

use super::Worker;
use crate::application::{ReconcileOrders, ReconcileReport};
use crate::ports::{
    Clock, DeadLetters, OrderQueue, OrderReader, StockJournal, StockReserver, StoreError,
    UnsettledOrders,
};

/// One reconciler run.
pub async fn run<S, P, N, Q, C>(
    worker: &Worker<S, P, N, Q, C>,
) -> Result<ReconcileReport, StoreError>
where
    S: UnsettledOrders + StockJournal + StockReserver + OrderReader,
    Q: OrderQueue + DeadLetters,
    C: Clock,
{
    let reconcile = ReconcileOrders {
        store: &worker.store,
        queue: &worker.queue,
        clock: &worker.clock,
        reconcile_after: worker.reconcile_after,
        cancel_window: worker.cancel_window,
    };
    reconcile.run().await
}
