//! Identifiers and the idempotency key: strings with a meaning, kept apart by type.

use std::fmt;

use serde::{Deserialize, Serialize};

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

impl ProductId {
    /// Parses a client-supplied product id: 1..=128 printable characters.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.is_empty() || text.chars().count() > 128 || text.chars().any(char::is_control) {
            Err("must be 1 to 128 printable characters")
        } else {
            Ok(Self(text.to_owned()))
        }
    }

    /// A fresh random id for a new product.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl OrderId {
    /// A fresh random id for a new order.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
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
}
