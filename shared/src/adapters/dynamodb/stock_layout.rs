//! A product's stock layout: shard 0 in the product item, shards 1..N in items
//! `<product id>#<k>` of the products table (`items::shard_item`). This file reads a layout
//! consistently and rewrites it (create, re-shard, restock, delete), each rewrite one
//! TransactWriteItems over every shard item, so the total is exact whatever orders do meanwhile.
//!
//! A rewrite moves the `layout` version of every item it touches, on condition that each still
//! has the version read; a read that straddles a rewrite sees two versions and reads again.
//! Stock moves as deltas (`SET stock = stock + :d`, never below zero), so units that orders take
//! or give back between the read and the rewrite are neither lost nor counted twice; a shard that
//! goes away must still hold exactly what was read. So that orders stop taking from shards that
//! are about to go, a shrinking re-shard first lowers `stock_shards` (orders pick below it) and
//! records `retiring` = the shard items that still exist (reads still count them), then drains
//! and deletes them.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::items::{self, Item, ProductItem};
use super::{DynamoStore, sdk_failure};
use crate::domain::{ProductId, ProductPatch, StockShard, spread};
use crate::ports::StoreError;
use crate::retry::full_jitter;

/// Reads of a layout before a rewrite that keeps racing the read is reported as unavailable.
const LAYOUT_READS: u32 = 8;
/// Rewrite attempts when orders keep changing a shard that goes away (or a rewrite races).
pub(super) const REWRITE_ATTEMPTS: u32 = 12;

/// A live product item and its units per shard (index = shard).
pub(super) struct Layout {
    pub(super) item: ProductItem,
    pub(super) stocks: Vec<u32>,
}

/// The layout kept changing under a read or a rewrite (a burst of re-shards): retryable.
#[derive(Debug, thiserror::Error)]
#[error("the stock layout of product {0} kept changing; try again")]
pub(super) struct LayoutBusy(pub(super) ProductId);

impl DynamoStore {
    /// The product item; `None` when unknown or a shard item.
    pub(super) async fn product_item(
        &self,
        id: &ProductId,
        consistent: bool,
    ) -> Result<Option<ProductItem>, StoreError> {
        let output = super::with_read_retries(|| {
            self.own_retries
                .get_item()
                .table_name(&self.tables.products)
                .set_key(Some(items::product_key(id)))
                .consistent_read(consistent)
                .send()
        })
        .await
        .map_err(sdk_failure)?;
        output
            .item
            .map(ProductItem::read)
            .transpose()
            .map(Option::flatten)
    }

    /// A live product's layout, read consistently or not; `None` when unknown or deleted.
    pub(super) async fn read_layout(
        &self,
        id: &ProductId,
        consistent: bool,
    ) -> Result<Option<Layout>, StoreError> {
        for _ in 0..LAYOUT_READS {
            let Some(item) = self.product_item(id, consistent).await? else {
                return Ok(None);
            };
            if item.deleted {
                return Ok(None);
            }
            let shards = item.shard_items();
            if shards <= 1 {
                let stocks = vec![item.product.stock];
                return Ok(Some(Layout { item, stocks }));
            }
            let keys = (1..shards)
                .map(|shard| {
                    items::stock_key(&StockShard {
                        product_id: id.clone(),
                        shard,
                    })
                })
                .collect();
            let found: HashMap<String, Item> = self
                .batch_get(&self.tables.products, keys, consistent)
                .await?
                .into_iter()
                .filter_map(|item| Some((item.get("id")?.as_s().ok()?.clone(), item)))
                .collect();
            let mut stocks = vec![item.product.stock];
            for shard in 1..shards {
                let key = StockShard {
                    product_id: id.clone(),
                    shard,
                }
                .to_string();
                match found.get(&key) {
                    Some(shard_item) if items::layout_of(shard_item)? == item.layout => {
                        stocks.push(items::stock_of(shard_item)?);
                    }
                    _ => break,
                }
            }
            if stocks.len() == usize::from(shards) {
                return Ok(Some(Layout { item, stocks }));
            }
            // A rewrite happened between the two reads: read again.
        }
        Err(StoreError::unavailable(LayoutBusy(id.clone())))
    }

