//! Every store port over one mutex-guarded set of maps, with the DynamoDB adapter's conditional
//! semantics (all-or-nothing placement, cancel only from PENDING, lock leases, holds moved once).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::SwitchedOff;
use crate::domain::{
    Hold, HoldId, HoldStatus, IdempotencyKey, NewProduct, Order, OrderId, OrderItem, OrderStatus,
    Product, ProductId, ProductPatch, ShardSplit, StockShard, UserId, rate_bucket,
    rate_bucket_counts, rate_retry_after_secs, rate_verdict, spread,
};
use crate::ports::{
    Connection, ConnectionStore, HoldStore, IdempotencyRecord, IdempotencyStore, JournalSweep,
    OrderQuery, OrderReader, OrderSettler, Page, PendingSettlement, PlaceHoldError,
    PlaceOrderError, ProductCatalog, RATE_SPAN_MS, RateCounter, RateDecision, Reachable,
    StockJournal, StockLocks, StockReserver, StockTaken, StoreError, UnsentOrder, UnsettledOrders,
    WebhookRecord, WebhookStore,
};

#[derive(Debug, Default)]
struct Tables {
    /// Each product (its `stock` kept equal to the sum of its shards), whether it is deleted.
    products: BTreeMap<ProductId, (Product, bool)>,
    /// Each product's units per stock shard.
    shards: HashMap<ProductId, Vec<u32>>,
    orders: HashMap<OrderId, Order>,
    /// The request fingerprint each order was placed with (the DynamoDB adapter keeps it on the
    /// order item, which is the key's record).
    fingerprints: HashMap<OrderId, String>,
    locks: HashMap<StockShard, (String, DateTime<Utc>)>,
    /// Per subject, grants per rate bucket.
    rate_buckets: HashMap<String, BTreeMap<i64, i64>>,
    connections: HashMap<String, UserId>,
    holds: HashMap<HoldId, Hold>,
    webhooks: HashMap<String, WebhookRecord>,
    pending: HashMap<OrderId, PendingSettlement>,
    /// The orders in the `unsettled-orders` index (placed from a hold; settled ones are filtered
    /// out by status, as the index's reader does).
    indexed: HashSet<OrderId>,
    /// Per take token, the order from items whose take is still marked (its message not known
    /// sent), when it was placed, and the units per shard: the stock journal's take entries.
    marks: BTreeMap<String, TakeMark>,
}

/// A take still marked for its order from items.
#[derive(Debug, Clone)]
struct TakeMark {
    order_id: OrderId,
    placed_at: DateTime<Utc>,
    shards: Vec<(StockShard, u64)>,
}

impl Tables {
    /// ACTIVE holds of a user on a product.
    fn active_holds(&self, user_id: &UserId, product_id: &ProductId) -> u32 {
        self.holds
            .values()
            .filter(|h| {
                h.status == HoldStatus::Active
                    && h.user_id == *user_id
                    && h.product_id == *product_id
            })
            .count() as u32
    }

    /// Gives units back to the shards they came from; to shard 0 when that shard is gone.
    fn restore(&mut self, product_id: &ProductId, split: &ShardSplit, quantity: u32) {
        let Some(stocks) = self.shards.get_mut(product_id) else {
            return;
        };
        for (shard, units) in split.parts(quantity) {
            match stocks.get_mut(usize::from(shard)) {
                Some(stock) => *stock += units,
                None => stocks[0] += units,
            }
        }
        self.sum_up(product_id);
    }

    /// Whether every line's shards hold its units: the first product whose shard (or liveness)
    /// fails is returned.
    fn check_take(&self, lines: &[(&ProductId, &ShardSplit, u32)]) -> Result<(), ProductId> {
        for (product_id, split, quantity) in lines {
            let live = matches!(self.products.get(*product_id), Some((_, false)));
            let stocks = self.shards.get(*product_id);
            let enough = stocks.is_some_and(|stocks| {
                split
                    .parts(*quantity)
                    .iter()
                    .all(|(shard, units)| stocks.get(usize::from(*shard)) >= Some(units))
            });
            if !live || !enough {
                return Err((*product_id).clone());
            }
        }
        Ok(())
    }

    /// Takes every line's units from its shards, all or nothing (see [`Tables::check_take`]).
    fn take(&mut self, lines: &[(&ProductId, &ShardSplit, u32)]) -> Result<(), ProductId> {
        self.check_take(lines)?;
        for (product_id, split, quantity) in lines {
            let stocks = self.shards.get_mut(*product_id).expect("checked above");
            for (shard, units) in split.parts(*quantity) {
                stocks[usize::from(shard)] -= units;
            }
            self.sum_up(product_id);
        }
        Ok(())
    }

