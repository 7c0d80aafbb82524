//! The product catalogue: reads with live stock (summed over a product's stock shards), admin
//! writes, soft delete. A deleted product keeps its items (with `deleted_at`) so a cancelled order
//! can still restore stock. Sharded layouts are read and rewritten in `stock_layout.rs`.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};

use super::items::{self, Item, ProductItem};
use super::stock_layout::{LayoutBusy, REWRITE_ATTEMPTS};
use super::{DynamoStore, cursor, is_condition_failure, sdk_failure};
use crate::domain::{NewProduct, Product, ProductId, ProductPatch, spread};
use crate::ports::{Page, ProductCatalog, StoreError};

/// BatchGetItem's limit on keys per call.
pub(super) const BATCH_GET_KEYS: usize = 100;
/// Tries of a deleted product's mark while checkouts' transactions hold its key.
const MARK_ATTEMPTS: u32 = 12;
/// Only products that were not soft-deleted exist for readers and admins; the writes that treat
/// the product item as its only stock also require that it still has one shard.
const LIVE_SINGLE_SHARD: &str = "attribute_exists(id) AND attribute_not_exists(deleted_at) \
     AND (attribute_not_exists(stock_shards) OR stock_shards = :one)";
/// Only products that were not soft-deleted exist for readers and admins.
const LIVE_PRODUCT: &str = "attribute_exists(id) AND attribute_not_exists(deleted_at)";

impl ProductCatalog for DynamoStore {
    async fn get_product(&self, id: &ProductId) -> Result<Option<Product>, StoreError> {
        Ok(self.read_layout(id, true).await?.map(|layout| {
            let mut product = layout.item.product;
            product.stock = layout.stocks.iter().sum();
            product
        }))
    }

    async fn shard_stocks(
        &self,
        id: &ProductId,
        consistent: bool,
    ) -> Result<Option<Vec<u32>>, StoreError> {
        Ok(self
            .read_layout(id, consistent)
            .await?
            .map(|layout| layout.stocks))
    }

    async fn get_products(&self, ids: &[ProductId]) -> Result<Vec<Product>, StoreError> {
        // BatchGetItem refuses a request that names the same key twice.
        let mut seen = HashSet::new();
        let unique: Vec<&ProductId> = ids.iter().filter(|id| seen.insert(*id)).collect();
        let mut found = self.price_cache.fresh(&unique);
        let missing: Vec<&ProductId> = unique
            .iter()
            .copied()
            .filter(|id| !found.contains_key(*id))
            .collect();
        for chunk in missing.chunks(BATCH_GET_KEYS) {
            let keys = chunk.iter().map(|id| items::product_key(id)).collect();
            // Eventually consistent (half the read units): an order's price read is the hottest
            // read of a flash sale, and stock and liveness are decided by the transaction.
            for item in self.batch_get(&self.tables.products, keys, false).await? {
                if let Some(product) = ProductItem::read(item)?.and_then(ProductItem::live) {
                    if product.stock_shards > 1 {
                        self.price_cache.keep(&product);
                    }
                    found.insert(product.id.clone(), product);
                }
            }
        }
        // Answer in the order asked, which BatchGetItem does not keep.
        Ok(unique
            .into_iter()
            .filter_map(|id| found.remove(id))
            .collect())
    }

    async fn list_products(
        &self,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<Page<Product>, StoreError> {
        let limit = limit.max(1) as usize;
        let mut start = match cursor {
            Some(text) => Some(items::product_start_key(&cursor::decode(
                &text,
                items::PRODUCT_CURSOR_KEY,
            )?)?),
            None => None,
        };
        // One product more than the page is read, so a page that ends at the last product says
        // so (`next_cursor: null`) instead of handing out a cursor to an empty page. Scan's Limit
        // counts items evaluated before the filter; asking for what is missing never reads more
        // than one item past the page, and the cursor is the last returned product's own key.
        let mut products: Vec<(ProductItem, Item)> = Vec::with_capacity(limit + 1);
        loop {
            let remaining = i32::try_from(limit + 1 - products.len()).unwrap_or(i32::MAX);
            let output = self
                .client
                .scan()
                .table_name(&self.tables.products)
                .filter_expression(
                    "attribute_not_exists(deleted_at) AND attribute_not_exists(shard_of)",
                )
                .limit(remaining)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_failure)?;
            for item in output.items.unwrap_or_default() {
                let key = items::cursor_key(&item, items::PRODUCT_CURSOR_KEY);
                if let Some(product) = ProductItem::read(item)?.filter(|p| !p.deleted) {
                    products.push((product, key));
                }
            }
            start = output.last_evaluated_key;
            if products.len() > limit || start.is_none() {
                break;
            }
        }
        let next_cursor = if products.len() > limit {
            products.truncate(limit);
            products
                .last()
                .map(|(_, key)| cursor::encode(key))
                .transpose()?
        } else {
            None
        };
        // A sharded product's stock is summed over its shards, the page's reads side by side; a
        // product deleted meanwhile leaves the page.
        let summed = futures::future::try_join_all(products.into_iter().map(|(item, _)| async {
            if item.shard_items() <= 1 {
                return Ok(Some(item.product));
            }
            let layout = self.read_layout(&item.product.id, true).await?;
            Ok::<_, StoreError>(layout.map(|layout| Product {
                stock: layout.stocks.iter().sum(),
                ..item.product
            }))
        }))
        .await?;
        let page: Vec<Product> = summed.into_iter().flatten().collect();
        Ok(Page {
            items: page,
            next_cursor,
        })
    }

