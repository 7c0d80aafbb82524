//! Identifiers and the idempotency key: strings with a meaning, kept apart by type.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id that came from a trusted place (the store, the token, the generator).
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A product's id.
    ProductId
);
string_id!(
    /// An order's id.
    OrderId
);
string_id!(
    /// A user's id: the JWT `sub`.
    UserId
);
string_id!(
    /// A stock hold's id.
    HoldId
);

/// Longest id a client may send for a product, an order or a hold.
pub const MAX_ID_CHARS: usize = 128;

/// 1..=128 printable characters: the rule for every id a client sends.
fn parse_client_id(text: &str) -> Result<String, &'static str> {
    if text.is_empty() || text.chars().count() > MAX_ID_CHARS || text.chars().any(char::is_control)
    {
        Err("must be 1 to 128 printable characters")
    } else {
        Ok(text.to_owned())
    }
}

impl ProductId {
    /// Parses a client-supplied product id: 1..=128 printable characters.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        parse_client_id(text).map(Self)
    }

    /// A fresh random id for a new product.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl OrderId {
    /// The id of the order a user's idempotency key places: the first 16 bytes of
    /// SHA-256(`<user_id>` `"\n"` `<idempotency_key>`) in lowercase hex (32 characters). A payment
    /// provider told the user and the key at checkout knows the order's id before the order
    /// commits, so its webhook can arrive first (docs/decisions.md). The key holds no control
    /// characters, so the split at the last newline is unambiguous and no two (user, key) pairs share
    /// an id.
    pub fn for_key(user_id: &UserId, key: &IdempotencyKey) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(user_id.as_str().as_bytes());
        hasher.update(b"\n");
        hasher.update(key.as_str().as_bytes());
        let digest = hasher.finalize();
        Self(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Parses a client-supplied order id (a webhook's `order_id`): 1..=128 printable characters.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        parse_client_id(text).map(Self)
    }
}

impl HoldId {
    /// Parses a client-supplied hold id: 1..=128 printable characters.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        parse_client_id(text).map(Self)
    }

    /// A fresh random id for a new hold.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

/// Who is asking: the authenticated user, and whether an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`.
    pub user_id: UserId,
    /// `role: "admin"`: may manage products and read every order and hold.
    pub is_admin: bool,
}

impl Caller {
    /// Whether the caller may see a resource owned by `owner`.
    pub fn may_see(&self, owner: &UserId) -> bool {
        self.is_admin || *owner == self.user_id
    }
}

/// Longest idempotency key accepted (SPEC section 3).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// A client's idempotency key: 1..=255 printable characters, scoped to the user who sent it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a key; empty, too long or containing control characters is an error.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_IDEMPOTENCY_KEY_CHARS {
            Err("must be 1 to 255 characters")
        } else if text.chars().any(char::is_control) {
            Err("must contain printable characters only")
        } else {
            Ok(Self(text.to_owned()))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_accepts_255_chars_and_rejects_256() {
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("tab\there").is_err());
    }

    #[test]
    fn an_order_id_is_derived_from_the_user_and_the_key() {
        let key = |k: &str| IdempotencyKey::parse(k).unwrap();
        let alice = UserId::new("alice");
        let id = OrderId::for_key(&alice, &key("k1"));
        // sha256("alice\nk1"), first 16 bytes: what a provider computes on its side.
        assert_eq!(id.as_str(), "0886466c4ecaecba85bb34f9fe61f9e8");
        assert_eq!(id, OrderId::for_key(&alice, &key("k1")));
        assert_ne!(id, OrderId::for_key(&alice, &key("k2")));
        assert_ne!(id, OrderId::for_key(&UserId::new("bob"), &key("k1")));
    }
}
