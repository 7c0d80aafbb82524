//! Products, stock shards, locks and the stock journal in the in-memory store: the catalog, an
//! order's all-or-nothing stock take and its undoing, lock leases, and the marks of takes.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{InMemoryStore, Tables, TakeMark};
use crate::domain::{
    Hold, NewProduct, Order, OrderItem, OrderStatus, Product, ProductId, ProductPatch, StockShard,
    spread,
};
use crate::ports::{
    JournalSweep, Page, PlaceOrderError, ProductCatalog, StockJournal, StockLocks, StockReserver,
    StockTaken, StoreError, UnsentOrder,
};

impl Tables {
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
        let mut asked = HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| asked.insert(*id))
            .filter_map(|id| {
                let (product, _) = tables.products.get(id).filter(|(_, d)| !d)?;
                // As the adapter's batch read: the product item holds only shard 0's units.
                let first = tables.shards.get(id).and_then(|s| s.first()).copied();
                Some(Product {
                    stock: first.unwrap_or(0),
                    ..product.clone()
                })
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
        // A cursor is the last listed product's id: any other text was not handed out here.
        if after
            .as_ref()
            .is_some_and(|a| !tables.products.contains_key(a))
        {
            return Err(StoreError::InvalidCursor);
        }
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
            .take(&lines, order.created_at)
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
        // The key first, as the adapter reports it: a retried checkout is a duplicate.
        if tables.orders.contains_key(&order.id) {
            return Err(PlaceOrderError::DuplicateKey);
        }
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
