//! Every mapping between DynamoDB items and the domain: keys, attribute values and `TryFrom<Item>`.
//! The other files of the adapter build expressions; only this module knows how a value is
//! encoded. The orders table's items are in `orders`.

mod orders;

pub(super) use orders::{
    REQUEST_FINGERPRINT, Stocked, UNSETTLED_SHARD, UNSETTLED_SHARDS, USER_ORDERS_CURSOR_KEY,
    placed_order_item, request_fingerprint, unsettled_shard, user_orders_start_key,
};

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{
    Hold, HoldId, HoldStatus, IdempotencyKey, Money, OrderId, OrderStatus, PaymentOutcome, Product,
    ProductId, Quantity, ShardSplit, StockShard, UserId,
};
use crate::ports::{PendingSettlement, StoreError, WebhookRecord};

/// One item (or key) as the SDK hands it over.
pub(super) type Item = HashMap<String, AttributeValue>;

/// Key attributes of a products-table `LastEvaluatedKey`, which is all a products cursor holds.
pub(super) const PRODUCT_CURSOR_KEY: &[&str] = &["id"];
/// How long a lock item outlives its lease before TTL removes it; the lease, not TTL, decides.
const LOCK_TTL_GRACE_SECONDS: i64 = 60;
/// How long a hold item outlives its window before TTL removes it. Long after the sweeper (which
/// runs every minute) has given its units back: TTL only cleans up, it never decides.
const HOLD_TTL_GRACE_SECONDS: i64 = 24 * 60 * 60;
/// How long webhook answers and pending outcomes are kept: providers retry for up to three days.
const WEBHOOK_TTL_SECONDS: i64 = 7 * 24 * 60 * 60;
/// Partitions of the sparse `active-holds` index: the sweeper queries each; writes spread over them.
/// 32 keeps a 5,000 holds/s flash sale at 312 write units/s per key (docs/scaling.md); holds
/// written with 4 shards before are still among them.
pub(super) const HOLD_SWEEP_SHARDS: u32 = 32;
/// An order's or hold's attribute naming the take (`stock_journal`) that stocked it.
pub(super) const TAKE_TOKEN: &str = "take_token";
/// An order's or hold's attribute naming the restore (`stock_journal`) its status move committed.
pub(super) const RESTORE_TOKEN: &str = "restore_token";

/// A string value.
pub(super) fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number value from anything that prints as a DynamoDB number.
pub(super) fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A money value: the two-place decimal text, so a stored price reads back exactly.
pub(super) fn money(value: Money) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A timestamp as RFC 3339 UTC with milliseconds and `Z`, so stored times sort lexically.
pub(super) fn timestamp(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(timestamp_text(at))
}

/// An order status as stored (`PENDING`, ...).
pub(super) fn status(value: OrderStatus) -> AttributeValue {
    string(value.as_str())
}

fn timestamp_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Key of a product.
pub(super) fn product_key(id: &ProductId) -> Item {
    HashMap::from([("id".to_owned(), string(id.as_str()))])
}

/// Key of an order.
pub(super) fn order_key(id: &OrderId) -> Item {
    HashMap::from([("id".to_owned(), string(id.as_str()))])
}

/// Key of an idempotency record.
pub(super) fn idempotency_key(user_id: &UserId, key: &IdempotencyKey) -> Item {
    HashMap::from([
        ("user_id".to_owned(), string(user_id.as_str())),
        ("idempotency_key".to_owned(), string(key.as_str())),
    ])
}

/// Key of a stock shard's lock item: the product id for shard 0, as before shards existed.
pub(super) fn lock_key(shard: &StockShard) -> Item {
    HashMap::from([("product_id".to_owned(), string(shard.to_string()))])
}

/// Key of a stock shard's item: the product item for shard 0, `<product id>#<k>` for the others.
pub(super) fn stock_key(shard: &StockShard) -> Item {
    HashMap::from([("id".to_owned(), string(shard.to_string()))])
}

/// A stock shard's own item (shard k > 0): its units, the product it belongs to (`shard_of`, which
/// also keeps it out of product reads and listings) and the product's `layout` version.
pub(super) fn shard_item(shard: &StockShard, stock: u32, layout: u64, now: DateTime<Utc>) -> Item {
    let mut item = stock_key(shard);
    item.extend([
        ("shard_of".to_owned(), string(shard.product_id.as_str())),
        ("stock".to_owned(), number(stock)),
        ("layout".to_owned(), number(layout)),
        ("updated_at".to_owned(), timestamp(now)),
    ]);
    item
}

