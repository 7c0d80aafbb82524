//! Placing an order, from items or from a hold: where stock gets decremented (or a hold consumed).
//!
//! 1. Replay when this user's key already placed an order with the same request; refuse a
//!    reused key with another request.
//! 2. Build the order: unit prices snapshotted from the catalog (fail fast on unknown products or
//!    visibly short stock), or the hold's product, quantity and price (the hold must be the
//!    caller's, ACTIVE and inside its window). A product with stock shards is taken from one
//!    shard picked at random, which spreads a hot product's writes over its partitions.
//! 3. From items with `STOCK_LOCKS=on`: take the per-shard locks (ascending, backoff, token).
//! 4. The stock taken by a conditional write per product shard, outside any transaction, then the
//!    order put on condition that it does not exist: it is the key's idempotency record (its id
//!    is derived from the user and the key; it carries the request's fingerprint). From a hold,
//!    one TransactWriteItems of the hold's conditional move to CONSUMED and the order;
//!    `adapters/dynamodb/stock_journal/`. The stock's conditions, not
//!    the locks, make overselling impossible. A busy shard (throttled, its journal full) moves the
//!    line to another shard at random and tries again for a few seconds (`stock_patience`); a
//!    transaction conflict is retried with jitter. When a shard is short, the shards' stock is
//!    read and the units are taken from one that has enough, or from several: an order is
//!    refused only when the product's total is short.
//! 5. Release the locks, enqueue the order for payment (delivered after the cancel window), then
//!    release the mark of its stock take (until then it stands for the message: the reconciler
//!    sends the message of a PENDING order whose take is still marked), and apply a webhook
//!    outcome that came before the order (`SettlePayment`).
//!
//! A concurrent duplicate never sees a half-placed order: the order and its record are one item,
//! so the loser's put fails on the derived order id's condition (its stock taken is given back)
//! and it replays the winner's order. `IDEMPOTENCY_IN_PROGRESS` remains only for an order that
//! the put saw but a consistent read then did not: not expected from DynamoDB, answered honestly
//! if it ever happens.

use std::time::Duration;

use crate::config::LockSettings;
use crate::domain::{
    Hold, HoldId, Order, OrderId, OrderItem, OrderLine, OrderRequest, OrderSource, ProductId,
    ShardSplit, StockShard, UserId, plan_take,
};
use crate::messages::OrderPlaced;
use crate::metrics::{self, BusinessMetric};
use crate::ports::{
    Clock, HoldStore, IdempotencyStore, Notifier, OrderQueue, OrderReader, OrderSettler,
    PlaceOrderError, ProductCatalog, StockLocks, StockReserver, StockTaken, StoreError,
    WebhookStore,
};
use crate::retry::full_jitter;

use super::locks::lock_shards;
use super::stock_patience::Patience;
use super::{AppError, SettlePayment, WaitBudget};

/// Transaction attempts when DynamoDB reports a conflict with another transaction.
const COMMIT_ATTEMPTS: u32 = 4;
/// First pause before a commit retry; doubles per retry, with full jitter.
const COMMIT_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause before a commit retry.
const COMMIT_BACKOFF_CAP: Duration = Duration::from_millis(200);
/// Times an order is re-planned over its products' shards after a shard turned out short while
/// the product's total covered it (other orders took the units meanwhile); then `LOCK_CONFLICT`.
const SHARD_REPLANS: u32 = 8;
/// Other shards tried at random, before the first re-plan, after a short one: a re-plan reads
/// every shard of the product (a read unit on each key), a try writes one key.
const SHORT_PROBES: u32 = 2;

/// What placing an order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// A new order: stock taken (or a hold consumed), enqueued for payment.
    Created(Order),
    /// This user's key had placed this order already with the same request; nothing changed.
    Replayed(Order),
}

/// The ports placing an order uses.
pub struct PlaceOrder<'a, S, Q, N, C> {
    /// Catalog, orders, idempotency records, holds, locks, webhooks' pending outcomes.
    pub store: &'a S,
    /// The payment pipeline.
    pub queue: &'a Q,
    /// Order events (a pending webhook outcome applied at once is pushed).
    pub notifier: &'a N,
    /// The time.
    pub clock: &'a C,
    /// Lock use and its retry budget.
    pub locks: &'a LockSettings,
    /// `CANCEL_WINDOW_SECONDS`: the payment pipeline sees the order only after this long, so the
    /// buyer can cancel it meanwhile.
    pub cancel_window: Duration,
    /// Until when it may wait for busy stock shards and locks: the invocation's time.
    pub budget: WaitBudget,
}

