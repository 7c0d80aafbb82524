//! Orders in the in-memory store: reads, the payment moves conditional on the status (a FAILED
//! order's stock back), and the `unsettled-orders` index query.

use chrono::{DateTime, Utc};

use super::InMemoryStore;
use crate::domain::{Order, OrderId, OrderStatus};
use crate::ports::{OrderQuery, OrderReader, OrderSettler, Page, StoreError, UnsettledOrders};

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
