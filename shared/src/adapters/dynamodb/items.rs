//! Every mapping between DynamoDB items and the domain: keys, attribute values and `TryFrom<Item>`.
//! The other files of the adapter build expressions; only this one knows how a value is encoded.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{
    Hold, HoldId, HoldStatus, IdempotencyKey, Money, Order, OrderId, OrderItem, OrderStatus,
    PaymentOutcome, Product, ProductId, Quantity, ShardSplit, StockShard, UserId,
};
use crate::ports::{PendingSettlement, StoreError, WebhookRecord};

/// One item (or key) as the SDK hands it over.
pub(super) type Item = HashMap<String, AttributeValue>;

/// Key attributes of a products-table `LastEvaluatedKey`, which is all a products cursor holds.
pub(super) const PRODUCT_CURSOR_KEY: &[&str] = &["id"];
/// Key attributes of a `user-orders` `LastEvaluatedKey`: the table key plus the index key.
pub(super) const USER_ORDERS_CURSOR_KEY: &[&str] = &["id", "user_id", "user_created"];

/// The order item's attribute holding the fingerprint of the request that placed it (the order is
/// its key's idempotency record); also the attribute of the separate records of older orders.
pub(super) const REQUEST_FINGERPRINT: &str = "request_fingerprint";
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
/// Partitions of the sparse `unsettled-orders` index: the reconciler queries each. An order writes
/// 1 unit on its shard's key when placed and 1 when settled (the claim leaves the key alone), so at
/// the shop's 100,000 orders/s a key takes 100,000 × 2 / 512 = 390 units/s, 0.39 of a partition
/// (docs/scaling.md).
pub(super) const UNSETTLED_SHARDS: u32 = 512;
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

/// An order item, with `user_created` as the `user-orders-keys` sort key (newest first when
/// descending) and, while PENDING or PROCESSING, `unsettled_shard`: the hash key of the sparse
/// `unsettled-orders` index (its range key is `created_at`). Neither index key changes before the
/// order settles, and both indexes project keys only, so the claim writes no index.
pub(super) fn order_item(order: &Order) -> Item {
    let lines = order
        .items
        .iter()
        .map(|line| {
            let mut map = HashMap::from([
                ("product_id".to_owned(), string(line.product_id.as_str())),
                ("quantity".to_owned(), number(line.quantity.get())),
                ("unit_price".to_owned(), money(line.unit_price)),
            ]);
            if !line.shards.is_first_only() {
                map.insert(
                    "shards".to_owned(),
                    shard_split(&line.shards, line.quantity.get()),
                );
            }
            AttributeValue::M(map)
        })
        .collect();
    let mut item = HashMap::from([
        ("id".to_owned(), string(order.id.as_str())),
        ("user_id".to_owned(), string(order.user_id.as_str())),
        ("status".to_owned(), status(order.status)),
        ("total_amount".to_owned(), money(order.total_amount)),
        (
            "idempotency_key".to_owned(),
            string(order.idempotency_key.as_str()),
        ),
        ("items".to_owned(), AttributeValue::L(lines)),
        ("created_at".to_owned(), timestamp(order.created_at)),
        ("updated_at".to_owned(), timestamp(order.updated_at)),
        (
            "user_created".to_owned(),
            string(format!("{}#{}", timestamp_text(order.created_at), order.id)),
        ),
    ]);
    if let Some(at) = order.cancelled_at {
        item.insert("cancelled_at".to_owned(), timestamp(at));
    }
    if !order.status.is_terminal() {
        item.insert(UNSETTLED_SHARD.to_owned(), unsettled_shard_of(&order.id));
    }
    item
}

/// The item a placement puts: the order with the request's fingerprint, which makes it the key's
/// idempotency record, and the token of the stock take that stocked it, if any.
pub(super) fn placed_order_item(
    order: &Order,
    request_fingerprint: &str,
    take_token: Option<(&str, &str)>,
) -> Item {
    let mut item = order_item(order);
    item.insert(REQUEST_FINGERPRINT.to_owned(), string(request_fingerprint));
    if let Some((attribute, token)) = take_token {
        item.insert(attribute.to_owned(), string(token));
    }
    item
}

