//! The idempotency table's items: the key of an older order's separate idempotency record.

use std::collections::HashMap;

use super::{Item, string};
use crate::domain::{IdempotencyKey, UserId};

/// Key of an idempotency record.
pub(in crate::adapters::dynamodb) fn idempotency_key(
    user_id: &UserId,
    key: &IdempotencyKey,
) -> Item {
    HashMap::from([
        ("user_id".to_owned(), string(user_id.as_str())),
        ("idempotency_key".to_owned(), string(key.as_str())),
    ])
}