impl<S, Q, N, C> PlaceOrder<'_, S, Q, N, C>
where
    S: ProductCatalog
        + OrderReader
        + IdempotencyStore
        + StockReserver
        + StockLocks
        + HoldStore
        + WebhookStore
        + OrderSettler,
    Q: OrderQueue,
    N: Notifier,
    C: Clock,
{
    /// Places `request` for `user`; `trace_id` travels with the order to the consumer.
    pub async fn run(
        &self,
        user: &UserId,
        request: &OrderRequest,
        trace_id: &str,
    ) -> Result<Placed, AppError> {
        let placed = self.place(user, request, trace_id).await;
        match &placed {
            Ok(Placed::Created(_)) => {
                metrics::count(BusinessMetric::OrdersPlaced);
                if matches!(request.source, OrderSource::Hold(_)) {
                    metrics::count(BusinessMetric::HoldsConsumed);
                }
            }
            Ok(Placed::Replayed(_)) => metrics::count(BusinessMetric::OrdersReplayed),
            // The refusal is counted where its `error_code` is decided (`api::handle_route`).
            Err(_) => {}
        }
        placed
    }

    async fn place(
        &self,
        user: &UserId,
        request: &OrderRequest,
        trace_id: &str,
    ) -> Result<Placed, AppError> {
        let fingerprint = request.fingerprint();
        if let Some(order) = self.replay(user, request, &fingerprint).await? {
            return Ok(Placed::Replayed(order));
        }
        let now = self.clock.now();
        let id = OrderId::for_key(user, &request.idempotency_key);
        let committed = match &request.source {
            OrderSource::Items(lines) => {
                let (items, shard_counts) = self.price(lines).await?;
                let mut order = Order::place(
                    id,
                    user.clone(),
                    request.idempotency_key.clone(),
                    items,
                    now,
                );
                self.commit_items(&mut order, &fingerprint, &shard_counts)
                    .await
                    .map(|taken| (order, Some(taken)))
            }
            OrderSource::Hold(hold_id) => {
                let hold = self.usable_hold(user, hold_id).await?;
                let item = OrderItem {
                    product_id: hold.product_id.clone(),
                    quantity: hold.quantity,
                    unit_price: hold.unit_price,
                    shards: hold.shards.clone(),
                };
                let order = Order::place(
                    id,
                    user.clone(),
                    request.idempotency_key.clone(),
                    vec![item],
                    now,
                );
                self.commit_hold(&order, &fingerprint, &hold)
                    .await
                    .map(|()| (order, None))
            }
        };
        let (order, taken) = match committed {
            Ok(committed) => committed,
            // Another request with this key committed first (or waited on the same locks):
            // replay it; if the record cannot be seen yet, say so honestly.
            Err(Busy::Duplicate) => {
                return self
                    .replay(user, request, &fingerprint)
                    .await?
                    .map(Placed::Replayed)
                    .ok_or(AppError::IdempotencyInProgress);
            }
            Err(Busy::Locked(error)) => {
                return match self.replay(user, request, &fingerprint).await? {
                    Some(order) => Ok(Placed::Replayed(order)),
                    None => Err(error),
                };
            }
            Err(Busy::Refused(error)) => return Err(error),
            // Only a placement from items takes stock, and it re-plans or refuses itself.
            Err(Busy::Short(product_id)) => {
                return Err(AppError::internal(format!(
                    "a checkout of a hold reported product {product_id} short of stock"
                )));
            }
        };
        tracing::info!(order_id = %order.id, total = %order.total_amount, "order placed");
        self.after_commit(&order, taken.as_ref(), trace_id).await;
        Ok(Placed::Created(order))
    }

    /// The stored order when this user's key already placed one with the same request.
    async fn replay(
        &self,
        user: &UserId,
        request: &OrderRequest,
        fingerprint: &str,
    ) -> Result<Option<Order>, AppError> {
        let Some(record) = self
            .store
            .get_idempotency_record(user, &request.idempotency_key)
            .await?
        else {
            return Ok(None);
        };
        // `None`: placed before the order carried its fingerprint and its old record expired;
        // the request cannot be compared, so it is not replayed.
        if record.request_fingerprint.as_deref() != Some(fingerprint) {
            return Err(AppError::IdempotencyKeyReused);
        }
        Ok(Some(record.order))
    }

    /// The lines with unit prices snapshotted from the catalog, each planned on one stock shard,
    /// and each line's product's stock shards.
    async fn price(&self, lines: &[OrderLine]) -> Result<(Vec<OrderItem>, Vec<u16>), AppError> {
        let ids: Vec<_> = lines.iter().map(|l| l.product_id.clone()).collect();
        let products = self.store.get_products(&ids).await?;
        lines
            .iter()
            .map(|line| {
                let product = products
                    .iter()
                    .find(|p| p.id == line.product_id)
                    .ok_or_else(|| AppError::NotFound {
                        what: "product",
                        id: line.product_id.to_string(),
                    })?;
                // Fail fast on visibly short stock; the transaction's condition decides. A
                // sharded product's stock is not summed here: its shards would all be read.
                if product.stock_shards <= 1 && product.stock < line.quantity.get() {
                    return Err(AppError::InsufficientStock {
                        product_id: product.id.clone(),
                        requested: line.quantity.get(),
                        available: product.stock,
                    });
                }
                let shards = product.stock_shards.max(1);
                let item = OrderItem {
                    product_id: line.product_id.clone(),
                    quantity: line.quantity,
                    unit_price: product.price,
                    shards: ShardSplit::single(rand::random_range(0..shards), line.quantity.get()),
                };
                Ok((item, shards))
            })
            .collect::<Result<Vec<_>, AppError>>()
            .map(|lines| lines.into_iter().unzip())
    }

    /// The caller's hold if a checkout may use it now; another user's hold is not found.
    async fn usable_hold(&self, user: &UserId, id: &HoldId) -> Result<Hold, AppError> {
        match self.store.get_hold(id).await? {
            Some(hold) if hold.user_id == *user => {
                if hold.usable_at(self.clock.now()) {
                    Ok(hold)
                } else {
                    Err(AppError::HoldNotActive {
                        hold_id: hold.id,
                        status: hold.status,
                    })
                }
            }
            _ => Err(AppError::NotFound {
                what: "hold",
                id: id.to_string(),
            }),
        }
    }

    /// Takes the locks (when on) and commits an order from items; a short shard re-plans the
    /// line over the product's shards while its total covers it, a busy one moves it to another
    /// shard (`stock_patience`). `shard_counts`: each line's product's stock shards.
    async fn commit_items(
        &self,
        order: &mut Order,
        fingerprint: &str,
        shard_counts: &[u16],
    ) -> Result<StockTaken, Busy> {
        let mut patience = Patience::start(self.budget);
        let mut replans = 0;
        let mut probes = 0;
        let mut conflicts = 0;
        // Per line, the shards found short.
        let mut short: Vec<Vec<u16>> = vec![Vec::new(); order.items.len()];
        loop {
            let held = if self.locks.enabled {
                let shards: Vec<StockShard> = order
                    .items
                    .iter()
                    .flat_map(OrderItem::stock_parts)
                    .map(|(shard, _)| shard)
                    .collect();
                let held = lock_shards(self.store, self.clock, self.locks, &self.budget, &shards)
                    .await
                    .map_err(|error| match error {
                        error @ AppError::LockConflict { .. } => Busy::Locked(error),
                        other => Busy::Refused(other),
                    })?;
                Some(held)
            } else {
                None
            };
            let result = self.store.place_order(order, fingerprint).await;
            if let Some(held) = held {
                held.release(self.store).await;
            }
            match result {
                Ok(taken) => return Ok(taken),
                // A busy stock shard: another shard, or a wait (`stock_patience`).
                Err(PlaceOrderError::Conflict {
                    product_id: Some(product_id),
                }) => {
                    let Some(pause) = patience.next_pause() else {
                        return Err(Busy::Locked(AppError::LockConflict { product_id }));
                    };
                    move_line(order, &product_id, shard_counts, &mut short, false);
                    metrics::count(BusinessMetric::Retries);
                    tokio::time::sleep(pause).await;
                }
                // The transaction of the order and its record met another one (a request with
                // the same key): a few retries, as for a checkout.
                Err(PlaceOrderError::Conflict { product_id: None })
                    if conflicts + 1 < COMMIT_ATTEMPTS =>
                {
                    conflicts += 1;
                    metrics::count(BusinessMetric::Retries);
                    tokio::time::sleep(full_jitter(COMMIT_BACKOFF, conflicts, COMMIT_BACKOFF_CAP))
                        .await;
                }
                Err(PlaceOrderError::InsufficientStock { product_id })
                    if replans < SHARD_REPLANS =>
                {
                    if probes < SHORT_PROBES
                        && replans == 0
                        && move_line(order, &product_id, shard_counts, &mut short, true)
                    {
                        probes += 1;
                        continue;
                    }
                    replans += 1;
                    self.replan(order, &product_id, &mut patience).await?;
                }
                Err(PlaceOrderError::InsufficientStock { product_id }) => {
                    return Err(Busy::Locked(AppError::LockConflict { product_id }));
                }
                Err(other) => return Err(self.refusal(other, order, None).await),
            }
        }
    }

    /// After `product_id`'s shard was short: its line taken from where the units are now, or
    /// the refusal when the product's total is short (or it is gone).
    async fn replan(
        &self,
        order: &mut Order,
        product_id: &ProductId,
        patience: &mut Patience,
    ) -> Result<(), Busy> {
        let Some(item) = order
            .items
            .iter_mut()
            .find(|item| item.product_id == *product_id)
        else {
            return Err(Busy::Refused(AppError::internal(format!(
                "the store named product {product_id}, which the order does not have"
            ))));
        };
        let requested = item.quantity.get();
        // A plan from an eventually consistent read (half the units: every re-plan reads every
        // shard); a refusal only from a consistent one.
        for consistent in [false, true] {
            let stocks = self.read_stocks(product_id, consistent, patience).await?;
            if let Some(split) = plan_take(&stocks, requested, rand::random_range(0..usize::MAX)) {
                tracing::debug!(%product_id, ?split, "a stock shard was short; taking from where the units are");
                item.shards = split;
                return Ok(());
            }
            if consistent {
                return Err(Busy::Refused(AppError::InsufficientStock {
                    product_id: product_id.clone(),
                    requested,
                    available: stocks.iter().sum(),
                }));
            }
        }
        unreachable!("the consistent read always returns")
    }

    /// Each shard's stock of `product_id`, waiting (as for a busy shard) while the reads are
    /// throttled.
    async fn read_stocks(
        &self,
        product_id: &ProductId,
        consistent: bool,
        patience: &mut Patience,
    ) -> Result<Vec<u32>, Busy> {
        loop {
            match self.store.shard_stocks(product_id, consistent).await {
                Ok(Some(stocks)) => return Ok(stocks),
                Ok(None) => {
                    return Err(Busy::Refused(AppError::NotFound {
                        what: "product",
                        id: product_id.to_string(),
                    }));
                }
                // The shards' read budget is spent (every re-plan reads every shard): wait,
                // as for a busy shard.
                Err(StoreError::Unavailable(cause)) => match patience.next_pause() {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => return Err(Busy::Refused(StoreError::Unavailable(cause).into())),
                },
                Err(error) => return Err(Busy::Refused(error.into())),
            }
        }
    }

    /// Commits an order from a hold: no stock moves, the hold does.
    async fn commit_hold(&self, order: &Order, fingerprint: &str, hold: &Hold) -> Result<(), Busy> {
        let now = self.clock.now();
        let consumed = hold.consumed(order.id.clone(), now);
        self.with_retries(order, Some(hold), || {
            self.store
                .place_order_from_hold(order, fingerprint, &consumed, now)
        })
        .await
    }

    /// Runs a placement transaction, retrying conflicts with jitter, and reads its refusal;
    /// `hold` is the hold a checkout consumes.
    async fn with_retries<F, Fut>(
        &self,
        order: &Order,
        hold: Option<&Hold>,
        mut attempt_commit: F,
    ) -> Result<(), Busy>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), PlaceOrderError>>,
    {
        for attempt in 1..=COMMIT_ATTEMPTS {
            match attempt_commit().await {
                Ok(()) => return Ok(()),
                Err(PlaceOrderError::Conflict { .. }) if attempt < COMMIT_ATTEMPTS => {
                    metrics::count(BusinessMetric::Retries);
                    tokio::time::sleep(full_jitter(COMMIT_BACKOFF, attempt, COMMIT_BACKOFF_CAP))
                        .await;
                }
                Err(other) => return Err(self.refusal(other, order, hold).await),
            }
        }
        unreachable!("the last attempt always returns")
    }

    /// What a placement's refusal other than a conflict answers; `hold` is the hold a checkout
    /// consumes.
    async fn refusal(&self, error: PlaceOrderError, order: &Order, hold: Option<&Hold>) -> Busy {
        match error {
            PlaceOrderError::Conflict { product_id } => Busy::Locked(AppError::LockConflict {
                product_id: product_id.unwrap_or_else(|| order.items[0].product_id.clone()),
            }),
            PlaceOrderError::DuplicateKey => Busy::Duplicate,
            PlaceOrderError::HoldNotActive => {
                let Some(hold) = hold else {
                    return Busy::Refused(AppError::internal(
                        "a placement without a hold reported the hold inactive".into(),
                    ));
                };
                // Report the status that won (a sweep, another checkout), not the one read
                // before; ACTIVE when only the window closed meanwhile.
                let status = match self.store.get_hold(&hold.id).await {
                    Ok(Some(current)) => current.status,
                    Ok(None) | Err(_) => hold.status,
                };
                Busy::Refused(AppError::HoldNotActive {
                    hold_id: hold.id.clone(),
                    status,
                })
            }
            PlaceOrderError::InsufficientStock { product_id } => Busy::Short(product_id),
            // Deleted after the hold was taken: the held units went with it.
            PlaceOrderError::ProductGone { product_id } => Busy::Refused(AppError::NotFound {
                what: "product",
                id: product_id.to_string(),
            }),
            PlaceOrderError::Store(error) => Busy::Refused(error.into()),
        }
    }

    /// Hands the order to the payment pipeline (then releases the mark of its stock take, which
    /// stood for the message until it was sent), then applies a webhook outcome that came first.
    /// Neither fails the request: the order is committed, and a retry would only replay it.
    async fn after_commit(&self, order: &Order, taken: Option<&StockTaken>, trace_id: &str) {
        let message = OrderPlaced {
            order_id: order.id.clone(),
            user_id: order.user_id.clone(),
            trace_id: trace_id.to_owned(),
        };
        match self.queue.enqueue(&message, self.cancel_window).await {
            Ok(()) => {
                if let Some(taken) = taken {
                    self.store.release_taken(taken).await;
                }
            }
            // The reconciler sends it: found by its take's mark in the stock journal, or (from a
            // hold) in the `unsettled-orders` index.
            Err(e) => {
                tracing::error!(order_id = %order.id, error = %e, "enqueue after commit failed; left to the reconciler");
            }
        }
        let settle = SettlePayment {
            store: self.store,
            notifier: self.notifier,
            clock: self.clock,
        };
        if let Err(e) = settle.apply_pending(order.clone(), trace_id).await {
            // The consumer checks for the pending outcome again before it charges.
            tracing::warn!(order_id = %order.id, error = %e, "applying an early webhook failed; the consumer will");
        }
    }
}

