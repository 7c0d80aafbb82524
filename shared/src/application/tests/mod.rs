//! The use cases over the in-memory fakes: fast checks of each outcome. The same flows run through
//! the real stack in `tests/e2e/{holds,webhooks,workload,payments}.rs`.

use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::adapters::in_memory::{
    FixedClock, InMemoryStore, RecordingNotifier, RecordingQueue, ScriptedPayments,
};
use crate::config::LockSettings;
use crate::domain::webhook::PaymentNotice;
use crate::domain::{
    Caller, HoldRequest, IdempotencyKey, Money, Order, OrderId, OrderLine, OrderRequest,
    OrderSource, OrderStatus, PaymentOutcome, Product, ProductId, Quantity, UserId,
};
use crate::messages::{OrderEventKind, OrderPlaced};
use crate::ports::{Clock, HoldStore, OrderReader, StockJournal, StockReserver};

struct Fakes {
    store: InMemoryStore,
    queue: RecordingQueue,
    notifier: RecordingNotifier,
    payments: ScriptedPayments,
    clock: FixedClock,
    locks: LockSettings,
}

impl Fakes {
    /// Empty fakes, an approving provider, a fixed clock.
    fn new() -> Self {
        Fakes {
            store: InMemoryStore::default(),
            queue: RecordingQueue::default(),
            notifier: RecordingNotifier::default(),
            payments: ScriptedPayments::default(),
            clock: FixedClock::default(),
            locks: LockSettings::default(),
        }
    }

    fn with_product(id: &str, stock: u32) -> Self {
        let fakes = Self::new();
        fakes.store.insert_product(Product {
            id: ProductId::new(id),
            name: id.into(),
            price: Money::parse("2.50").unwrap(),
            stock,
            stock_shards: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        });
        fakes
    }

    /// A product with its stock over `shards` shards.
    fn with_sharded_product(id: &str, stock: u32, shards: u16) -> Self {
        let fakes = Self::with_product("other", 0);
        fakes.store.insert_product(Product {
            id: ProductId::new(id),
            name: id.into(),
            price: Money::parse("2.50").unwrap(),
            stock,
            stock_shards: shards,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        });
        fakes
    }

    fn place(
        &self,
    ) -> PlaceOrder<'_, InMemoryStore, RecordingQueue, RecordingNotifier, FixedClock> {
        PlaceOrder {
            store: &self.store,
            queue: &self.queue,
            notifier: &self.notifier,
            clock: &self.clock,
            locks: &self.locks,
            cancel_window: Duration::ZERO,
            budget: WaitBudget::UNLIMITED,
        }
    }

    /// Places `request` for `user` (trace id "t"), which must create a new order.
    async fn place_new(&self, user: &UserId, request: &OrderRequest) -> Order {
        created(self.place().run(user, request, "t").await.unwrap())
    }

    fn cancel(&self) -> CancelOrder<'_, InMemoryStore, RecordingNotifier, FixedClock> {
        CancelOrder {
            store: &self.store,
            notifier: &self.notifier,
            clock: &self.clock,
        }
    }

    fn hold(&self) -> PlaceHold<'_, InMemoryStore, FixedClock> {
        PlaceHold {
            store: &self.store,
            clock: &self.clock,
            ttl: Duration::from_secs(120),
            budget: WaitBudget::UNLIMITED,
        }
    }

    fn webhook(&self) -> ReceivePaymentWebhook<'_, InMemoryStore, RecordingNotifier, FixedClock> {
        ReceivePaymentWebhook {
            store: &self.store,
            notifier: &self.notifier,
            clock: &self.clock,
        }
    }

    fn process_payment(
        &self,
    ) -> ProcessPayment<'_, InMemoryStore, ScriptedPayments, RecordingNotifier, FixedClock> {
        ProcessPayment {
            store: &self.store,
            payments: &self.payments,
            notifier: &self.notifier,
            clock: &self.clock,
        }
    }

    /// The reconciler with orders unsettled for 60 s stuck, and `cancel_window` on top for PENDING.
    fn reconcile(
        &self,
        cancel_window: Duration,
    ) -> ReconcileOrders<'_, InMemoryStore, RecordingQueue, FixedClock> {
        ReconcileOrders {
            store: &self.store,
            queue: &self.queue,
            clock: &self.clock,
            reconcile_after: Duration::from_secs(60),
            cancel_window,
        }
    }

    async fn status(&self, id: &OrderId) -> OrderStatus {
        self.store.get_order(id).await.unwrap().unwrap().status
    }

    /// The order ids the queue was sent, sorted.
    fn sent_ids(&self) -> Vec<String> {
        let mut sent: Vec<String> = self
            .queue
            .sent()
            .into_iter()
            .map(|m| m.order_id.to_string())
            .collect();
        sent.sort();
        sent
    }

    /// An order with no lines in `status`, last changed now on the fakes' clock.
    fn order_at(&self, id: &str, status: OrderStatus) -> Order {
        let mut order = Order::place(
            OrderId::new(id),
            UserId::new("u"),
            IdempotencyKey::parse(id).unwrap(),
            vec![],
            self.clock.now(),
        );
        order.status = status;
        order
    }

    /// Stores [`Self::order_at`] as an order from a hold: in the `unsettled-orders` index.
    fn stored(&self, id: &str, status: OrderStatus) {
        self.store.insert_order(self.order_at(id, status));
    }

    /// Stores [`Self::order_at`] as a placement that stopped before sending its message: its
    /// stock take still marked in the journal.
    fn stored_unsent(&self, id: &str, status: OrderStatus) {
        self.store.insert_unsent_order(self.order_at(id, status));
    }

    fn events(&self) -> Vec<OrderEventKind> {
        self.notifier
            .events()
            .into_iter()
            .map(|(_, e)| e.event)
            .collect()
    }
}

