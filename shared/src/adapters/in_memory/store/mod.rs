//! Every store port over one mutex-guarded set of maps, so a move across aggregates is all or
//! nothing. This file holds the maps, the stock moves they share and the test controls.

mod catalog;
mod connections;
mod holds;
mod idempotency;
mod orders;
mod rate_limits;
mod webhooks;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};

use super::SwitchedOff;
use crate::domain::{
    Hold, HoldId, Order, OrderId, OrderStatus, Product, ProductId, ShardSplit, StockShard, UserId,
    spread,
};
use crate::ports::{PendingSettlement, Reachable, StoreError, WebhookRecord};

/// Every aggregate's maps, under the store's one mutex so a move across them is all or nothing.
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

    /// Takes every line's units from its shards, all or nothing (see [`Tables::check_take`]);
    /// a take from shard 0 (the product item in DynamoDB) is the product's last change, at `now`.
    fn take(
        &mut self,
        lines: &[(&ProductId, &ShardSplit, u32)],
        now: DateTime<Utc>,
    ) -> Result<(), ProductId> {
        self.check_take(lines)?;
        for (product_id, split, quantity) in lines {
            let stocks = self.shards.get_mut(*product_id).expect("checked above");
            let parts = split.parts(*quantity);
            for (shard, units) in &parts {
                stocks[usize::from(*shard)] -= units;
            }
            self.sum_up(product_id);
            if let Some((product, _)) = self.products.get_mut(*product_id)
                && parts.iter().any(|(shard, _)| *shard == 0)
            {
                product.updated_at = now;
            }
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
}

/// Every store port over one mutex-guarded set of maps.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    tables: Mutex<Tables>,
    down: AtomicBool,
    holds_busy: AtomicBool,
}

impl InMemoryStore {
    /// Makes every call fail as if DynamoDB were unreachable (or reachable again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Makes every hold's transaction answer busy, as a throttled or contended shard does (or
    /// stops it).
    pub fn set_holds_busy(&self, busy: bool) {
        self.holds_busy.store(busy, Ordering::SeqCst);
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

impl Reachable for InMemoryStore {
    async fn unreachable(&self) -> Vec<&'static str> {
        if self.down.load(Ordering::SeqCst) {
            crate::function::Table::ALL
                .iter()
                .map(|table| table.default_name())
                .collect()
        } else {
            Vec::new()
        }
    }
}