/// The line of `product_id` moved to another of its product's shards not known short, at
/// random; with `found_short`, its current shard is remembered as short first. `false` when there
/// is no such shard, or the line spans several.
fn move_line(
    order: &mut Order,
    product_id: &ProductId,
    shard_counts: &[u16],
    short: &mut [Vec<u16>],
    found_short: bool,
) -> bool {
    let lines = order
        .items
        .iter_mut()
        .zip(shard_counts)
        .zip(short.iter_mut());
    for ((item, shards), short) in lines {
        if item.product_id != *product_id {
            continue;
        }
        let quantity = item.quantity.get();
        if found_short {
            let Some(current) = item.shards.single_shard(quantity) else {
                return false;
            };
            short.push(current);
        }
        let pick = rand::random_range(0..usize::MAX);
        let Some(moved) = item.shards.moved(quantity, *shards, short, pick) else {
            return false;
        };
        item.shards = moved;
        return true;
    }
    false
}

/// Why a commit did not happen, before it becomes the request's answer.
enum Busy {
    /// The key was used by a committed order: replay it.
    Duplicate,
    /// A lock or an item stayed busy: replay a duplicate that won, else this refusal.
    Locked(AppError),
    /// Any other refusal or fault, answered as it is.
    Refused(AppError),
    /// A product's stock condition failed on the shards planned: re-plan, or refuse.
    Short(ProductId),
}