    /// Stores a new product with its stock spread over `stock_shards` items, in one transaction.
    pub(super) async fn create_sharded(
        &self,
        product_item: Item,
        id: &ProductId,
        stocks: &[u32],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut actions = vec![put(
            &self.tables.products,
            product_item,
            "attribute_not_exists(id)",
        )?];
        for (shard, stock) in (1u16..).zip(&stocks[1..]) {
            let shard = StockShard {
                product_id: id.clone(),
                shard,
            };
            let item = items::shard_item(&shard, *stock, 0, now);
            actions.push(put(
                &self.tables.products,
                item,
                "attribute_not_exists(id)",
            )?);
        }
        self.transact(actions)
            .await
            .map_err(super::transactions::Refused::into_store_error)
    }

    /// Re-shards and/or restocks a product: `patch.stock` (or the current total) spread over
    /// `patch.stock_shards` (or the current count), with the patch's name and price, in one
    /// transaction. `Ok(None)` when the product is unknown or deleted.
    pub(super) async fn rewrite_layout(
        &self,
        id: &ProductId,
        patch: &ProductPatch,
        now: DateTime<Utc>,
    ) -> Result<Option<()>, StoreError> {
        for attempt in 0..REWRITE_ATTEMPTS {
            if attempt > 0 {
                crate::metrics::count(crate::metrics::BusinessMetric::Retries);
                tokio::time::sleep(full_jitter(
                    Duration::from_millis(5),
                    attempt,
                    Duration::from_millis(200),
                ))
                .await;
            }
            let Some(layout) = self.read_layout(id, true).await? else {
                return Ok(None);
            };
            let to = patch
                .stock_shards
                .unwrap_or(layout.item.product.stock_shards);
            let retiring = to < layout.item.product.stock_shards;
            let actions = if retiring {
                // Shrinking: first stop orders from picking the shards that go, then drain them.
                vec![self.retire_shards(id, &layout, to)?]
            } else {
                self.rewrite_actions(id, &layout, patch, now)?
            };
            match self.transact(actions).await {
                Ok(()) if retiring => {}
                Ok(()) => return Ok(Some(())),
                // A condition (an order on a shard that goes away, a concurrent rewrite or
                // delete) or a conflict: read the layout again.
                Err(refused) if !refused.reasons.is_empty() || refused.is_conflict() => {
                    tracing::debug!(product_id = %id, attempt, "stock layout rewrite raced; reading again");
                }
                Err(refused) => return Err(refused.into_store_error()),
            }
        }
        Err(StoreError::unavailable(LayoutBusy(id.clone())))
    }

