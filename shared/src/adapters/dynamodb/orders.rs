//! Order reads: one order by id, and a user's orders newest first through the `user-orders` index.

use super::index::USER_ORDERS as USER_ORDERS_INDEX;
use super::items::{self, Item};
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
        // so (`next_cursor: null`). Query's Limit counts items evaluated before the status filter;
        // asking for what is missing never reads more than one item past the page, and the cursor
        // is the last returned order's own index key, so nothing is skipped.
        let mut orders: Vec<(Order, Item)> = Vec::with_capacity(limit + 1);
        loop {
            let remaining = i32::try_from(limit + 1 - orders.len()).unwrap_or(i32::MAX);
            let mut request = self
                .client
                .query()
                .table_name(&self.tables.orders)
                .index_name(USER_ORDERS_INDEX)
                .key_condition_expression("user_id = :u")
                .expression_attribute_values(":u", items::string(query.user_id.as_str()))
                .scan_index_forward(false)
                .limit(remaining)
                .set_exclusive_start_key(start.take());
            if let Some(status) = query.status {
                request = request
                    .filter_expression("#status = :s")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":s", items::status(status));
            }
            let output = request.send().await.map_err(sdk_failure)?;
            for item in output.items.unwrap_or_default() {
                let key = items::cursor_key(&item, items::USER_ORDERS_CURSOR_KEY);
                orders.push((Order::try_from(item)?, key));
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
