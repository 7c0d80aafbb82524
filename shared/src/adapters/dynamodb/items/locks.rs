//! The locks table's items: a stock shard's lock, owned by a token until its lease ends.

use std::collections::HashMap;

use super::{Item, number, string};
use crate::domain::StockShard;

/// How long a lock item outlives its lease before TTL removes it; the lease, not TTL, decides.
const LOCK_TTL_GRACE_SECONDS: i64 = 60;

/// Key of a stock shard's lock item: the product id for shard 0, as before shards existed.
pub(in crate::adapters::dynamodb) fn lock_key(shard: &StockShard) -> Item {
    HashMap::from([("product_id".to_owned(), string(shard.to_string()))])
}

/// A lock item owned by `token` until `lease_until_ms` (epoch milliseconds).
pub(in crate::adapters::dynamodb) fn lock_item(
    shard: &StockShard,
    token: &str,
    lease_until_ms: i64,
) -> Item {
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
