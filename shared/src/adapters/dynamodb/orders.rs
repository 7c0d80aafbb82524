//! Order reads: one order by id, and a user's orders newest first through the `user-orders` index.

use super::index::USER_ORDERS as USER_ORDERS_INDEX;
use super::{DynamoStore, cursor, items};
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
            .map_err(StoreError::unavailable)?;
        output.item.map(Order::try_from).transpose()
    }

    async fn list_orders(&self, query: &OrderQuery) -> Result<Page<Order>, StoreError> {
        let limit = query.limit.max(1) as usize;
        let mut start = match &query.cursor {
            Some(text) => {
                let key = cursor::decode(text, items::USER_ORDERS_CURSOR_KEY)?;
                // The cursor is client-held: without this check it would page through another
                // user's partition of the index.
                if items::cursor_owner(&key) != Some(query.user_id.as_str()) {
                    return Err(StoreError::InvalidCursor);
                }
                Some(key)
            }
            None => None,
        };
        let mut orders = Vec::with_capacity(limit);
        // Query's Limit counts items evaluated before the status filter: asking for exactly what is
        // missing never reads past the page, so the last key is a cursor without gaps.
        loop {
            let remaining = i32::try_from(limit - orders.len()).unwrap_or(i32::MAX);
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
            let output = request.send().await.map_err(StoreError::unavailable)?;
            for item in output.items.unwrap_or_default() {
                orders.push(Order::try_from(item)?);
            }
            start = output.last_evaluated_key;
            if orders.len() >= limit || start.is_none() {
                break;
            }
        }
        let next_cursor = start.as_ref().map(cursor::encode).transpose()?;
        Ok(Page {
            items: orders,
            next_cursor,
        })
    }
}