/// A `(shard, units)` split as a map attribute (`{"3": 2, "7": 1}`).
fn shard_split(split: &ShardSplit, quantity: u32) -> AttributeValue {
    AttributeValue::M(
        split
            .parts(quantity)
            .into_iter()
            .map(|(shard, units)| (shard.to_string(), number(units)))
            .collect(),
    )
}

/// The split written by [`shard_split`]; absent means all from shard 0.
fn read_shard_split(item: &Item, what: &'static str) -> Result<ShardSplit, StoreError> {
    let Some(value) = item.get("shards") else {
        return Ok(ShardSplit::default());
    };
    let corrupt = |reason: &str| StoreError::Corrupt(format!("{what}: attribute shards {reason}"));
    let AttributeValue::M(parts) = value else {
        return Err(corrupt("is not a map"));
    };
    let parts = parts
        .iter()
        .map(|(shard, units)| {
            let shard = shard
                .parse::<u16>()
                .map_err(|_| corrupt("has a bad shard"))?;
            let units = match units {
                AttributeValue::N(n) => n.parse::<u32>().map_err(|_| corrupt("has bad units"))?,
                _ => return Err(corrupt("has bad units")),
            };
            Ok((shard, units))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(ShardSplit::from_parts(parts))
}

/// A new product item.
pub(super) fn product_item(product: &Product) -> Item {
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

/// A lock item owned by `token` until `lease_until_ms` (epoch milliseconds).
pub(super) fn lock_item(shard: &StockShard, token: &str, lease_until_ms: i64) -> Item {
    let mut item = lock_key(shard);
    item.extend([
        ("token".to_owned(), string(token)),
        ("lease_until_ms".to_owned(), number(lease_until_ms)),
        (
            "expires_at".to_owned(),
            number(lease_until_ms.div_euclid(1000) + LOCK_TTL_GRACE_SECONDS),
        ),
    ]);
    item
}

/// The key of a hold item.
pub(super) fn hold_key(id: &HoldId) -> Item {
    HashMap::from([("id".to_owned(), string(id.as_str()))])
}

/// The key of a user's count of ACTIVE holds on a product, in the holds table. The user id's
/// length comes first, so no two (user, product) pairs share a key whatever their characters.
pub(super) fn hold_count_key(user_id: &UserId, product_id: &ProductId) -> Item {
    let user = user_id.as_str();
    HashMap::from([(
        "id".to_owned(),
        string(format!("active#{}#{user}#{product_id}", user.len())),
    )])
}

/// Key of the mark a product's deletion leaves in the holds table, which every checkout of a
/// hold of that product requires absent (docs/data-model.md, holds): a cold item, so the hot
/// product item stays out of the checkout's transaction.
pub(super) fn product_gone_key(product_id: &ProductId) -> Item {
    HashMap::from([("id".to_owned(), string(format!("gone#{product_id}")))])
}

/// A shard in `0..shards` for an id: a fixed hash, so every process and every run agrees.
fn stable_shard(id: &str, shards: u32) -> u32 {
    let hash = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    hash % shards
}

/// The sweep shard of an ACTIVE hold: a stable hash of its id.
fn hold_sweep_shard(id: &HoldId) -> String {
    stable_shard(id.as_str(), HOLD_SWEEP_SHARDS).to_string()
}

/// A hold item. While ACTIVE it carries `sweep_shard` and `hold_expires_at`, the keys of the sparse
/// `active-holds` index; a status move away from ACTIVE removes `sweep_shard`.
pub(super) fn hold_item(hold: &Hold) -> Item {
    let mut item = hold_key(&hold.id);
    item.extend([
        ("user_id".to_owned(), string(hold.user_id.as_str())),
        ("product_id".to_owned(), string(hold.product_id.as_str())),
        ("quantity".to_owned(), number(hold.quantity.get())),
        ("unit_price".to_owned(), money(hold.unit_price)),
        ("status".to_owned(), string(hold.status.as_str())),
        ("hold_expires_at".to_owned(), timestamp(hold.expires_at)),
        ("created_at".to_owned(), timestamp(hold.created_at)),
        ("updated_at".to_owned(), timestamp(hold.updated_at)),
        (
            "expires_at".to_owned(),
            number(hold.expires_at.timestamp() + HOLD_TTL_GRACE_SECONDS),
        ),
    ]);
    if hold.status == HoldStatus::Active {
        item.insert("sweep_shard".to_owned(), string(hold_sweep_shard(&hold.id)));
    }
    if let Some(order_id) = &hold.order_id {
        item.insert("order_id".to_owned(), string(order_id.as_str()));
    }
    if !hold.shards.is_first_only() {
        item.insert(
            "shards".to_owned(),
            shard_split(&hold.shards, hold.quantity.get()),
        );
    }
    item
}

/// A hold status as an attribute value.
pub(super) fn hold_status(value: HoldStatus) -> AttributeValue {
    string(value.as_str())
}

/// The key of a webhook answer.
pub(super) fn webhook_key(key: &IdempotencyKey) -> Item {
    HashMap::from([("pk".to_owned(), string(format!("key#{}", key.as_str())))])
}

/// The key of the outcome waiting for an order.
pub(super) fn pending_settlement_key(order_id: &OrderId) -> Item {
    HashMap::from([("pk".to_owned(), string(format!("order#{order_id}")))])
}

/// A webhook answer item.
pub(super) fn webhook_item(record: &WebhookRecord, now: DateTime<Utc>) -> Item {
    let mut item = webhook_key(&record.idempotency_key);
    item.extend([
        ("fingerprint".to_owned(), string(&record.fingerprint)),
        ("order_id".to_owned(), string(record.order_id.as_str())),
        ("created_at".to_owned(), timestamp(now)),
        (
            "expires_at".to_owned(),
            number(now.timestamp() + WEBHOOK_TTL_SECONDS),
        ),
    ]);
    if let Some(order_status) = record.order_status {
        item.insert("order_status".to_owned(), status(order_status));
    }
    item
}

/// The attribute values of a pending outcome (written with `if_not_exists`, so the first stays).
pub(super) fn pending_settlement_values(
    pending: &PendingSettlement,
    now: DateTime<Utc>,
) -> [(&'static str, AttributeValue); 6] {
    let (outcome, reason) = match &pending.outcome {
        PaymentOutcome::Approved => ("success", String::new()),
        PaymentOutcome::Declined { reason } => ("failure", reason.clone()),
    };
    [
        (":order", string(pending.order_id.as_str())),
        (":outcome", string(outcome)),
        (":reason", string(reason)),
        (":key", string(pending.idempotency_key.as_str())),
        (":now", timestamp(now)),
        (":expires", number(now.timestamp() + WEBHOOK_TTL_SECONDS)),
    ]
}

/// The `ExclusiveStartKey` a products cursor's values stand for: its `id` must be a product id a
/// client could send ([`ProductId::parse`]), else the cursor is invalid.
pub(super) fn product_start_key(values: &HashMap<String, String>) -> Result<Item, StoreError> {
    let id = values
        .get("id")
        .and_then(|id| ProductId::parse(id).ok())
        .ok_or(StoreError::InvalidCursor)?;
    Ok(product_key(&id))
}

/// The cursor key of a returned item: its `attributes` (the table key, plus the index key for an
/// index query), which is what `LastEvaluatedKey` would be had the page ended at this item.
pub(super) fn cursor_key(item: &Item, attributes: &[&str]) -> Item {
    attributes
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), item.get(*name)?.clone())))
        .collect()
}