    /// Sets a product's `stock` to the sum of its shards.
    fn sum_up(&mut self, product_id: &ProductId) {
        let total = self.shards.get(product_id).map_or(0, |s| s.iter().sum());
        if let Some((product, _)) = self.products.get_mut(product_id) {
            product.stock = total;
        }
    }

    /// Stores a product with its stock spread over its shards.
    fn put_product(&mut self, product: Product) {
        self.shards.insert(
            product.id.clone(),
            spread(product.stock, product.stock_shards),
        );
        self.products.insert(product.id.clone(), (product, false));
    }

    /// Writes the order with its fingerprint unless it exists (the put's condition).
    fn insert_order(
        &mut self,
        order: &Order,
        request_fingerprint: &str,
    ) -> Result<(), PlaceOrderError> {
        if self.orders.contains_key(&order.id) {
            return Err(PlaceOrderError::DuplicateKey);
        }
        self.orders.insert(order.id.clone(), order.clone());
        self.fingerprints
            .insert(order.id.clone(), request_fingerprint.to_owned());
        Ok(())
    }
}

/// Every store port over one mutex-guarded set of maps.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    tables: Mutex<Tables>,
    down: AtomicBool,
}

impl InMemoryStore {
    /// Makes every call fail as if DynamoDB were unreachable (or reachable again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn tables(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(SwitchedOff));
        }
        Ok(self
            .tables
            .lock()
            .expect("a test panicked while holding the store"))
    }

    /// Inserts a product directly (test arrangement).
    pub fn insert_product(&self, product: Product) {
        self.tables.lock().unwrap().put_product(product);
    }

    /// A product's units per shard (test assertions).
    pub fn shard_stock(&self, id: &str) -> Option<Vec<u32>> {
        self.tables
            .lock()
            .unwrap()
            .shards
            .get(&ProductId::new(id))
            .cloned()
    }

    /// A product's stock, deleted or not (test assertions).
    pub fn stock(&self, id: &str) -> Option<u32> {
        self.tables
            .lock()
            .unwrap()
            .products
            .get(&ProductId::new(id))
            .map(|(p, _)| p.stock)
    }

    /// How many orders exist (test assertions).
    pub fn order_count(&self) -> usize {
        self.tables.lock().unwrap().orders.len()
    }

    /// Overwrites an order's status (test arrangement: the consumer moved it on).
    pub fn set_status(&self, id: &OrderId, status: OrderStatus) {
        if let Some(order) = self.tables.lock().unwrap().orders.get_mut(id) {
            order.status = status;
        }
    }
}

impl ProductCatalog for InMemoryStore {
    async fn get_product(&self, id: &ProductId) -> Result<Option<Product>, StoreError> {
        Ok(self
            .tables()?
            .products
            .get(id)
            .filter(|(_, deleted)| !deleted)
            .map(|(p, _)| p.clone()))
    }

    async fn get_products(&self, ids: &[ProductId]) -> Result<Vec<Product>, StoreError> {
        let tables = self.tables()?;
        Ok(ids
            .iter()
            .filter_map(|id| {
                tables
                    .products
                    .get(id)
                    .filter(|(_, d)| !d)
                    .map(|(p, _)| p.clone())
            })
            .collect())
    }

    async fn shard_stocks(
        &self,
        id: &ProductId,
        _consistent: bool,
    ) -> Result<Option<Vec<u32>>, StoreError> {
        let tables = self.tables()?;
        Ok(match tables.products.get(id) {
            Some((_, false)) => tables.shards.get(id).cloned(),
            _ => None,
        })
    }