/// The fingerprint an order item was placed with; `None` for an order placed before orders
/// carried it.
pub(super) fn request_fingerprint(item: &Item) -> Option<String> {
    item.get(REQUEST_FINGERPRINT)?.as_s().ok().cloned()
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

/// The attribute that puts an order in the `unsettled-orders` index while PENDING or PROCESSING.
pub(super) const UNSETTLED_SHARD: &str = "unsettled_shard";

/// Shard `n` of the `unsettled-orders` index, as its hash key holds it.
pub(super) fn unsettled_shard(n: u32) -> AttributeValue {
    string(n.to_string())
}

/// An unsettled order's shard: a stable hash of its id, so it is set once, at placement.
pub(super) fn unsettled_shard_of(id: &OrderId) -> AttributeValue {
    unsettled_shard(stable_shard(id.as_str(), UNSETTLED_SHARDS))
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

/// The `ExclusiveStartKey` a `user-orders` cursor's values stand for, checked whole: `id` is an
/// order id, `user_id` is `owner` (a cursor is client-held: without this it would page through
/// another user's partition of the index) and `user_created` is `<RFC 3339 time>#<id>`, as
/// [`order_item`] writes it. Anything else is [`StoreError::InvalidCursor`].
pub(super) fn user_orders_start_key(
    values: &HashMap<String, String>,
    owner: &UserId,
) -> Result<Item, StoreError> {
    let field = |name: &str| values.get(name).ok_or(StoreError::InvalidCursor);
    let id = OrderId::parse(field("id")?).map_err(|_| StoreError::InvalidCursor)?;
    if field("user_id")? != owner.as_str() {
        return Err(StoreError::InvalidCursor);
    }
    let user_created = field("user_created")?;
    let well_formed = user_created
        .split_once('#')
        .is_some_and(|(at, of)| of == id.as_str() && DateTime::parse_from_rfc3339(at).is_ok());
    if !well_formed {
        return Err(StoreError::InvalidCursor);
    }
    Ok(HashMap::from([
        ("id".to_owned(), string(id.as_str())),
        ("user_id".to_owned(), string(owner.as_str())),
        ("user_created".to_owned(), string(user_created)),
    ]))
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

impl TryFrom<Item> for Order {
    type Error = StoreError;

    fn try_from(item: Item) -> Result<Self, StoreError> {
        let fields = Fields::new(&item, "order");
        let status = fields.string("status")?;
        let key = fields.string("idempotency_key")?;
        Ok(Order {
            id: OrderId::new(fields.string("id")?),
            user_id: UserId::new(fields.string("user_id")?),
            status: OrderStatus::from_str(status).map_err(|e| fields.corrupt("status", e))?,
            total_amount: fields.money("total_amount")?,
            idempotency_key: IdempotencyKey::parse(key)
                .map_err(|e| fields.corrupt("idempotency_key", e))?,
            items: fields
                .list("items")?
                .iter()
                .map(order_line)
                .collect::<Result<_, _>>()?,
            created_at: fields.time("created_at")?,
            updated_at: fields.time("updated_at")?,
            cancelled_at: fields.optional_time("cancelled_at")?,
        })
    }
}

fn order_line(value: &AttributeValue) -> Result<OrderItem, StoreError> {
    let AttributeValue::M(line) = value else {
        return Err(StoreError::Corrupt(
            "order line: not a map attribute".into(),
        ));
    };
    let fields = Fields::new(line, "order line");
    let quantity = fields.number::<i64>("quantity")?;
    Ok(OrderItem {
        product_id: ProductId::new(fields.string("product_id")?),
        quantity: Quantity::parse(quantity).map_err(|e| fields.corrupt("quantity", e))?,
        unit_price: fields.money("unit_price")?,
        shards: read_shard_split(line, "order line")?,
    })
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
    fn order_survives_a_round_trip_through_its_item() {
        let line = |p: &str, q, price| OrderItem {
            product_id: ProductId::new(p),
            quantity: Quantity::parse(q).unwrap(),
            unit_price: Money::parse(price).unwrap(),
            shards: ShardSplit::default(),
        };
        let placed = Order::place(
            OrderId::new("o1"),
            UserId::new("u1"),
            IdempotencyKey::parse("k").unwrap(),
            vec![line("a", 3, "0.10"), line("b", 2, "999.90")],
            at(0),
        );
        let order = placed.cancelled(at(5)).unwrap();
        let mut item = order_item(&order);
        // DynamoDB normalises numbers: "999.90" comes back as "999.9".
        item.insert("total_amount".into(), AttributeValue::N("2000.1".into()));
        assert_eq!(Order::try_from(item).unwrap(), order);
    }

    #[test]
    fn order_sort_key_is_creation_time_then_id() {
        let order = Order::place(
            OrderId::new("o1"),
            UserId::new("u1"),
            IdempotencyKey::parse("k").unwrap(),
            vec![],
            at(0),
        );
        let item = order_item(&order);
        assert_eq!(item["user_created"], string("2026-01-01T00:00:00.123Z#o1"));
    }

    #[test]
    fn an_orders_cursor_must_be_the_owners_and_well_formed() {
        let values = |id: &str, user: &str, created: &str| -> HashMap<String, String> {
            HashMap::from([
                ("id".to_owned(), id.to_owned()),
                ("user_id".to_owned(), user.to_owned()),
                ("user_created".to_owned(), created.to_owned()),
            ])
        };
        let alice = UserId::new("alice");
        let good = values("o1", "alice", "2026-01-01T00:00:00.123Z#o1");
        assert_eq!(
            user_orders_start_key(&good, &alice).unwrap()["user_created"],
            string("2026-01-01T00:00:00.123Z#o1")
        );
        for bad in [
            values("o1", "bob", "2026-01-01T00:00:00.123Z#o1"),
            values("o1", "alice", "2026-01-01T00:00:00.123Z#o2"),
            values("o1", "alice", "yesterday#o1"),
            values("o1", "alice", "o1"),
            values(&"o".repeat(129), "alice", "2026-01-01T00:00:00.123Z#o1"),
        ] {
            assert!(
                matches!(
                    user_orders_start_key(&bad, &alice),
                    Err(StoreError::InvalidCursor)
                ),
                "{bad:?}"
            );
        }
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