/// A stored product and whether it was soft-deleted (reads treat a deleted product as absent).
/// `product.stock` is the product item's own units: shard 0's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProductItem {
    /// The product as the domain sees it.
    pub(super) product: Product,
    /// Whether `deleted_at` is set.
    pub(super) deleted: bool,
    /// The version of the stock layout: a re-shard or a restock of a sharded product moves it on
    /// every shard item at once, so a read that straddles one sees two versions.
    pub(super) layout: u64,
    /// While a shrinking re-shard drains them: how many shard items still exist (orders no
    /// longer pick the shards at or past `stock_shards`, but their units still count).
    pub(super) retiring: u16,
}

impl ProductItem {
    /// How many shard items exist: the shards orders pick from, and any still being drained.
    pub(super) fn shard_items(&self) -> u16 {
        self.product.stock_shards.max(self.retiring).max(1)
    }

    /// The product unless it was deleted.
    pub(super) fn live(self) -> Option<Product> {
        (!self.deleted).then_some(self.product)
    }

    /// The item as a product, `None` for a shard item (not a product of its own).
    pub(super) fn read(item: Item) -> Result<Option<Self>, StoreError> {
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
pub(super) fn layout_of(item: &Item) -> Result<u64, StoreError> {
    match item.get("layout") {
        Some(_) => Fields::new(item, "stock item").number("layout"),
        None => Ok(0),
    }
}

/// A stock item's units.
pub(super) fn stock_of(item: &Item) -> Result<u32, StoreError> {
    Fields::new(item, "stock item").number("stock")
}

impl TryFrom<Item> for Hold {
    type Error = StoreError;

    fn try_from(item: Item) -> Result<Self, StoreError> {
        let fields = Fields::new(&item, "hold");
        let status = fields.string("status")?;
        let quantity = fields.number::<i64>("quantity")?;
        Ok(Hold {
            id: HoldId::new(fields.string("id")?),
            user_id: UserId::new(fields.string("user_id")?),
            product_id: ProductId::new(fields.string("product_id")?),
            quantity: Quantity::parse(quantity).map_err(|e| fields.corrupt("quantity", e))?,
            unit_price: fields.money("unit_price")?,
            status: HoldStatus::from_str(status).map_err(|e| fields.corrupt("status", e))?,
            expires_at: fields.time("hold_expires_at")?,
            created_at: fields.time("created_at")?,
            updated_at: fields.time("updated_at")?,
            order_id: match item.get("order_id") {
                Some(_) => Some(OrderId::new(fields.string("order_id")?)),
                None => None,
            },
            shards: read_shard_split(&item, "hold")?,
        })
    }
}

impl TryFrom<Item> for WebhookRecord {
    type Error = StoreError;

    fn try_from(item: Item) -> Result<Self, StoreError> {
        let fields = Fields::new(&item, "webhook answer");
        let pk = fields.string("pk")?;
        let key = pk
            .strip_prefix("key#")
            .ok_or_else(|| fields.corrupt("pk", "not a webhook answer key"))?;
        Ok(WebhookRecord {
            idempotency_key: IdempotencyKey::parse(key).map_err(|e| fields.corrupt("pk", e))?,
            fingerprint: fields.string("fingerprint")?.to_owned(),
            order_id: OrderId::new(fields.string("order_id")?),
            order_status: match item.get("order_status") {
                Some(_) => Some(
                    OrderStatus::from_str(fields.string("order_status")?)
                        .map_err(|e| fields.corrupt("order_status", e))?,
                ),
                None => None,
            },
        })
    }
}

impl TryFrom<Item> for PendingSettlement {
    type Error = StoreError;

    fn try_from(item: Item) -> Result<Self, StoreError> {
        let fields = Fields::new(&item, "pending settlement");
        let outcome = match fields.string("outcome")? {
            "success" => PaymentOutcome::Approved,
            "failure" => PaymentOutcome::Declined {
                reason: fields.string("reason")?.to_owned(),
            },
            other => return Err(fields.corrupt("outcome", format!("unknown outcome {other:?}"))),
        };
        let key = fields.string("idempotency_key")?;
        Ok(PendingSettlement {
            order_id: OrderId::new(fields.string("order_id")?),
            outcome,
            idempotency_key: IdempotencyKey::parse(key)
                .map_err(|e| fields.corrupt("idempotency_key", e))?,
        })
    }
}

/// Typed reads of one item's attributes; a missing or mistyped attribute is [`StoreError::Corrupt`].
struct Fields<'a> {
    item: &'a Item,
    what: &'static str,
}

impl<'a> Fields<'a> {
    fn new(item: &'a Item, what: &'static str) -> Self {
        Self { item, what }
    }

