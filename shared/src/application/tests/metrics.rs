//! The business metrics each use case counts, read from the invocation's tally.

use super::*;
use crate::metrics::{BusinessMetric, collect};

#[tokio::test]
async fn a_settlement_counts_paid_or_failed_and_the_lag_since_the_order_was_placed() {
    let fakes = Fakes::with_product("p", 10);
    let paid = fakes.place_new(&user("alice"), &items("k1", "p", 1)).await;
    let failed = fakes.place_new(&user("alice"), &items("k2", "p", 1)).await;
    fakes.clock.advance(Duration::from_millis(1_500));
    fakes.payments.then(Ok(PaymentOutcome::Approved));
    fakes.payments.then(Ok(PaymentOutcome::Declined {
        reason: "card_declined".into(),
    }));

    let ((), tally) = collect(async {
        fakes.process_payment().run(&paid.id, "t").await.unwrap();
        fakes.process_payment().run(&failed.id, "t").await.unwrap();
        // A duplicate delivery settles nothing and counts nothing.
        fakes.process_payment().run(&paid.id, "t").await.unwrap();
    })
    .await;

    assert_eq!(tally.count(BusinessMetric::PaymentsPaid), 1);
    assert_eq!(tally.count(BusinessMetric::PaymentsFailed), 1);
    assert_eq!(tally.settle_lags(), [1_500.0, 1_500.0]);
}

#[tokio::test]
async fn holds_are_counted_placed_consumed_by_an_order_and_expired_by_the_sweeper() {
    let fakes = Fakes::with_product("p", 10);

    let ((), tally) = collect(async {
        let kept = fakes
            .hold()
            .run(&user("u"), &hold_request("p", 2))
            .await
            .unwrap();
        fakes
            .hold()
            .run(&user("v"), &hold_request("p", 3))
            .await
            .unwrap();
        fakes.place_new(&user("u"), &from_hold("k", &kept)).await;
        fakes.clock.advance(Duration::from_secs(121));
        let sweep = ExpireHolds {
            store: &fakes.store,
            clock: &fakes.clock,
        };
        assert_eq!(sweep.run().await.unwrap().expired, 1);
    })
    .await;

    assert_eq!(tally.count(BusinessMetric::HoldsPlaced), 2);
    assert_eq!(tally.count(BusinessMetric::HoldsConsumed), 1);
    assert_eq!(tally.count(BusinessMetric::OrdersPlaced), 1);
    assert_eq!(tally.count(BusinessMetric::HoldsExpired), 1);
}

#[tokio::test]
async fn webhooks_are_counted_applied_or_early_and_a_replay_is_not_counted_again() {
    let fakes = Fakes::with_product("p", 10);
    let order = fakes.place_new(&user("alice"), &items("k", "p", 1)).await;
    let applied = notice("w1", &order.id, PaymentOutcome::Approved);
    let early = notice("w2", &OrderId::new("not-yet"), PaymentOutcome::Approved);

    let ((), tally) = collect(async {
        fakes.webhook().run(&applied, "t").await.unwrap();
        fakes.webhook().run(&applied, "t").await.unwrap();
        fakes.webhook().run(&early, "t").await.unwrap();
    })
    .await;

    assert_eq!(tally.count(BusinessMetric::WebhooksApplied), 1);
    assert_eq!(tally.count(BusinessMetric::WebhooksEarly), 1);
    assert_eq!(tally.count(BusinessMetric::PaymentsPaid), 1);
}

#[tokio::test]
async fn the_reconciler_counts_each_message_it_sends_again() {
    let fakes = Fakes::new();
    fakes.stored("stuck-pending", OrderStatus::Pending);
    fakes.stored("stuck-processing", OrderStatus::Processing);
    fakes.clock.advance(Duration::from_secs(61));

    let (report, tally) = collect(fakes.reconcile(Duration::ZERO).run()).await;

    assert_eq!(report.unwrap().requeued, 2);
    assert_eq!(tally.count(BusinessMetric::ReconcilerResends), 2);
}