    async fn list_products(
        &self,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<Page<Product>, StoreError> {
        let tables = self.tables()?;
        let after = cursor.map(ProductId::new);
        let mut live = tables
            .products
            .values()
            .filter(|(p, deleted)| !deleted && after.as_ref().is_none_or(|a| &p.id > a))
            .map(|(p, _)| p.clone());
        let items: Vec<Product> = live.by_ref().take(limit as usize).collect();
        let next_cursor = live.next().and(items.last().map(|p| p.id.to_string()));
        Ok(Page { items, next_cursor })
    }

    async fn create_product(
        &self,
        id: ProductId,
        product: NewProduct,
        now: DateTime<Utc>,
    ) -> Result<Product, StoreError> {
        let product = product.into_product(id, now);
        self.tables()?.put_product(product.clone());
        Ok(product)
    }

    async fn update_product(
        &self,
        id: &ProductId,
        patch: &ProductPatch,
        now: DateTime<Utc>,
    ) -> Result<Option<Product>, StoreError> {
        let mut tables = self.tables()?;
        let Some((product, false)) = tables.products.get_mut(id) else {
            return Ok(None);
        };
        if let Some(name) = &patch.name {
            product.name = name.clone();
        }
        if let Some(price) = patch.price {
            product.price = price;
        }
        product.updated_at = now;
        let total = patch.stock.unwrap_or(product.stock);
        let shards = patch.stock_shards.unwrap_or(product.stock_shards);
        product.stock = total;
        product.stock_shards = shards;
        let updated = product.clone();
        tables.shards.insert(id.clone(), spread(total, shards));
        Ok(Some(updated))
    }

    async fn delete_product(
        &self,
        id: &ProductId,
        _now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self.tables()?.products.get_mut(id) {
            Some((_, deleted)) if !*deleted => {
                *deleted = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl OrderReader for InMemoryStore {
    async fn get_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        Ok(self.tables()?.orders.get(id).cloned())
    }

    async fn list_orders(&self, query: &OrderQuery) -> Result<Page<Order>, StoreError> {
        let tables = self.tables()?;
        let mut mine: Vec<&Order> = tables
            .orders
            .values()
            .filter(|o| o.user_id == query.user_id)
            .collect();
        mine.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let start = match &query.cursor {
            Some(cursor) => {
                mine.iter()
                    .position(|o| o.id.as_str() == cursor)
                    .ok_or(StoreError::InvalidCursor)?
                    + 1
            }
            None => 0,
        };
        let mut matching = mine[start..]
            .iter()
            .filter(|o| query.status.is_none_or(|s| o.status == s));
        let items: Vec<Order> = matching
            .by_ref()
            .take(query.limit as usize)
            .map(|o| (*o).clone())
            .collect();
        let next_cursor = matching.next().and(items.last().map(|o| o.id.to_string()));
        Ok(Page { items, next_cursor })
    }
}

impl IdempotencyStore for InMemoryStore {
    async fn get_idempotency_record(
        &self,
        user_id: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let tables = self.tables()?;
        let id = OrderId::for_key(user_id, key);
        Ok(tables
            .orders
            .get(&id)
            .filter(|order| order.user_id == *user_id)
            .map(|order| IdempotencyRecord {
                order: order.clone(),
                request_fingerprint: tables.fingerprints.get(&id).cloned(),
            }))
    }
}

impl StockReserver for InMemoryStore {
    async fn place_order(
        &self,
        order: &Order,
        request_fingerprint: &str,
    ) -> Result<StockTaken, PlaceOrderError> {
        let mut tables = self.tables()?;
        if tables.orders.contains_key(&order.id) {
            return Err(PlaceOrderError::DuplicateKey);
        }
        let lines: Vec<_> = order
            .items
            .iter()
            .map(|item| (&item.product_id, &item.shards, item.quantity.get()))
            .collect();
        tables
            .take(&lines)
            .map_err(|product_id| PlaceOrderError::InsufficientStock { product_id })?;
        tables.insert_order(order, request_fingerprint)?;
        let taken = StockTaken {
            token: uuid::Uuid::new_v4().simple().to_string(),
            shards: order
                .items
                .iter()
                .flat_map(OrderItem::stock_parts)
                .map(|(shard, units)| (shard, u64::from(units)))
                .collect(),
        };
        tables.marks.insert(
            taken.token.clone(),
            TakeMark {
                order_id: order.id.clone(),
                placed_at: order.created_at,
                shards: taken.shards.clone(),
            },
        );
        Ok(taken)
    }

    async fn release_taken(&self, taken: &StockTaken) {
        if let Ok(mut tables) = self.tables() {
            tables.marks.remove(&taken.token);
        }
    }

    async fn place_order_from_hold(
        &self,
        order: &Order,
        request_fingerprint: &str,
        consumed: &Hold,
        now: DateTime<Utc>,
    ) -> Result<(), PlaceOrderError> {
        let mut tables = self.tables()?;
        match tables.holds.get(&consumed.id) {
            Some(hold) if hold.user_id == order.user_id && hold.usable_at(now) => {}
            _ => return Err(PlaceOrderError::HoldNotActive),
        }
        if tables
            .products
            .get(&consumed.product_id)
            .is_none_or(|(_, deleted)| *deleted)
        {
            return Err(PlaceOrderError::ProductGone {
                product_id: consumed.product_id.clone(),
            });
        }
        tables.insert_order(order, request_fingerprint)?;
        tables.indexed.insert(order.id.clone());
        tables.holds.insert(consumed.id.clone(), consumed.clone());
        Ok(())
    }

    async fn cancel_order(&self, cancelled: &Order) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        match tables.orders.get_mut(&cancelled.id) {
            Some(order) if order.status == OrderStatus::Pending => *order = cancelled.clone(),
            _ => return Ok(false),
        }
        for item in &cancelled.items {
            tables.restore(&item.product_id, &item.shards, item.quantity.get());
        }
        Ok(true)
    }
}

impl StockLocks for InMemoryStore {
    async fn try_lock(
        &self,
        shard: &StockShard,
        token: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        if tables
            .locks
            .get(shard)
            .is_some_and(|(_, until)| *until >= now)
        {
            return Ok(false);
        }
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        tables
            .locks
            .insert(shard.clone(), (token.to_owned(), until));
        Ok(true)
    }

    async fn unlock(&self, shard: &StockShard, token: &str) -> Result<(), StoreError> {
        let mut tables = self.tables()?;
        if tables
            .locks
            .get(shard)
            .is_some_and(|(owner, _)| owner == token)
        {
            tables.locks.remove(shard);
        }
        Ok(())
    }
}

impl RateCounter for InMemoryStore {
    async fn try_count(
        &self,
        subject: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<RateDecision, StoreError> {
        if limit == 0 {
            return Ok(RateDecision::Limited {
                retry_after_secs: (RATE_SPAN_MS / 1000) as u64,
            });
        }
        // The DynamoDB counters' rule (`domain/rate_window.rs`): add, judge, take back if refused.
        let now_ms = now.timestamp_millis();
        let bucket = rate_bucket(now_ms);
        let mut tables = self.tables()?;
        let buckets = tables.rate_buckets.entry(subject.to_owned()).or_default();
        buckets.retain(|b, _| rate_bucket_counts(*b, bucket));
        *buckets.entry(bucket).or_default() += 1;
        match rate_verdict(buckets.iter().map(|(b, n)| (*b, *n)), now_ms, limit) {
            None => Ok(RateDecision::Allowed),
            Some(fits_at) => {
                *buckets.entry(bucket).or_default() -= 1;
                Ok(RateDecision::Limited {
                    retry_after_secs: rate_retry_after_secs(fits_at, now_ms),
                })
            }
        }
    }
}

impl Reachable for InMemoryStore {
    async fn reachable(&self) -> bool {
        !self.down.load(Ordering::SeqCst)
    }
}

impl OrderSettler for InMemoryStore {
    async fn start_processing(&self, processing: &Order) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        match tables.orders.get_mut(&processing.id) {
            Some(order) if order.status == OrderStatus::Pending => {
                *order = processing.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn settle(&self, settled: &Order, from: OrderStatus) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        match tables.orders.get_mut(&settled.id) {
            Some(order) if order.status == from => *order = settled.clone(),
            _ => return Ok(false),
        }
        if settled.status == OrderStatus::Failed {
            for item in &settled.items {
                tables.restore(&item.product_id, &item.shards, item.quantity.get());
            }
        }
        Ok(true)
    }
}

impl HoldStore for InMemoryStore {
    async fn get_hold(&self, id: &HoldId) -> Result<Option<Hold>, StoreError> {
        Ok(self.tables()?.holds.get(id).cloned())
    }

    async fn place_hold(&self, hold: &Hold, limit: u32) -> Result<(), PlaceHoldError> {
        let mut tables = self.tables()?;
        let line = [(&hold.product_id, &hold.shards, hold.quantity.get())];
        tables
            .check_take(&line)
            .map_err(|_| PlaceHoldError::InsufficientStock)?;
        if tables.active_holds(&hold.user_id, &hold.product_id) >= limit {
            return Err(PlaceHoldError::LimitReached);
        }
        tables
            .take(&line)
            .map_err(|_| PlaceHoldError::InsufficientStock)?;
        tables.holds.insert(hold.id.clone(), hold.clone());
        Ok(())
    }

    async fn expire_hold(&self, expired: &Hold) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        match tables.holds.get(&expired.id) {
            Some(hold) if hold.expired_at(expired.updated_at) => {}
            _ => return Ok(false),
        }
        tables.holds.insert(expired.id.clone(), expired.clone());
        tables.restore(&expired.product_id, &expired.shards, expired.quantity.get());
        Ok(true)
    }

    async fn expired_holds(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Hold>, StoreError> {
        let tables = self.tables()?;
        let mut due: Vec<Hold> = tables
            .holds
            .values()
            .filter(|h| h.expired_at(now))
            .cloned()
            .collect();
        due.sort_by_key(|h| h.expires_at);
        due.truncate(limit as usize);
        Ok(due)
    }
}

impl WebhookStore for InMemoryStore {
    async fn get_webhook(&self, key: &IdempotencyKey) -> Result<Option<WebhookRecord>, StoreError> {
        Ok(self.tables()?.webhooks.get(key.as_str()).cloned())
    }

    async fn record_webhook(
        &self,
        record: &WebhookRecord,
        pending: Option<&PendingSettlement>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        if tables
            .webhooks
            .contains_key(record.idempotency_key.as_str())
        {
            return Ok(false);
        }
        tables
            .webhooks
            .insert(record.idempotency_key.as_str().to_owned(), record.clone());
        if let Some(pending) = pending {
            tables
                .pending
                .entry(pending.order_id.clone())
                .or_insert_with(|| pending.clone());
        }
        Ok(true)
    }

    async fn pending_settlement(
        &self,
        order_id: &OrderId,
    ) -> Result<Option<PendingSettlement>, StoreError> {
        Ok(self.tables()?.pending.get(order_id).cloned())
    }
}

/// Every stock move here is one step under the tables' lock, so no writer ever stops half-way;
/// only the take marks of orders from items stay until their message is sent (as the DynamoDB
/// adapter's journal entries do).
impl StockJournal for InMemoryStore {
    async fn sweep_stock_journal(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<JournalSweep, StoreError> {
        let mut tables = self.tables()?;
        let mut sweep = JournalSweep::default();
        let stale: Vec<String> = tables
            .marks
            .iter()
            .filter(|(_, mark)| mark.placed_at < older_than)
            .map(|(token, _)| token.clone())
            .collect();
        for token in stale {
            let TakeMark {
                order_id,
                placed_at,
                shards,
            } = tables.marks[&token].clone();
            match tables.orders.get(&order_id) {
                Some(order) if order.status == OrderStatus::Pending => {
                    sweep.unsent.push(UnsentOrder {
                        order_id,
                        user_id: order.user_id.clone(),
                        placed_at,
                        taken: StockTaken { token, shards },
                    });
                }
                _ => {
                    tables.marks.remove(&token);
                    sweep.released += 1;
                }
            }
        }
        Ok(sweep)
    }
}

impl UnsettledOrders for InMemoryStore {
    async fn unsettled(
        &self,
        status: OrderStatus,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        let tables = self.tables()?;
        let mut found: Vec<Order> = tables
            .orders
            .values()
            .filter(|o| {
                tables.indexed.contains(&o.id) && o.status == status && o.updated_at < before
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
        found.truncate(limit as usize);
        Ok(found)
    }
}

impl ConnectionStore for InMemoryStore {
    async fn save_connection(
        &self,
        connection: &Connection,
        _ttl: Duration,
    ) -> Result<(), StoreError> {
        self.tables()?
            .connections
            .insert(connection.connection_id.clone(), connection.user_id.clone());
        Ok(())
    }

    async fn delete_connection(&self, connection_id: &str) -> Result<(), StoreError> {
        self.tables()?.connections.remove(connection_id);
        Ok(())
    }

    async fn connections_of(&self, user_id: &UserId) -> Result<Vec<String>, StoreError> {
        let tables = self.tables()?;
        let mut ids: Vec<String> = tables
            .connections
            .iter()
            .filter(|(_, owner)| *owner == user_id)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

impl InMemoryStore {
    /// Ids of every stored connection (test assertions).
    pub fn connection_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .tables
            .lock()
            .unwrap()
            .connections
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// Inserts an order directly, as if placed from a hold and never enqueued: it is in the
    /// `unsettled-orders` index (test arrangement).
    pub fn insert_order(&self, order: Order) {
        let mut tables = self.tables.lock().unwrap();
        tables.indexed.insert(order.id.clone());
        tables.orders.insert(order.id.clone(), order);
    }

    /// Inserts an order directly, as if placed from items by a writer that stopped before it
    /// sent the message: its take is still marked (test arrangement).
    pub fn insert_unsent_order(&self, order: Order) {
        let mut tables = self.tables.lock().unwrap();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mark = TakeMark {
            order_id: order.id.clone(),
            placed_at: order.created_at,
            shards: Vec::new(),
        };
        tables.marks.insert(token, mark);
        tables.orders.insert(order.id.clone(), order);
    }

    /// Take marks not released yet (orders whose message is not known sent).
    pub fn marked_takes(&self) -> usize {
        self.tables.lock().unwrap().marks.len()
    }
}
