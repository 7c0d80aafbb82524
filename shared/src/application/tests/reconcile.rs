//! `ReconcileOrders`: what each scheduled run finds and sends again, on the fakes.

use super::*;

#[tokio::test]
async fn only_orders_unsettled_for_longer_than_the_delay_are_enqueued_again() {
    let fakes = Fakes::new();
    fakes.stored("stuck-pending", OrderStatus::Pending);
    fakes.stored("stuck-processing", OrderStatus::Processing);
    fakes.stored("done", OrderStatus::Paid);
    fakes.clock.advance(Duration::from_secs(61));
    fakes.stored("fresh", OrderStatus::Pending);

    let report = fakes.reconcile(Duration::ZERO).run().await.unwrap();

    assert_eq!(fakes.sent_ids(), vec!["stuck-pending", "stuck-processing"]);
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
    let fakes = Fakes::new();
    let reconcile = fakes.reconcile(Duration::from_secs(30));
    fakes.stored("waiting", OrderStatus::Pending);
    fakes.stored("claimed", OrderStatus::Processing);
    fakes.clock.advance(Duration::from_secs(61));
    reconcile.run().await.unwrap();
    assert_eq!(
        fakes.sent_ids(),
        vec!["claimed"],
        "60 s + the 30 s window have not passed for PENDING"
    );
    fakes.clock.advance(Duration::from_secs(30));
    reconcile.run().await.unwrap();
    assert_eq!(fakes.queue.sent().len(), 3, "then both are enqueued again");
}

#[tokio::test]
async fn an_order_whose_placement_stopped_before_its_message_is_sent_then_released() {
    let fakes = Fakes::new();
    let reconcile = fakes.reconcile(Duration::ZERO);
    fakes.stored_unsent("unsent", OrderStatus::Pending);
    // Its message went out (a duplicate delivery moved it on) before the writer stopped.
    fakes.stored_unsent("moved-on", OrderStatus::Processing);
    fakes.clock.advance(Duration::from_secs(59));
    let early = reconcile.run().await.unwrap();
    assert!(!early.did_something(), "younger than the delay: {early:?}");
    assert_eq!(fakes.store.marked_takes(), 2);

    fakes.clock.advance(Duration::from_secs(2));
    let report = reconcile.run().await.unwrap();
    assert_eq!(fakes.sent_ids(), vec!["unsent"]);
    assert_eq!(report.requeued, 1);
    assert_eq!(report.journal.released, 2, "both marks released");
    assert_eq!(fakes.store.marked_takes(), 0);
    reconcile.run().await.unwrap();
    assert_eq!(fakes.queue.sent().len(), 1, "sent once");
}

#[tokio::test]
async fn a_mark_stays_while_its_message_cannot_be_sent() {
    let fakes = Fakes::new();
    let reconcile = fakes.reconcile(Duration::ZERO);
    fakes.stored_unsent("unsent", OrderStatus::Pending);
    fakes.clock.advance(Duration::from_secs(61));
    fakes.queue.set_down(true);
    let report = reconcile.run().await.unwrap();
    assert_eq!(report.enqueue_failures, 1);
    assert_eq!(
        fakes.store.marked_takes(),
        1,
        "the mark still stands for it"
    );
    fakes.queue.set_down(false);
    reconcile.run().await.unwrap();
    assert_eq!(fakes.sent_ids(), vec!["unsent"]);
    assert_eq!(fakes.store.marked_takes(), 0);
}

#[tokio::test]
async fn dead_letters_of_unsettled_orders_go_back_and_the_rest_are_removed() {
    let fakes = Fakes::new();
    let reconcile = fakes.reconcile(Duration::ZERO);
    let letter = |id: &str| {
        serde_json::to_string(&OrderPlaced {
            order_id: OrderId::new(id),
            user_id: UserId::new("u"),
            trace_id: "t".into(),
        })
        .unwrap()
    };
    // Settled orders and one stuck mid-payment, none in the index (orders from items).
    fakes.stored_unsent("stuck", OrderStatus::Processing);
    fakes.stored_unsent("paid", OrderStatus::Paid);
    for id in ["stuck", "paid", "unknown"] {
        fakes.queue.dead_letter(&letter(id));
    }
    fakes.queue.dead_letter("not json");

    let report = reconcile.run().await.unwrap();

    assert_eq!(fakes.sent_ids(), vec!["stuck"]);
    assert_eq!(
        (report.redriven, report.dead_removed, report.dead_left),
        (1, 1, 2)
    );
    let mut left = fakes.queue.dead_letters();
    left.sort();
    assert_eq!(left, vec!["not json".to_owned(), letter("unknown")]);
    // A letter left for an operator comes back after its visibility timeout, still left.
    fakes.queue.end_dead_letter_visibility();
    let again = reconcile.run().await.unwrap();
    assert_eq!((again.redriven, again.dead_left), (0, 2));
}
