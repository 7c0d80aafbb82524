//! The narrow capabilities handlers depend on. The DynamoDB and SQS adapters implement them for
//! Lambda and the local stack; `adapters::in_memory` implements them for unit tests.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::{
    Hold, HoldId, IdempotencyKey, NewProduct, Order, OrderId, OrderStatus, Product, ProductId,
    ProductPatch, StockShard, UserId,
};
use crate::messages::{OrderEvent, OrderPlaced};

/// A failure of a backing store, kept with its cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the call (throttling, network, 5xx).
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An item in the store does not map to the domain: a bug or a hand edit, never the client's fault.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    /// The store refused a request as malformed (DynamoDB's `ValidationException`: a key over
    /// its size limit, a wrong attribute type). Input is parsed before any call, so this is a
    /// request we built wrong, a fault of ours (500), never a reason to retry (503).
    #[error("the store refused the request as invalid")]
    Rejected(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A pagination cursor that this store did not hand out.
    #[error("the cursor is not valid")]
    InvalidCursor,
}

impl StoreError {
    /// Wraps any SDK error as [`StoreError::Unavailable`], keeping it as the source.
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(cause))
    }
}

/// A failure to hand a message to the queue.
#[derive(Debug, thiserror::Error)]
#[error("the queue is unavailable")]
pub struct QueueError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// One page of a listing and the opaque cursor of the next, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Which of a user's orders to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    /// Whose orders.
    pub user_id: UserId,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Page size, 1..=50.
    pub limit: u32,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// What a user's idempotency key placed: the order, which is its own idempotency record (its id
/// is derived from the user and the key, and it carries the request's fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The order the key created.
    pub order: Order,
    /// [`crate::domain::OrderRequest::fingerprint`] of the first request; `None` for an order
    /// placed before fingerprints lived on the order whose separate record has expired, so the
    /// request cannot be compared (docs/deploy.md, "Moving to the lean order items").
    pub request_fingerprint: Option<String>,
}