fn user(name: &str) -> UserId {
    UserId::new(name)
}

/// A caller who is not an admin.
fn buyer(name: &str) -> Caller {
    Caller {
        user_id: user(name),
        is_admin: false,
    }
}

fn items(key: &str, product: &str, quantity: i64) -> OrderRequest {
    OrderRequest {
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        source: OrderSource::Items(vec![OrderLine {
            product_id: ProductId::new(product),
            quantity: Quantity::parse(quantity).unwrap(),
        }]),
    }
}

fn from_hold(key: &str, hold: &crate::domain::Hold) -> OrderRequest {
    OrderRequest {
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        source: OrderSource::Hold(hold.id.clone()),
    }
}

fn hold_request(product: &str, quantity: i64) -> HoldRequest {
    HoldRequest {
        product_id: ProductId::new(product),
        quantity: Quantity::parse(quantity).unwrap(),
    }
}

fn notice(key: &str, order: &OrderId, outcome: PaymentOutcome) -> PaymentNotice {
    PaymentNotice {
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        order_id: order.clone(),
        outcome,
    }
}

fn created(placed: Placed) -> Order {
    match placed {
        Placed::Created(order) => order,
        other => panic!("expected a new order, got {other:?}"),
    }
}

#[tokio::test]
async fn an_order_gets_the_id_derived_from_its_user_and_key_and_replays() {
    let fakes = Fakes::with_product("p", 10);
    let order = fakes.place_new(&user("u"), &items("k", "p", 2)).await;
    let key = IdempotencyKey::parse("k").unwrap();
    assert_eq!(order.id, OrderId::for_key(&user("u"), &key));
    assert_eq!(fakes.store.stock("p"), Some(8));
    let again = fakes
        .place()
        .run(&user("u"), &items("k", "p", 2), "t")
        .await
        .unwrap();
    assert_eq!(again, Placed::Replayed(order));
    let reused = fakes
        .place()
        .run(&user("u"), &items("k", "p", 3), "t")
        .await;
    assert!(matches!(reused, Err(AppError::IdempotencyKeyReused)));
    assert_eq!(fakes.store.stock("p"), Some(8));
}

