//! The holds table's items: the hold (with its sweep shard while ACTIVE), a user's count of
//! ACTIVE holds on a product, and the mark a product's deletion leaves.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    Fields, Item, money, number, read_shard_split, shard_split, stable_shard, string, timestamp,
};
use crate::domain::{Hold, HoldId, HoldStatus, OrderId, ProductId, Quantity, UserId};
use crate::ports::StoreError;

/// How long a hold item outlives its window before TTL removes it. Long after the sweeper (which
/// runs every minute) has given its units back: TTL only cleans up, it never decides.
const HOLD_TTL_GRACE_SECONDS: i64 = 24 * 60 * 60;

/// Partitions of the sparse `active-holds` index: the sweeper queries each; writes spread over them.
/// 32 keeps a 5,000 holds/s flash sale at 312 write units/s per key (docs/scaling.md); holds
/// written with 4 shards before are still among them.
pub(in crate::adapters::dynamodb) const HOLD_SWEEP_SHARDS: u32 = 32;

/// The key of a hold item.
pub(in crate::adapters::dynamodb) fn hold_key(id: &HoldId) -> Item {
    HashMap::from([("id".to_owned(), string(id.as_str()))])
}

/// The key of a user's count of ACTIVE holds on a product, in the holds table. The user id's
/// length comes first, so no two (user, product) pairs share a key whatever their characters.
pub(in crate::adapters::dynamodb) fn hold_count_key(
    user_id: &UserId,
    product_id: &ProductId,
) -> Item {
    let user = user_id.as_str();
    HashMap::from([(
        "id".to_owned(),
        string(format!("active#{}#{user}#{product_id}", user.len())),
    )])
}

/// Key of the mark a product's deletion leaves in the holds table, which every checkout of a
/// hold of that product requires absent (docs/data-model.md, holds): a cold item, so the hot
/// product item stays out of the checkout's transaction.
pub(in crate::adapters::dynamodb) fn product_gone_key(product_id: &ProductId) -> Item {
    HashMap::from([("id".to_owned(), string(format!("gone#{product_id}")))])
}

/// The sweep shard of an ACTIVE hold: a stable hash of its id.
fn hold_sweep_shard(id: &HoldId) -> String {
    stable_shard(id.as_str(), HOLD_SWEEP_SHARDS).to_string()
}

/// A hold item. While ACTIVE it carries `sweep_shard` and `hold_expires_at`, the keys of the sparse
/// `active-holds` index; a status move away from ACTIVE removes `sweep_shard`.
pub(in crate::adapters::dynamodb) fn hold_item(hold: &Hold) -> Item {
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
pub(in crate::adapters::dynamodb) fn hold_status(value: HoldStatus) -> AttributeValue {
    string(value.as_str())
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
