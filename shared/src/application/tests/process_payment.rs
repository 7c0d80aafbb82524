//! `ProcessPayment`: what the consumer does with each message, on the fakes.

use super::*;

/// An order by alice for `quantity` units of "p", placed and waiting for its payment.
async fn pending(fakes: &Fakes, key: &str, quantity: i64) -> Order {
    let request = items(key, "p", quantity);
    fakes.place_new(&user("alice"), &request).await
}

#[tokio::test]
async fn a_pending_order_is_charged_paid_and_announced_twice() {
    let fakes = Fakes::with_product("p", 10);
    let order = pending(&fakes, "k", 2).await;

    let settled = fakes.process_payment().run(&order.id, "trace-1").await;

    assert!(
        matches!(&settled, Ok(Settlement::Settled(o)) if o.status == OrderStatus::Paid),
        "{settled:?}"
    );
    assert_eq!(
        fakes.events(),
        vec![OrderEventKind::OrderProcessing, OrderEventKind::OrderPaid]
    );
    let (user, event) = &fakes.notifier.events()[1];
    assert_eq!(
        (
            user.as_str(),
            event.trace_id.as_str(),
            event.total_amount.as_str()
        ),
        ("alice", "trace-1", "5.00")
    );
    let versions: Vec<u32> = fakes
        .notifier
        .events()
        .iter()
        .map(|(_, e)| e.version)
        .collect();
    assert_eq!(
        versions,
        [2, 3],
        "each announcement carries a higher version"
    );
    assert_eq!(fakes.store.stock("p"), Some(8));
}

#[tokio::test]
async fn a_declined_payment_fails_the_order_and_gives_the_stock_back() {
    let fakes = Fakes::with_product("p", 10);
    let order = pending(&fakes, "k", 3).await;
    fakes.payments.then(Ok(PaymentOutcome::Declined {
        reason: "card_declined".into(),
    }));

    fakes.process_payment().run(&order.id, "t").await.unwrap();

    assert_eq!(fakes.status(&order.id).await, OrderStatus::Failed);
    assert_eq!(fakes.store.stock("p"), Some(10));
    let (_, event) = fakes.notifier.events().pop().unwrap();
    assert_eq!(
        (event.event, event.reason.as_deref()),
        (OrderEventKind::OrderFailed, Some("card_declined"))
    );
}

#[tokio::test]
async fn the_same_message_twice_settles_once_and_announces_one_terminal_event() {
    let fakes = Fakes::with_product("p", 10);
    let order = pending(&fakes, "k", 1).await;
    let process = fakes.process_payment();

    let (first, second) = futures::join!(process.run(&order.id, "t"), process.run(&order.id, "t"));
    let later = process.run(&order.id, "t").await;

    let settled = [first, second, later]
        .into_iter()
        .filter(|s| matches!(s, Ok(Settlement::Settled(_))))
        .count();
    assert_eq!(settled, 1);
    assert_eq!(fakes.status(&order.id).await, OrderStatus::Paid);
    let terminal = fakes
        .events()
        .into_iter()
        .filter(|e| *e == OrderEventKind::OrderPaid)
        .count();
    assert_eq!(terminal, 1);
    assert_eq!(fakes.store.stock("p"), Some(9));
}

#[tokio::test]
async fn a_cancelled_order_is_acknowledged_without_a_charge() {
    let fakes = Fakes::with_product("p", 10);
    let order = pending(&fakes, "k", 1).await;
    let cancelled = order.cancelled(fakes.clock.now()).unwrap();
    fakes.store.cancel_order(&cancelled).await.unwrap();

    let done = fakes.process_payment().run(&order.id, "t").await;

    assert!(
        matches!(&done, Ok(Settlement::AlreadyDone(o)) if o.status == OrderStatus::Cancelled),
        "{done:?}"
    );
    assert!(fakes.payments.charges().is_empty());
    assert!(fakes.events().is_empty());
}

#[tokio::test]
async fn a_technical_payment_error_fails_the_run_and_the_redelivery_resumes_processing() {
    let fakes = Fakes::with_product("p", 10);
    let order = pending(&fakes, "k", 1).await;
    fakes.payments.then(Err(()));

    let first = fakes.process_payment().run(&order.id, "t").await;
    assert!(
        matches!(first, Err(ProcessPaymentError::Payment(_))),
        "{first:?}"
    );
    assert_eq!(fakes.status(&order.id).await, OrderStatus::Processing);

    let again = fakes.process_payment().run(&order.id, "t").await.unwrap();
    assert_eq!(again.order().status, OrderStatus::Paid);
    assert_eq!(
        fakes.events(),
        vec![OrderEventKind::OrderProcessing, OrderEventKind::OrderPaid]
    );
}
