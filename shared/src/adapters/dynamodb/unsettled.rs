//! The reconciler's query: orders left PENDING or PROCESSING, read from the sparse `unsettled`
//! index one shard at a time and merged oldest first.
//!
//! Only unsettled orders carry `status_shard` (`<STATUS>#<n>`, n < [`UNSETTLED_SHARDS`]), so the
//! index holds the few orders in flight, and its writes spread over every shard instead of one
//! partition per status. The price is one Query per shard and status on each run (once a minute),
//! about half a read unit each when a shard has nothing old. Each shard is read a small page at a
//! time and only read on when its orders are the oldest left, so a run reads little more than
//! `limit` orders even with a backlog on every shard.

use std::collections::VecDeque;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};

use super::index::UNSETTLED;
use super::items::{self, Item, UNSETTLED_SHARDS};
use super::{DynamoStore, sdk_failure};
use crate::domain::{Order, OrderStatus};
use crate::ports::{StoreError, UnsettledOrders};

/// Shards queried at once in the first round: 512 sequential Queries would take seconds in AWS; a
/// bounded number in flight keeps a 128 MB function from opening 512 connections.
const SHARD_QUERIES_IN_FLIGHT: usize = 16;

/// One shard of one status as the merge reads it.
struct ShardReader {
    /// `status_shard`, the index's hash key.
    key: AttributeValue,
    /// Orders read and not yet taken, oldest first (the index's sort order).
    orders: VecDeque<Order>,
    /// Where the next page starts (`LastEvaluatedKey`); `None` once the shard has no more.
    next: Option<Item>,
    /// Orders asked for by the next read. Doubled at each read on, so a shard holding most of a
    /// backlog takes a few Queries, not one per page of the first size.
    page: u32,
}

impl ShardReader {
    fn new(status: OrderStatus, n: u32, page: u32) -> Self {
        Self {
            key: items::unsettled_shard(status, n),
            orders: VecDeque::new(),
            next: None,
            page,
        }
    }
}

impl DynamoStore {
    /// Reads the next page of `reader`'s shard: up to `reader.page` orders changed before `before`.
    async fn read_shard(
        &self,
        reader: &mut ShardReader,
        before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.orders)
            .index_name(UNSETTLED)
            .key_condition_expression("status_shard = :shard AND updated_at < :before")
            .expression_attribute_values(":shard", reader.key.clone())
            .expression_attribute_values(":before", items::timestamp(before))
            .set_exclusive_start_key(reader.next.take())
            .limit(i32::try_from(reader.page).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_failure)?;
        reader.next = output.last_evaluated_key.filter(|key| !key.is_empty());
        for item in output.items.unwrap_or_default() {
            reader.orders.push_back(Order::try_from(item)?);
        }
        Ok(())
    }
}

impl UnsettledOrders for DynamoStore {
    async fn unsettled(
        &self,
        status: OrderStatus,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Every shard's first page together covers `limit` orders when the backlog is spread
        // evenly, as the hash spreads it.
        let first_page = limit.div_ceil(UNSETTLED_SHARDS);
        let mut readers: Vec<ShardReader> = stream::iter(0..UNSETTLED_SHARDS)
            .map(|n| async move {
                let mut reader = ShardReader::new(status, n, first_page);
                self.read_shard(&mut reader, before).await.map(|()| reader)
            })
            .buffered(SHARD_QUERIES_IN_FLIGHT)
            .try_collect()
            .await?;

        let mut found = Vec::with_capacity(limit as usize);
        while found.len() < limit as usize {
            let missing = limit - found.len() as u32;
            // A shard whose orders were all taken but which has more must be read on before the
            // next pick: its next order may be the oldest left.
            for reader in &mut readers {
                while reader.orders.is_empty() && reader.next.is_some() {
                    reader.page = reader.page.saturating_mul(2).min(missing);
                    self.read_shard(reader, before).await?;
                }
            }
            let oldest = readers
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.orders.front().map(|o| (o.updated_at, o.id.as_str(), i)))
                .min()
                .map(|(_, _, i)| i);
            let Some(order) = oldest.and_then(|i| readers[i].orders.pop_front()) else {
                break;
            };
            // A settled order still on a shard was settled by a writer that did not remove
            // `status_shard` (a function still running the code from before this index, during
            // the deploy that added it): not the reconciler's.
            if order.status == status {
                found.push(order);
            } else {
                tracing::warn!(order_id = %order.id, status = %order.status, "a settled order is still in the unsettled index");
            }
        }
        Ok(found)
    }
}