/// Why placing an order did not commit.
#[derive(Debug, thiserror::Error)]
pub enum PlaceOrderError {
    /// The key's order already exists: another request with this key committed first.
    #[error("the idempotency key was used by a committed order")]
    DuplicateKey,
    /// A product's stock is below the quantity (or the product is gone).
    #[error("insufficient stock for product {product_id}")]
    InsufficientStock {
        /// The first product whose condition failed.
        product_id: ProductId,
    },
    /// The hold the order is placed from is no longer ACTIVE, or its time is up.
    #[error("the hold is not active")]
    HoldNotActive,
    /// The hold's product was deleted: its holds cannot be checked out.
    #[error("product {product_id} was deleted")]
    ProductGone {
        /// The hold's product.
        product_id: ProductId,
    },
    /// Another transaction touched the same items at the same time; safe to retry.
    #[error("the transaction conflicted with another one")]
    Conflict {
        /// The product whose item conflicted, when the store says which.
        product_id: Option<ProductId>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why placing a hold did not commit.
#[derive(Debug, thiserror::Error)]
pub enum PlaceHoldError {
    /// The product's stock is below the quantity (or the product is gone).
    #[error("insufficient stock")]
    InsufficientStock,
    /// The user already has the most ACTIVE holds allowed on this product.
    #[error("too many active holds on this product")]
    LimitReached,
    /// Another transaction touched the same items at the same time; safe to retry.
    #[error("the transaction conflicted with another one")]
    Conflict,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads and writes products (admin CRUD and live stock on reads).
pub trait ProductCatalog: Send + Sync {
    /// One product, `None` when unknown or deleted.
    fn get_product(
        &self,
        id: &ProductId,
    ) -> impl Future<Output = Result<Option<Product>, StoreError>> + Send;
    /// The products an order is priced from, in one round trip where the store allows it;
    /// unknown and deleted ids are left out. Read for the price: the read may lag a change by a
    /// moment (eventually consistent), and `stock` is the product item's own shard only, the whole
    /// stock when `stock_shards` is 1. The placement transaction decides stock and liveness.
    fn get_products(
        &self,
        ids: &[ProductId],
    ) -> impl Future<Output = Result<Vec<Product>, StoreError>> + Send;
    /// Each stock shard's units (index = shard); `None` when the product is unknown or deleted.
    /// For an order whose shard was short: where else its units are. `consistent: false` reads
    /// at half the read units and may miss the last second's moves: enough to plan a take, whose
    /// condition decides, not to refuse one.
    fn shard_stocks(
        &self,
        id: &ProductId,
        consistent: bool,
    ) -> impl Future<Output = Result<Option<Vec<u32>>, StoreError>> + Send;
    /// A page of products.
    fn list_products(
        &self,
        limit: u32,
        cursor: Option<String>,
    ) -> impl Future<Output = Result<Page<Product>, StoreError>> + Send;
    /// Stores a new product.
    fn create_product(
        &self,
        id: ProductId,
        product: NewProduct,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Product, StoreError>> + Send;
    /// Applies a patch; `None` when the product is unknown or deleted.
    fn update_product(
        &self,
        id: &ProductId,
        patch: &ProductPatch,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Product>, StoreError>> + Send;
    /// Deletes a product (soft: orders still restore stock to it); `false` when it was unknown.
    fn delete_product(
        &self,
        id: &ProductId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Reads orders.
pub trait OrderReader: Send + Sync {
    /// One order, `None` when unknown.
    fn get_order(
        &self,
        id: &OrderId,
    ) -> impl Future<Output = Result<Option<Order>, StoreError>> + Send;
    /// A user's orders, newest first.
    fn list_orders(
        &self,
        query: &OrderQuery,
    ) -> impl Future<Output = Result<Page<Order>, StoreError>> + Send;
}

/// Looks up what an idempotency key placed.
pub trait IdempotencyStore: Send + Sync {
    /// The order a user's key placed, with its request's fingerprint, if any; read consistently.
    fn get_idempotency_record(
        &self,
        user_id: &UserId,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
}

/// Takes stock for an order and gives it back.
pub trait StockReserver: Send + Sync {
    /// The stock taken (`stock >= q` per shard) and the order written with the request's
    /// fingerprint on condition that it does not exist (its id is derived from the user and the
    /// key, so an existing one is [`PlaceOrderError::DuplicateKey`]). Nothing stays written
    /// unless all of it is. The take stays marked as the order's until
    /// [`StockReserver::release_taken`], which the caller runs once the order's message is sent:
    /// a placement that stops before that leaves the mark, and the journal's sweep sends the
    /// message of a PENDING order it finds there ([`JournalSweep::unsent`]).
    fn place_order(
        &self,
        order: &Order,
        request_fingerprint: &str,
    ) -> impl Future<Output = Result<StockTaken, PlaceOrderError>> + Send;
    /// Removes the mark of a take whose order's message is sent. Best effort: a mark left behind
    /// is the sweep's.
    fn release_taken(&self, taken: &StockTaken) -> impl Future<Output = ()> + Send;
    /// One transaction: `consumed` (the hold after checkout) written on condition that the stored
    /// hold is ACTIVE, belongs to the order's user and ends after `now`; the user's active-hold
    /// count down by one; the order with the request's fingerprint (must not exist); the product not
    /// deleted ([`PlaceOrderError::ProductGone`]). No stock
    /// moves: the hold took it. A failed hold condition is [`PlaceOrderError::HoldNotActive`].
    fn place_order_from_hold(
        &self,
        order: &Order,
        request_fingerprint: &str,
        consumed: &Hold,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PlaceOrderError>> + Send;
    /// One transaction: status PENDING -> CANCELLED (conditional on PENDING) and every item's stock
    /// back. `Ok(false)` when the order was no longer PENDING, so nothing changed.
    fn cancel_order(
        &self,
        cancelled: &Order,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Per-shard lock items (one per product unless it has stock shards): a first layer in front of
/// the stock transaction.
pub trait StockLocks: Send + Sync {
    /// Takes the lock when it is free or its lease has ended; `false` when someone else holds it.
    fn try_lock(
        &self,
        shard: &StockShard,
        token: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Releases the lock if `token` still owns it; a lock taken over after expiry is left alone.
    fn unlock(
        &self,
        shard: &StockShard,
        token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The span a rate limit counts over: no subject gets more than its limit in any 60 seconds.
pub use crate::domain::RATE_SPAN_MS;

/// What a [`RateCounter`] decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Counted: the request may go on.
    Allowed,
    /// Not counted: `retry_after_secs` is when the same request would be allowed (rounded up).
    Limited {
        /// Whole seconds, at least 1.
        retry_after_secs: u64,
    },
}

/// Counts requests per subject over a sliding 60-second span, shared by every Lambda instance.
pub trait RateCounter: Send + Sync {
    /// Counts one request at `now` unless `subject` already had `limit` requests counted in the
    /// 60 seconds before it, counted in 2-second buckets (`domain/rate_window.rs`: a grant 60 to
    /// 62 s old may still count); a `limit` of 0 counts nothing.
    fn try_count(
        &self,
        subject: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<RateDecision, StoreError>> + Send;
}

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

/// Reachability of a backing service, for `/health`.
pub trait Reachable: Send + Sync {
    /// Whether the service answers a cheap call right now.
    fn reachable(&self) -> impl Future<Output = bool> + Send;
}

/// The time, injected so tests never sleep to see a lease or a window expire.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Moves orders through payment; every move is conditional on the current status.
pub trait OrderSettler: Send + Sync {
    /// PENDING -> PROCESSING (`processing` is the order after the move). `Ok(false)` when the
    /// order was no longer PENDING because of another writer, so nothing changed; a move of this
    /// call's own whose answer was lost is `Ok(true)`.
    fn start_processing(
        &self,
        processing: &Order,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// `from` (PENDING or PROCESSING) -> PAID, or -> FAILED with every item's stock restored in
    /// the same transaction (`settled` is the order after the move). `Ok(false)` when the stored
    /// status was no longer `from`, so nothing changed.
    fn settle(
        &self,
        settled: &Order,
        from: OrderStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Stock holds.
pub trait HoldStore: Send + Sync {
    /// One hold, `None` when unknown.
    fn get_hold(
        &self,
        id: &HoldId,
    ) -> impl Future<Output = Result<Option<Hold>, StoreError>> + Send;
    /// One transaction: the product's `stock >= q` decrement, the hold (must not exist), and the
    /// user's count of ACTIVE holds on the product up by one on condition it stays `<= limit`.
    fn place_hold(
        &self,
        hold: &Hold,
        limit: u32,
    ) -> impl Future<Output = Result<(), PlaceHoldError>> + Send;
    /// One transaction: `expired` (the hold after the sweep) written on condition that the stored
    /// hold is ACTIVE and its time is up at `expired.updated_at`, its units back on the product,
    /// and the user's active-hold count down by one. `Ok(false)` when it was no longer ACTIVE (a
    /// checkout won), so nothing changed.
    fn expire_hold(&self, expired: &Hold) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Up to `limit` ACTIVE holds whose time was up at `now`, oldest end first.
    fn expired_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Hold>, StoreError>> + Send;
}

/// The first answer to a webhook delivery, replayed to a redelivery. The answer is a function of
/// the order id and the status it reported, so storing those two replays it byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// The provider's idempotency key.
    pub idempotency_key: IdempotencyKey,
    /// [`crate::domain::webhook::PaymentNotice::fingerprint`] of the first delivery.
    pub fingerprint: String,
    /// The order it named.
    pub order_id: OrderId,
    /// The order's status after the first delivery; `None` when the order did not exist yet.
    pub order_status: Option<OrderStatus>,
}

/// A webhook's outcome for an order that did not exist when it arrived, applied when it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSettlement {
    /// The order it is waiting for.
    pub order_id: OrderId,
    /// What the provider decided.
    pub outcome: PaymentOutcome,
    /// The delivery that brought it.
    pub idempotency_key: IdempotencyKey,
}

/// Webhook deliveries and the outcomes waiting for their order.
pub trait WebhookStore: Send + Sync {
    /// The first answer to this key, if any.
    fn get_webhook(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<WebhookRecord>, StoreError>> + Send;
    /// Stores the answer (condition: the key is new) and, in the same transaction, `pending` when
    /// given (the first pending outcome of an order is kept). `Ok(false)` when the key was taken
    /// first by a concurrent delivery, so nothing changed.
    fn record_webhook(
        &self,
        record: &WebhookRecord,
        pending: Option<&PendingSettlement>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The outcome waiting for `order_id`, if a webhook came before the order.
    fn pending_settlement(
        &self,
        order_id: &OrderId,
    ) -> impl Future<Output = Result<Option<PendingSettlement>, StoreError>> + Send;
}

/// The mark of a stock take an order from items made, until its message is sent: the journal
/// token and the units per shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockTaken {
    /// The take's journal token.
    pub token: String,
    /// The units taken per shard.
    pub shards: Vec<(StockShard, u64)>,
}

/// A PENDING order whose placement stopped before it sent the order's message: the sweep found
/// its take still marked. Its message is sent, then the mark released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsentOrder {
    /// The order.
    pub order_id: OrderId,
    /// Its user.
    pub user_id: UserId,
    /// When it was placed (its message waits for the rest of the cancel window).
    pub placed_at: DateTime<Utc>,
    /// The mark to release once the message is sent.
    pub taken: StockTaken,
}

/// What one sweep of the stock journal finished for writers that stopped between their steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalSweep {
    /// Orders whose placement stopped before sending their message: left marked for the caller,
    /// which sends the message and releases the mark.
    pub unsent: Vec<UnsentOrder>,
    /// Takes whose owner was written (and is past PENDING, or a hold): their entries removed.
    pub released: usize,
    /// Takes whose owner was never written: their units given back.
    pub undone: usize,
    /// Restores whose status move committed: their units given back.
    pub applied: usize,
    /// Restore intents whose status move did not commit: removed.
    pub dropped: usize,
}

/// The stock journal of a store whose stock moves take several writes (the DynamoDB adapter's
/// `stock_journal`): finishing what a writer that stopped between them left undone.
pub trait StockJournal: Send + Sync {
    /// Settles every journal entry written before `older_than`.
    fn sweep_stock_journal(
        &self,
        older_than: DateTime<Utc>,
    ) -> impl Future<Output = Result<JournalSweep, StoreError>> + Send;
}

/// Finds orders that should have been settled by now (the reconciler's query).
pub trait UnsettledOrders: Send + Sync {
    /// Up to `limit` orders in `status` whose last change is older than `before`, oldest placed
    /// first.
    fn unsettled(
        &self,
        status: OrderStatus,
        before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Order>, StoreError>> + Send;
}

pub use crate::domain::PaymentOutcome;

/// A technical failure of the payment provider: retried, never a business decision.
#[derive(Debug, thiserror::Error)]
#[error("the payment provider failed")]
pub struct PaymentError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Charges an order. Providers are called with the order id as idempotency key, so a charge
/// repeated after a crash or a duplicate message does not charge twice.
pub trait PaymentGateway: Send + Sync {
    /// Charges `order.total_amount`.
    fn charge(
        &self,
        order: &Order,
    ) -> impl Future<Output = Result<PaymentOutcome, PaymentError>> + Send;
}

/// A stored WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// API Gateway's connection id.
    pub connection_id: String,
    /// The authenticated user.
    pub user_id: UserId,
    /// When it connected.
    pub connected_at: DateTime<Utc>,
}

/// Open WebSocket connections by user.
pub trait ConnectionStore: Send + Sync {
    /// Stores a connection with a TTL (API Gateway closes connections after two hours).
    fn save_connection(
        &self,
        connection: &Connection,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets a connection (disconnect, or 410 Gone on send).
    fn delete_connection(
        &self,
        connection_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Ids of a user's open connections.
    fn connections_of(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// What happened to one pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The connection took it.
    Delivered,
    /// 410 Gone: the connection no longer exists.
    Gone,
}

/// A failure to push to a connection other than 410 Gone.
#[derive(Debug, thiserror::Error)]
#[error("pushing to the connection failed")]
pub struct PushError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Pushes bytes to one WebSocket connection (API Gateway's `PostToConnection`).
pub trait ConnectionPusher: Send + Sync {
    /// Sends one text frame.
    fn push(
        &self,
        connection_id: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<Delivery, PushError>> + Send;
}

/// Tells an order's owner what happened to it. Best effort: a notification never fails or
/// undoes the change it reports.
pub trait Notifier: Send + Sync {
    /// Pushes `event` to every open connection of `user_id`.
    fn notify(&self, user_id: &UserId, event: &OrderEvent) -> impl Future<Output = ()> + Send;
}

/// A port outside the function's [`Footprint`](crate::function::Footprint) is wired as `None`: the
/// function builds no client for it and has no permission to use it, so reaching it is a bug in
/// the footprint, reported as a failure of that port rather than a call to AWS.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not in this function's footprint")]
pub struct NotWired(pub &'static str);

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

impl<R: Reachable> Reachable for Option<R> {
    async fn reachable(&self) -> bool {
        match self {
            Some(service) => service.reachable().await,
            None => false,
        }
    }
}

impl<N: Notifier> Notifier for Option<N> {
    async fn notify(&self, user_id: &UserId, event: &OrderEvent) {
        match self {
            Some(notifier) => notifier.notify(user_id, event).await,
            None => tracing::error!(
                order_id = %event.order_id,
                "{}; event not pushed",
                NotWired("the WebSocket notifier")
            ),
        }
    }
}

impl<C: ConnectionStore> ConnectionStore for Option<C> {
    async fn save_connection(
        &self,
        connection: &Connection,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Some(store) => store.save_connection(connection, ttl).await,
            None => Err(StoreError::unavailable(NotWired("the connections table"))),
        }
    }

    async fn delete_connection(&self, connection_id: &str) -> Result<(), StoreError> {
        match self {
            Some(store) => store.delete_connection(connection_id).await,
            None => Err(StoreError::unavailable(NotWired("the connections table"))),
        }
    }

    async fn connections_of(&self, user_id: &UserId) -> Result<Vec<String>, StoreError> {
        match self {
            Some(store) => store.connections_of(user_id).await,
            None => Err(StoreError::unavailable(NotWired("the connections table"))),
        }
    }
}
