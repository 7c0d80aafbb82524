//! Order reads: one order by id, and a user's orders newest first through the keys-only
//! `user-orders-keys` index.

use std::collections::HashMap;

use super::index::USER_ORDERS as USER_ORDERS_INDEX;
use super::items::{self, Item};
use super::products::BATCH_GET_KEYS;
use super::{DynamoStore, cursor, sdk_failure};
use crate::domain::{Order, OrderId};
use crate::ports::{OrderQuery, OrderReader, Page, StoreError};

impl OrderReader for DynamoStore {
    async fn get_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.orders)
            .set_key(Some(items::order_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_failure)?;
        output.item.map(Order::try_from).transpose()
    }

    async fn list_orders(&self, query: &OrderQuery) -> Result<Page<Order>, StoreError> {
        let limit = query.limit.max(1) as usize;
        let mut start = match &query.cursor {
            Some(text) => Some(items::user_orders_start_key(
                &cursor::decode(text, items::USER_ORDERS_CURSOR_KEY)?,
                &query.user_id,
            )?),
            None => None,
        };
        // One order more than the page is read, so a page that ends at the user's last order says
        // so (`next_cursor: null`). The index holds keys only (a status move writes no index
        // entry), so each page of keys is read from the table in one BatchGetItem (eventually
        // consistent, as the index itself is) and filtered on status here; asking for what is
        // missing never reads more than one order past the page, and the cursor is the last
        // returned order's own index key, so nothing is skipped.
        let mut orders: Vec<(Order, Item)> = Vec::with_capacity(limit + 1);
        loop {
            let remaining = i32::try_from(limit + 1 - orders.len()).unwrap_or(i32::MAX);
            let output = self
                .client
                .query()
                .table_name(&self.tables.orders)
                .index_name(USER_ORDERS_INDEX)
                .key_condition_expression("user_id = :u")
                .expression_attribute_values(":u", items::string(query.user_id.as_str()))
                .scan_index_forward(false)
                .limit(remaining)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_failure)?;
            let entries = output.items.unwrap_or_default();
            for (order, entry) in self.orders_of_entries(&entries, false).await? {
                if query.status.is_none_or(|status| order.status == status) {
                    orders.push((
                        order,
                        items::cursor_key(entry, items::USER_ORDERS_CURSOR_KEY),
                    ));
                }
            }
            start = output.last_evaluated_key;
            if orders.len() > limit || start.is_none() {
                break;
            }
        }
        let next_cursor = if orders.len() > limit {
            orders.truncate(limit);
            orders
                .last()
                .map(|(_, key)| cursor::encode(key))
                .transpose()?
        } else {
            None
        };
        Ok(Page {
            items: orders.into_iter().map(|(order, _)| order).collect(),
            next_cursor,
        })
    }
}

impl DynamoStore {
    /// The orders a keys-only index listed, read from the table in BatchGetItems of up to 100, in
    /// the entries' order, each with its entry; an order the index lists but the table no longer
    /// has is skipped.
    pub(super) async fn orders_of_entries<'e>(
        &self,
        entries: &'e [Item],
        consistent: bool,
    ) -> Result<Vec<(Order, &'e Item)>, StoreError> {
        let keys: Vec<Item> = entries
            .iter()
            .map(|entry| items::cursor_key(entry, &["id"]))
            .collect();
        let mut found: HashMap<String, Order> = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            for item in self
                .batch_get(&self.tables.orders, chunk.to_vec(), consistent)
                .await?
            {
                let order = Order::try_from(item)?;
                found.insert(order.id.to_string(), order);
            }
        }
        Ok(entries
            .iter()
            .filter_map(|entry| {
                let id = entry.get("id")?.as_s().ok()?;
                Some((found.remove(id)?, entry))
            })
            .collect())
    }
}