    fn corrupt(&self, name: &str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{} attribute {name}: {reason}", self.what))
    }

    fn string(&self, name: &str) -> Result<&'a str, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::S(value)) => Ok(value),
            Some(_) => Err(self.corrupt(name, "not a string")),
            None => Err(self.corrupt(name, "missing")),
        }
    }

    fn number<T: FromStr>(&self, name: &str) -> Result<T, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        match self.item.get(name) {
            Some(AttributeValue::N(text)) => text.parse().map_err(|e| self.corrupt(name, e)),
            Some(_) => Err(self.corrupt(name, "not a number")),
            None => Err(self.corrupt(name, "missing")),
        }
    }

    fn money(&self, name: &str) -> Result<Money, StoreError> {
        match self.item.get(name) {
            // The value counts, not the form: DynamoDB may hand `9.90` back as `9.9`.
            Some(AttributeValue::N(text)) => rust_decimal::Decimal::from_str(text)
                .map_err(|e| self.corrupt(name, e))
                .and_then(|value| Money::from_decimal(value).map_err(|e| self.corrupt(name, e))),
            Some(_) => Err(self.corrupt(name, "not a number")),
            None => Err(self.corrupt(name, "missing")),
        }
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        let text = self.string(name)?;
        DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|e| self.corrupt(name, e))
    }

    fn optional_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        if self.item.contains_key(name) {
            self.time(name).map(Some)
        } else {
            Ok(None)
        }
    }

    fn list(&self, name: &str) -> Result<&'a [AttributeValue], StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::L(values)) => Ok(values),
            Some(_) => Err(self.corrupt(name, "not a list")),
            None => Err(self.corrupt(name, "missing")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_767_225_600_000 + seconds * 1000 + 123)
            .unwrap()
    }

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
