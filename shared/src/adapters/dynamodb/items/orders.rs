//! The orders table's items: the order (also its key's idempotency record), its keys in the
//! `user-orders-keys` and (from a hold) `unsettled-orders` indexes, and the `user-orders` cursor.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::DateTime;

use super::{
    Fields, Item, TAKE_TOKEN, money, number, read_shard_split, shard_split, stable_shard, status,
    string, timestamp, timestamp_text,
};
use crate::domain::{
    IdempotencyKey, Order, OrderId, OrderItem, OrderStatus, ProductId, Quantity, UserId,
};
use crate::ports::StoreError;

/// Key attributes of a `user-orders` `LastEvaluatedKey`: the table key plus the index key.
pub(in crate::adapters::dynamodb) const USER_ORDERS_CURSOR_KEY: &[&str] =
    &["id", "user_id", "user_created"];

/// The order item's attribute holding the fingerprint of the request that placed it (the order is
/// its key's idempotency record); also the attribute of the separate records of older orders.
pub(in crate::adapters::dynamodb) const REQUEST_FINGERPRINT: &str = "request_fingerprint";
/// Partitions of the sparse `unsettled-orders` index: the reconciler queries each. An order from
/// a hold writes 1 unit on its shard's key when placed and 1 when settled (the claim leaves the key
/// alone), so even if all of the shop's 100,000 orders/s came from holds a key would take
/// 100,000 × 2 / 512 = 390 units/s, 0.39 of a partition (docs/scaling.md). An order from items
/// never enters the index: its journal mark stands for it until its message is sent.
pub(in crate::adapters::dynamodb) const UNSETTLED_SHARDS: u32 = 512;

/// Key of an order.
pub(in crate::adapters::dynamodb) fn order_key(id: &OrderId) -> Item {
    HashMap::from([("id".to_owned(), string(id.as_str()))])
}

/// An order item, with `user_created` as the `user-orders-keys` sort key (newest first when
/// descending). The key never changes and the index projects keys only, so a status move writes
/// no index.
pub(in crate::adapters::dynamodb) fn order_item(order: &Order) -> Item {
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
    item
}

/// Where a placed order's units came from.
pub(in crate::adapters::dynamodb) enum Stocked<'a> {
    /// A stock take with this journal token (`take_token`): the journal marks the order until its
    /// message is sent.
    ByTake(&'a str),
    /// A hold: nothing marks the order, so it carries `unsettled_shard`, the hash key of the
    /// sparse `unsettled-orders` index (range key `created_at`), until it settles.
    ByHold,
}

/// The item a placement puts: the order with the request's fingerprint, which makes it the key's
/// idempotency record, and what stands for it until it settles.
pub(in crate::adapters::dynamodb) fn placed_order_item(
    order: &Order,
    request_fingerprint: &str,
    stocked: &Stocked<'_>,
) -> Item {
    let mut item = order_item(order);
    item.insert(REQUEST_FINGERPRINT.to_owned(), string(request_fingerprint));
    match stocked {
        Stocked::ByTake(token) => {
            item.insert(TAKE_TOKEN.to_owned(), string(*token));
        }
        Stocked::ByHold => {
            item.insert(UNSETTLED_SHARD.to_owned(), unsettled_shard_of(&order.id));
        }
    }
    item
}

/// The fingerprint an order item was placed with; `None` for an order placed before orders
/// carried it.
pub(in crate::adapters::dynamodb) fn request_fingerprint(item: &Item) -> Option<String> {
    item.get(REQUEST_FINGERPRINT)?.as_s().ok().cloned()
}

/// The attribute that puts an order in the `unsettled-orders` index while PENDING or PROCESSING.
pub(in crate::adapters::dynamodb) const UNSETTLED_SHARD: &str = "unsettled_shard";

/// Shard `n` of the `unsettled-orders` index, as its hash key holds it.
pub(in crate::adapters::dynamodb) fn unsettled_shard(n: u32) -> AttributeValue {
    string(n.to_string())
}

/// An unsettled order's shard: a stable hash of its id, so it is set once, at placement.
pub(in crate::adapters::dynamodb) fn unsettled_shard_of(id: &OrderId) -> AttributeValue {
    unsettled_shard(stable_shard(id.as_str(), UNSETTLED_SHARDS))
}

/// The `ExclusiveStartKey` a `user-orders` cursor's values stand for, checked whole: `id` is an
/// order id, `user_id` is `owner` (a cursor is client-held: without this it would page through
/// another user's partition of the index) and `user_created` is `<RFC 3339 time>#<id>`, as
/// [`order_item`] writes it. Anything else is [`StoreError::InvalidCursor`].
pub(in crate::adapters::dynamodb) fn user_orders_start_key(
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

#[cfg(test)]
mod tests {
    use super::super::at;
    use super::*;
    use crate::domain::{Money, ShardSplit};

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
}