    /// `stock_shards = :to` and `retiring` = the shard items that exist, on the product item alone.
    fn retire_shards(
        &self,
        id: &ProductId,
        layout: &Layout,
        to: u16,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.products)
            .set_key(Some(items::product_key(id)))
            .update_expression("SET stock_shards = :to, retiring = :items")
            .condition_expression(
                "attribute_exists(id) AND attribute_not_exists(deleted_at) \
                 AND stock_shards = :from AND (attribute_not_exists(layout) OR layout = :version)",
            )
            .expression_attribute_values(":to", items::number(to))
            .expression_attribute_values(":items", items::number(layout.stocks.len()))
            .expression_attribute_values(":from", items::number(layout.item.product.stock_shards))
            .expression_attribute_values(":version", items::number(layout.item.layout))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn rewrite_actions(
        &self,
        id: &ProductId,
        layout: &Layout,
        patch: &ProductPatch,
        now: DateTime<Utc>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let table = &self.tables.products;
        let current: u32 = layout.stocks.iter().sum();
        let from = layout.stocks.len();
        let to = usize::from(
            patch
                .stock_shards
                .unwrap_or(layout.item.product.stock_shards),
        );
        let targets = spread(
            patch.stock.unwrap_or(current),
            u16::try_from(to).unwrap_or(1),
        );
        let version = layout.item.layout;
        let mut actions = Vec::with_capacity(from.max(to));

        // Shard 0, the product item: name and price too, and the new shard count.
        let delta = i64::from(targets[0]) - i64::from(layout.stocks[0]);
        let mut set = vec![
            "stock = stock + :d",
            "stock_shards = :to",
            "layout = :next",
            "updated_at = :now",
        ];
        let remove = if layout.item.retiring > 0 {
            " REMOVE retiring"
        } else {
            ""
        };
        let mut first = Update::builder()
            .table_name(table)
            .set_key(Some(items::product_key(id)))
            .condition_expression(
                "attribute_exists(id) AND attribute_not_exists(deleted_at) AND stock >= :floor \
                 AND (attribute_not_exists(stock_shards) OR stock_shards = :from) \
                 AND (attribute_not_exists(layout) OR layout = :version)",
            )
            .expression_attribute_values(":d", items::number(delta))
            .expression_attribute_values(":floor", items::number((-delta).max(0)))
            .expression_attribute_values(":to", items::number(to))
            .expression_attribute_values(":from", items::number(layout.item.product.stock_shards))
            .expression_attribute_values(":next", items::number(version + 1))
            .expression_attribute_values(":version", items::number(version))
            .expression_attribute_values(":now", items::timestamp(now));
        if let Some(name) = &patch.name {
            set.push("#name = :name");
            first = first
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", items::string(name));
        }
        if let Some(price) = patch.price {
            set.push("price = :price");
            first = first.expression_attribute_values(":price", items::money(price));
        }
        let first = first
            .update_expression(format!("SET {}{remove}", set.join(", ")))
            .build()
            .map_err(StoreError::unavailable)?;
        actions.push(TransactWriteItem::builder().update(first).build());

        let key = |shard: usize| -> Result<StockShard, StoreError> {
            Ok(StockShard {
                product_id: id.clone(),
                shard: u16::try_from(shard).map_err(StoreError::unavailable)?,
            })
        };
        // Kept: moved by the difference, stamped with the new version.
        let kept = targets.iter().zip(&layout.stocks).enumerate().skip(1);
        for (shard, (target, read)) in kept {
            let delta = i64::from(*target) - i64::from(*read);
            let update = Update::builder()
                .table_name(table)
                .set_key(Some(items::stock_key(&key(shard)?)))
                .update_expression("SET stock = stock + :d, layout = :next, updated_at = :now")
                .condition_expression(
                    "attribute_exists(id) AND stock >= :floor AND layout = :version",
                )
                .expression_attribute_values(":d", items::number(delta))
                .expression_attribute_values(":floor", items::number((-delta).max(0)))
                .expression_attribute_values(":next", items::number(version + 1))
                .expression_attribute_values(":version", items::number(version))
                .expression_attribute_values(":now", items::timestamp(now))
                .build()
                .map_err(StoreError::unavailable)?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        // New.
        for (shard, target) in targets.iter().enumerate().skip(from) {
            let item = items::shard_item(&key(shard)?, *target, version + 1, now);
            actions.push(put(table, item, "attribute_not_exists(id)")?);
        }
        // Gone: each must hold exactly what was read, which the kept shards now carry.
        for (shard, read) in layout.stocks.iter().enumerate().skip(to) {
            let delete = Delete::builder()
                .table_name(table)
                .set_key(Some(items::stock_key(&key(shard)?)))
                .condition_expression("stock = :read AND layout = :version")
                .expression_attribute_values(":read", items::number(*read))
                .expression_attribute_values(":version", items::number(version))
                .build()
                .map_err(StoreError::unavailable)?;
            actions.push(TransactWriteItem::builder().delete(delete).build());
        }
        Ok(actions)
    }

    /// Soft-deletes a sharded product: `deleted_at` on the product item and on every shard item
    /// (an order taking from a shard checks the shard's own), in one transaction. `false` when
    /// the product is unknown or already deleted.
    pub(super) async fn delete_sharded(
        &self,
        layout: &Layout,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let table = &self.tables.products;
        let id = &layout.item.product.id;
        let version = layout.item.layout;
        let mut actions = Vec::with_capacity(layout.stocks.len());
        for shard in 0..layout.item.shard_items() {
            let key = StockShard {
                product_id: id.clone(),
                shard,
            };
            let update = Update::builder()
                .table_name(table)
                .set_key(Some(items::stock_key(&key)))
                .update_expression("SET deleted_at = :now")
                .condition_expression(
                    "attribute_exists(id) AND attribute_not_exists(deleted_at) \
                     AND (attribute_not_exists(layout) OR layout = :version)",
                )
                .expression_attribute_values(":now", items::timestamp(now))
                .expression_attribute_values(":version", items::number(version))
                .build()
                .map_err(StoreError::unavailable)?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        match self.transact(actions).await {
            Ok(()) => Ok(true),
            Err(refused) if !refused.reasons.is_empty() || refused.is_conflict() => Ok(false),
            Err(refused) => Err(refused.into_store_error()),
        }
    }
}

fn put(table: &str, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .build()
        .map_err(StoreError::unavailable)?;
    Ok(TransactWriteItem::builder().put(put).build())
}