    async fn create_product(
        &self,
        id: ProductId,
        product: NewProduct,
        now: DateTime<Utc>,
    ) -> Result<Product, StoreError> {
        let product = product.into_product(id, now);
        // A generated id never collides in practice; if it did, overwriting would be the bug.
        if product.stock_shards > 1 {
            let stocks = spread(product.stock, product.stock_shards);
            let first = Product {
                stock: stocks[0],
                ..product.clone()
            };
            self.create_sharded(items::product_item(&first), &product.id, &stocks, now)
                .await?;
            return Ok(product);
        }
        self.client
            .put_item()
            .table_name(&self.tables.products)
            .set_item(Some(items::product_item(&product)))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(product)
    }

    async fn update_product(
        &self,
        id: &ProductId,
        patch: &ProductPatch,
        now: DateTime<Utc>,
    ) -> Result<Option<Product>, StoreError> {
        let touches_stock = patch.stock.is_some() || patch.stock_shards.is_some();
        if !touches_stock {
            return self.update_product_item(id, patch, now, false).await;
        }
        for _ in 0..REWRITE_ATTEMPTS {
            let Some(item) = self.product_item(id, true).await? else {
                return Ok(None);
            };
            if item.deleted {
                return Ok(None);
            }
            let one_shard = item.shard_items() <= 1 && patch.stock_shards.unwrap_or(1) == 1;
            if !one_shard {
                return match self.rewrite_layout(id, patch, now).await? {
                    Some(()) => self.get_product(id).await,
                    None => Ok(None),
                };
            }
            // One shard before and after: the absolute stock on the product item, as always, on
            // condition that no re-shard came in between.
            if let Some(product) = self.update_product_item(id, patch, now, true).await? {
                return Ok(Some(product));
            }
        }
        Err(StoreError::unavailable(LayoutBusy(id.clone())))
    }

    async fn delete_product(&self, id: &ProductId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut marked = false;
        for _ in 0..REWRITE_ATTEMPTS {
            let Some(layout) = self.read_layout(id, true).await? else {
                return Ok(false);
            };
            // First the mark that ends the checkouts of the product's holds (their transactions
            // require it absent), then the product: a checkout that commits after this call began
            // either committed before the mark (it was placed before the deletion) or is refused.
            // A failure between the two leaves the mark; the deletion's retry completes it.
            if !marked {
                self.mark_gone(id, now).await?;
                marked = true;
            }
            if layout.item.shard_items() > 1 {
                if self.delete_sharded(&layout, now).await? {
                    return Ok(true);
                }
                continue;
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.tables.products)
                .set_key(Some(items::product_key(id)))
                .update_expression("SET deleted_at = :now")
                .condition_expression(LIVE_SINGLE_SHARD)
                .expression_attribute_values(":now", items::timestamp(now))
                .expression_attribute_values(":one", items::number(1))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
                // Deleted or re-sharded meanwhile: read again.
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(sdk_failure(e)),
            }
        }
        Err(StoreError::unavailable(LayoutBusy(id.clone())))
    }
}

impl DynamoStore {
    /// The `gone#<product>` mark in the holds table, retried while checkouts' transactions hold
    /// its key (their ConditionCheck): a write meeting one gets TransactionConflict.
    async fn mark_gone(&self, id: &ProductId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut mark = items::product_gone_key(id);
        mark.insert("deleted_at".to_owned(), items::timestamp(now));
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .put_item()
                .table_name(&self.tables.holds)
                .set_item(Some(mark.clone()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) if attempt < MARK_ATTEMPTS && super::is_retryable(&e) => {
                    attempt += 1;
                    crate::metrics::count(crate::metrics::BusinessMetric::Retries);

                    tokio::time::sleep(crate::retry::full_jitter(
                        std::time::Duration::from_millis(10),
                        attempt,
                        std::time::Duration::from_millis(500),
                    ))
                    .await;
                }
                Err(e) => return Err(sdk_failure(e)),
            }
        }
    }
    /// Name, price and (for a one-shard product) absolute stock on the product item; `None` when
    /// the product is unknown or deleted, or, with `single_shard`, no longer has one shard.
    async fn update_product_item(
        &self,
        id: &ProductId,
        patch: &ProductPatch,
        now: DateTime<Utc>,
        single_shard: bool,
    ) -> Result<Option<Product>, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.products)
            .set_key(Some(items::product_key(id)))
            .expression_attribute_values(":now", items::timestamp(now))
            .return_values(ReturnValue::AllNew);
        update = if single_shard {
            update
                .condition_expression(LIVE_SINGLE_SHARD)
                .expression_attribute_values(":one", items::number(1))
        } else {
            update.condition_expression(LIVE_PRODUCT)
        };
        let mut set = vec!["updated_at = :now"];
        if let Some(name) = &patch.name {
            set.push("#name = :name");
            update = update
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", items::string(name));
        }
        if let Some(price) = patch.price {
            set.push("price = :price");
            update = update.expression_attribute_values(":price", items::money(price));
        }
        if let Some(stock) = patch.stock {
            set.push("stock = :stock");
            update = update.expression_attribute_values(":stock", items::number(stock));
        }
        match update
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await
        {
            Ok(output) => match output.attributes {
                Some(item) => {
                    let item = ProductItem::try_from(item)?;
                    if item.shard_items() > 1 {
                        // Name or price of a sharded product: its stock is the sum.
                        return self.get_product(id).await;
                    }
                    Ok(item.live())
                }
                None => Err(StoreError::Corrupt(
                    "UpdateItem with ALL_NEW returned no attributes".into(),
                )),
            },
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(sdk_failure(e)),
        }
    }
}