#[tokio::test]
async fn an_orders_take_stays_marked_until_its_message_is_sent() {
    let fakes = Fakes::with_product("p", 10);
    fakes.place_new(&user("u"), &items("sent", "p", 1)).await;
    assert_eq!(fakes.queue.sent().len(), 1);
    assert_eq!(fakes.store.marked_takes(), 0, "released once sent");

    fakes.queue.set_down(true);
    let unsent = fakes.place_new(&user("u"), &items("unsent", "p", 1)).await;
    assert_eq!(
        fakes.store.marked_takes(),
        1,
        "the mark stands for the message"
    );
    let sweep = fakes
        .store
        .sweep_stock_journal(unsent.created_at + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(sweep.unsent.len(), 1);
    assert_eq!(sweep.unsent[0].order_id, unsent.id);
}

#[tokio::test]
async fn a_hold_takes_stock_once_and_its_checkout_takes_none() {
    let fakes = Fakes::with_product("p", 10);
    let hold = fakes
        .hold()
        .run(&user("u"), &hold_request("p", 3))
        .await
        .unwrap();
    assert_eq!(fakes.store.stock("p"), Some(7));
    let order = fakes.place_new(&user("u"), &from_hold("k", &hold)).await;
    assert_eq!(order.items[0].quantity.get(), 3);
    assert_eq!(order.items[0].unit_price, hold.unit_price);
    assert_eq!(fakes.store.stock("p"), Some(7));
    let stored = fakes.store.get_hold(&hold.id).await.unwrap().unwrap();
    assert_eq!(stored.status, crate::domain::HoldStatus::Consumed);
    assert_eq!(stored.order_id, Some(order.id));

    let again = fakes
        .place()
        .run(&user("u"), &from_hold("k2", &hold), "t")
        .await;
    assert!(
        matches!(
            again,
            Err(AppError::HoldNotActive {
                status: crate::domain::HoldStatus::Consumed,
                ..
            })
        ),
        "{again:?}"
    );
    let other = fakes
        .place()
        .run(&user("v"), &from_hold("k3", &hold), "t")
        .await;
    assert!(matches!(
        other,
        Err(AppError::NotFound { what: "hold", .. })
    ));
}

#[tokio::test]
async fn a_hold_on_a_busy_shard_gives_up_inside_the_invocation_budget() {
    let fakes = Fakes::with_product("p", 10);
    fakes.store.set_holds_busy(true);
    let for_waiting = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let place = PlaceHold {
        budget: WaitBudget::from_remaining(started, super::budget::RESERVE + for_waiting),
        ..fakes.hold()
    };

    let refused = place.run(&user("u"), &hold_request("p", 1)).await;

    let waited = started.elapsed();
    assert!(
        matches!(refused, Err(AppError::LockConflict { .. })),
        "{refused:?}"
    );
    // A sleep may end a timer tick late; the hold's own patience is 8 s.
    assert!(
        waited < for_waiting + Duration::from_millis(500),
        "gave up after {waited:?}, past the {for_waiting:?} the budget left for waiting"
    );
    assert_eq!(fakes.store.stock("p"), Some(10));
}

#[tokio::test]
async fn a_third_active_hold_on_a_product_is_refused() {
    let fakes = Fakes::with_product("p", 10);
    for _ in 0..2 {
        fakes
            .hold()
            .run(&user("u"), &hold_request("p", 1))
            .await
            .unwrap();
    }
    let third = fakes.hold().run(&user("u"), &hold_request("p", 1)).await;
    assert!(matches!(
        third,
        Err(AppError::HoldLimitReached { limit: 2, .. })
    ));
    assert_eq!(fakes.store.stock("p"), Some(8));
    assert!(
        fakes
            .hold()
            .run(&user("v"), &hold_request("p", 1))
            .await
            .is_ok()
    );
    let short = fakes.hold().run(&user("w"), &hold_request("p", 8)).await;
    assert!(matches!(
        short,
        Err(AppError::InsufficientStock { available: 7, .. })
    ));
}

#[tokio::test]
async fn a_hold_past_its_window_is_refused_at_checkout_and_swept_once() {
    let fakes = Fakes::with_product("p", 10);
    let hold = fakes
        .hold()
        .run(&user("u"), &hold_request("p", 4))
        .await
        .unwrap();
    fakes.clock.advance(Duration::from_secs(120));
    let late = fakes
        .place()
        .run(&user("u"), &from_hold("k", &hold), "t")
        .await;
    assert!(
        matches!(
            late,
            Err(AppError::HoldNotActive {
                status: crate::domain::HoldStatus::Active,
                ..
            })
        ),
        "refused by its time while still stored ACTIVE: {late:?}"
    );
    let sweep = ExpireHolds {
        store: &fakes.store,
        clock: &fakes.clock,
    };
    assert_eq!(sweep.run().await.unwrap().expired, 1);
    assert_eq!(fakes.store.stock("p"), Some(10));
    assert_eq!(sweep.run().await.unwrap(), SweepReport::default());
    assert_eq!(fakes.store.stock("p"), Some(10));
}

#[tokio::test]
async fn a_webhook_settles_a_pending_order_once_and_replays_its_answer() {
    let fakes = Fakes::with_product("p", 10);
    let order = fakes.place_new(&user("u"), &items("k", "p", 2)).await;
    let declined = PaymentOutcome::Declined {
        reason: "card declined".into(),
    };
    let first = fakes
        .webhook()
        .run(&notice("evt-1", &order.id, declined.clone()), "t")
        .await
        .unwrap();
    assert_eq!(first.order_status, Some(crate::domain::OrderStatus::Failed));
    assert_eq!(
        fakes.store.stock("p"),
        Some(10),
        "FAILED gives the stock back"
    );
    let replay = fakes
        .webhook()
        .run(&notice("evt-1", &order.id, declined), "t")
        .await
        .unwrap();
    assert_eq!(replay, first);
    let later = fakes
        .webhook()
        .run(&notice("evt-2", &order.id, PaymentOutcome::Approved), "t")
        .await
        .unwrap();
    assert_eq!(
        later.order_status,
        Some(crate::domain::OrderStatus::Failed),
        "a terminal order stays"
    );
    assert_eq!(fakes.store.stock("p"), Some(10));
    let reused = fakes
        .webhook()
        .run(&notice("evt-1", &order.id, PaymentOutcome::Approved), "t")
        .await;
    assert!(matches!(reused, Err(AppError::IdempotencyKeyReused)));
    assert_eq!(fakes.events(), vec![OrderEventKind::OrderFailed]);
}

#[tokio::test]
async fn a_webhook_before_its_order_is_applied_when_the_order_is_placed() {
    let fakes = Fakes::with_product("p", 10);
    let id = OrderId::for_key(&user("u"), &IdempotencyKey::parse("k").unwrap());
    let early = fakes
        .webhook()
        .run(&notice("evt-1", &id, PaymentOutcome::Approved), "t")
        .await
        .unwrap();
    assert_eq!(early.order_status, None);
    fakes
        .place()
        .run(&user("u"), &items("k", "p", 1), "t")
        .await
        .unwrap();
    let order = fakes.store.get_order(&id).await.unwrap().unwrap();
    assert_eq!(order.status, crate::domain::OrderStatus::Paid);
    assert_eq!(fakes.events(), vec![OrderEventKind::OrderPaid]);
    // The consumer's later delivery finds it settled.
    let settle = SettlePayment {
        store: &fakes.store,
        notifier: &fakes.notifier,
        clock: &fakes.clock,
    };
    let again = settle
        .run(order, &PaymentOutcome::Approved, "t")
        .await
        .unwrap();
    assert!(matches!(again, Settlement::AlreadyDone(_)));
    assert_eq!(fakes.events().len(), 1, "one event per transition");
}

#[tokio::test]
async fn cancel_restores_stock_once_and_hides_other_users_orders() {
    let fakes = Fakes::with_product("p", 10);
    let order = fakes.place_new(&user("u"), &items("k", "p", 4)).await;
    let cancel = fakes.cancel();
    let stranger = buyer("v");
    assert!(matches!(
        cancel.run(&stranger, &order.id, "t").await,
        Err(AppError::NotFound { .. })
    ));
    let owner = buyer("u");
    assert!(matches!(
        cancel.run(&owner, &order.id, "t").await,
        Ok(Cancelled::Now(_))
    ));
    assert!(matches!(
        cancel.run(&owner, &order.id, "t").await,
        Ok(Cancelled::Already(_))
    ));
    assert_eq!(fakes.store.stock("p"), Some(10));
}

#[tokio::test]
async fn an_order_larger_than_any_shard_takes_from_several_and_its_cancel_returns_them() {
    for locks in [false, true] {
        let mut fakes = Fakes::with_sharded_product("hot", 10, 4);
        fakes.locks.enabled = locks;
        fakes.locks.attempts = 3;
        assert_eq!(fakes.store.shard_stock("hot"), Some(vec![3, 3, 2, 2]));
        let order = fakes.place_new(&user("u"), &items("big", "hot", 7)).await;
        assert_eq!(fakes.store.stock("hot"), Some(3));
        assert!(
            !order.items[0].shards.is_first_only(),
            "{:?}",
            order.items[0]
        );
        let refused = fakes
            .place()
            .run(&user("u"), &items("more", "hot", 4), "t")
            .await;
        assert!(
            matches!(
                refused,
                Err(AppError::InsufficientStock {
                    requested: 4,
                    available: 3,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(matches!(
            fakes.cancel().run(&buyer("u"), &order.id, "t").await,
            Ok(Cancelled::Now(_))
        ));
        assert_eq!(fakes.store.shard_stock("hot"), Some(vec![3, 3, 2, 2]));
    }
}

#[tokio::test]
async fn a_hold_on_a_sharded_product_is_refused_only_when_the_total_is_short() {
    let fakes = Fakes::with_sharded_product("hot", 5, 5);
    let hold = fakes
        .hold()
        .run(&user("u"), &hold_request("hot", 4))
        .await
        .unwrap();
    assert_eq!(fakes.store.stock("hot"), Some(1));
    let short = fakes.hold().run(&user("v"), &hold_request("hot", 2)).await;
    assert!(
        matches!(short, Err(AppError::InsufficientStock { available: 1, .. })),
        "{short:?}"
    );
    let sweep = ExpireHolds {
        store: &fakes.store,
        clock: &fakes.clock,
    };
    fakes.clock.advance(Duration::from_secs(121));
    assert_eq!(sweep.run().await.unwrap().expired, 1);
    assert_eq!(fakes.store.shard_stock("hot"), Some(vec![1; 5]));
    assert_eq!(hold.quantity.get(), 4);
}

mod metrics;
mod process_payment;
mod reconcile;
