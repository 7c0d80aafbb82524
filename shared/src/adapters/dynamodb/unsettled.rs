//! The reconciler's query: orders left PENDING or PROCESSING, read from the sparse
//! `unsettled-orders` index one shard at a time and merged oldest placed first.
//!
//! Only unsettled orders carry `unsettled_shard` (`<n>`, n < [`UNSETTLED_SHARDS`], set at
//! placement and removed at settlement), so the index holds the few orders in flight, and its
//! writes spread over every shard. It projects keys only and is sorted by `created_at`, which
//! never changes, so the claim writes no index entry; the price is that the orders found are read
//! from the table (consistently, in one BatchGetItem per page) to learn their status and last
//! change. A run costs one Query per shard and status (once a minute), about half a read unit
//! each when a shard has nothing old. Each shard is read a small page at a time and only read on
//! when its orders are the oldest left, so a run reads little more than `limit` orders even with
//! a backlog on every shard.

use std::collections::VecDeque;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};

use super::index::UNSETTLED;
use super::items::{self, Item, UNSETTLED_SHARD, UNSETTLED_SHARDS};
use super::{DynamoStore, sdk_failure};
use crate::domain::{Order, OrderStatus};
use crate::ports::{StoreError, UnsettledOrders};

/// Shards queried at once in the first round: 512 sequential Queries would take seconds in AWS; a
/// bounded number in flight keeps a 128 MB function from opening 512 connections.
const SHARD_QUERIES_IN_FLIGHT: usize = 16;

/// One shard of one status as the merge reads it.
struct ShardReader {
    /// The status wanted.
    status: OrderStatus,
    /// `unsettled_shard`, the index's hash key.
    key: AttributeValue,
    /// Orders of the status wanted read and not yet taken, oldest placed first (the index's sort
    /// order).
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
            status,
            key: items::unsettled_shard(n),
            orders: VecDeque::new(),
            next: None,
            page,
        }
    }
}

impl DynamoStore {
    /// Reads the next page of `reader`'s shard: up to `reader.page` orders placed before `before`,
    /// of which those in the status wanted and unchanged since before `before` are kept.
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
            .key_condition_expression("#shard = :shard AND created_at < :before")
            .expression_attribute_names("#shard", UNSETTLED_SHARD)
            .expression_attribute_values(":shard", reader.key.clone())
            .expression_attribute_values(":before", items::timestamp(before))
            .set_exclusive_start_key(reader.next.take())
            .limit(i32::try_from(reader.page).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_failure)?;
        reader.next = output.last_evaluated_key.filter(|key| !key.is_empty());
        let entries = output.items.unwrap_or_default();
        let mut orders: Vec<Order> = self
            .orders_of_entries(&entries, true)
            .await?
            .into_iter()
            .map(|(order, _)| order)
            .filter(|order| order.status == reader.status && order.updated_at < before)
            .collect();
        // The index's order, with ties between orders of one millisecond broken by id.
        orders.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
        reader.orders.extend(orders);
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
                .filter_map(|(i, r)| r.orders.front().map(|o| (o.created_at, o.id.as_str(), i)))
                .min()
                .map(|(_, _, i)| i);
            let Some(order) = oldest.and_then(|i| readers[i].orders.pop_front()) else {
                break;
            };
            found.push(order);
        }
        Ok(found)
    }
}
