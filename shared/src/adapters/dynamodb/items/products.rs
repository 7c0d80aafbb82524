//! The products table's items: the product, its stock shard items (`<product id>#<k>`), their
//! layout version and units, and the products cursor.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Fields, Item, money, number, string, timestamp};
use crate::domain::{Product, ProductId, StockShard};
use crate::ports::StoreError;

/// Key attributes of a products-table `LastEvaluatedKey`, which is all a products cursor holds.
pub(in crate::adapters::dynamodb) const PRODUCT_CURSOR_KEY: &[&str] = &["id"];

/// Key of a product.
pub(in crate::adapters::dynamodb) fn product_key(id: &ProductId) -> Item {
    HashMap::from([("id".to_owned(), string(id.as_str()))])
}

/// Key of a stock shard's item: the product item for shard 0, `<product id>#<k>` for the others.
pub(in crate::adapters::dynamodb) fn stock_key(shard: &StockShard) -> Item {
    HashMap::from([("id".to_owned(), string(shard.to_string()))])
}

/// A stock shard's own item (shard k > 0): its units, the product it belongs to (`shard_of`, which
/// also keeps it out of product reads and listings) and the product's `layout` version.
pub(in crate::adapters::dynamodb) fn shard_item(
    shard: &StockShard,
    stock: u32,
    layout: u64,
    now: DateTime<Utc>,
) -> Item {
    let mut item = stock_key(shard);
    item.extend([
        ("shard_of".to_owned(), string(shard.product_id.as_str())),
        ("stock".to_owned(), number(stock)),
        ("layout".to_owned(), number(layout)),
        ("updated_at".to_owned(), timestamp(now)),
    ]);
    item
}

/// A new product item.
pub(in crate::adapters::dynamodb) fn product_item(product: &Product) -> Item {
    HashMap::from([
        ("id".to_owned(), string(product.id.as_str())),
        ("name".to_owned(), string(&product.name)),
        ("price".to_owned(), money(product.price)),
        ("stock".to_owned(), number(product.stock)),
        ("stock_shards".to_owned(), number(product.stock_shards)),
        ("created_at".to_owned(), timestamp(product.created_at)),
        ("updated_at".to_owned(), timestamp(product.updated_at)),
    ])
}

/// The `ExclusiveStartKey` a products cursor's values stand for: its `id` must be a product id a
/// client could send ([`ProductId::parse`]), else the cursor is invalid.
pub(in crate::adapters::dynamodb) fn product_start_key(
    values: &HashMap<String, String>,
) -> Result<Item, StoreError> {
    let id = values
        .get("id")
        .and_then(|id| ProductId::parse(id).ok())
        .ok_or(StoreError::InvalidCursor)?;
    Ok(product_key(&id))
}

/// A stored product and whether it was soft-deleted (reads treat a deleted product as absent).
/// `product.stock` is the product item's own units: shard 0's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::adapters::dynamodb) struct ProductItem {
    /// The product as the domain sees it.
    pub(in crate::adapters::dynamodb) product: Product,
    /// Whether `deleted_at` is set.
    pub(in crate::adapters::dynamodb) deleted: bool,
    /// The version of the stock layout: a re-shard or a restock of a sharded product moves it on
    /// every shard item at once, so a read that straddles one sees two versions.
    pub(in crate::adapters::dynamodb) layout: u64,
    /// While a shrinking re-shard drains them: how many shard items still exist (orders no
    /// longer pick the shards at or past `stock_shards`, but their units still count).
    pub(in crate::adapters::dynamodb) retiring: u16,
}

impl ProductItem {
    /// How many shard items exist: the shards orders pick from, and any still being drained.
    pub(in crate::adapters::dynamodb) fn shard_items(&self) -> u16 {
        self.product.stock_shards.max(self.retiring).max(1)
    }

    /// The product unless it was deleted.
    pub(in crate::adapters::dynamodb) fn live(self) -> Option<Product> {
        (!self.deleted).then_some(self.product)
    }

    /// The item as a product, `None` for a shard item (not a product of its own).
    pub(in crate::adapters::dynamodb) fn read(item: Item) -> Result<Option<Self>, StoreError> {
        if item.contains_key("shard_of") {
            return Ok(None);
        }
        Self::try_from(item).map(Some)
    }
}

impl TryFrom<Item> for ProductItem {
    type Error = StoreError;

    fn try_from(item: Item) -> Result<Self, StoreError> {
        let fields = Fields::new(&item, "product");
        Ok(ProductItem {
            product: Product {
                id: ProductId::new(fields.string("id")?),
                name: fields.string("name")?.to_owned(),
                price: fields.money("price")?,
                stock: fields.number("stock")?,
                // Products stored before shards existed have one.
                stock_shards: match item.get("stock_shards") {
                    Some(_) => fields.number("stock_shards")?,
                    None => 1,
                },
                created_at: fields.time("created_at")?,
                updated_at: fields.time("updated_at")?,
            },
            deleted: item.contains_key("deleted_at"),
            layout: layout_of(&item)?,
            retiring: match item.get("retiring") {
                Some(_) => fields.number("retiring")?,
                None => 0,
            },
        })
    }
}

/// A product or shard item's `layout` version (0 until its first re-shard).
pub(in crate::adapters::dynamodb) fn layout_of(item: &Item) -> Result<u64, StoreError> {
    match item.get("layout") {
        Some(_) => Fields::new(item, "stock item").number("layout"),
        None => Ok(0),
    }
}

/// A stock item's units.
pub(in crate::adapters::dynamodb) fn stock_of(item: &Item) -> Result<u32, StoreError> {
    Fields::new(item, "stock item").number("stock")
}

#[cfg(test)]
mod tests {
    use super::super::at;
    use super::*;
    use crate::domain::Money;

    #[test]
    fn a_products_cursor_id_must_be_a_product_id() {
        let id = |id: &str| HashMap::from([("id".to_owned(), id.to_owned())]);
        assert!(product_start_key(&id("p1")).is_ok());
        assert!(product_start_key(&id(&"p".repeat(2049))).is_err());
        assert!(product_start_key(&id("a\nb")).is_err());
    }

    #[test]
    fn product_with_a_missing_or_mistyped_attribute_is_corrupt() {
        let product = Product {
            id: ProductId::new("p"),
            name: "Mug".into(),
            price: Money::parse("9.99").unwrap(),
            stock: 3,
            stock_shards: 1,
            created_at: at(0),
            updated_at: at(0),
        };
        let mut item = product_item(&product);
        assert_eq!(
            ProductItem::try_from(item.clone()).unwrap().live(),
            Some(product)
        );
        item.insert("stock".into(), string("3"));
        assert!(matches!(
            ProductItem::try_from(item.clone()),
            Err(StoreError::Corrupt(_))
        ));
        item.remove("stock");
        assert!(matches!(
            ProductItem::try_from(item),
            Err(StoreError::Corrupt(_))
        ));
    }
}
