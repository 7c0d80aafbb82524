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

/// 1..=128 printable characters, not all of them whitespace: the rule for every id a client
/// sends (path, body, query or cursor). An id that breaks it cannot exist, so a read answers 404
/// without asking the store, and no key DynamoDB would refuse (over 2,048 bytes) is ever built.
fn parse_client_id(text: &str) -> Result<String, &'static str> {
    if text.is_empty() || text.chars().count() > MAX_ID_CHARS || !is_printable_text(text) {
        Err("must be 1 to 128 printable characters")
    } else {
        Ok(text.to_owned())
    }
}

/// Whether `text` is something a person could read and type back: not only whitespace, and no
/// control character (newline, tab, DEL, C1), invisible format character (zero-width, bidi
/// embeddings, overrides and isolates such as U+202E, byte order mark, tags) or line or paragraph
/// separator. Such characters make one string display as another (a name that reads backwards, two
/// keys that look identical), so none of them is accepted in names, ids or idempotency keys.
pub(crate) fn is_printable_text(text: &str) -> bool {
    !text.trim().is_empty()
        && !text
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c))
}

/// The Unicode general categories Cf (format), Zl and Zp, as of Unicode 15.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
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

impl UserId {
    /// Parses a client-supplied user id (an admin's `user_id` filter): the rule of every client id.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        parse_client_id(text).map(Self)
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

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// A client's idempotency key: 1..=255 printable characters, scoped to the user who sent it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a key; empty, too long, only whitespace, or holding a control or invisible format
    /// character (see [`is_printable_text`]) is an error. The key is kept as sent (not trimmed).
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_IDEMPOTENCY_KEY_CHARS {
            Err("must be 1 to 255 characters")
        } else if !is_printable_text(text) {
            Err("must be printable characters, not only whitespace")
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
    fn a_key_of_whitespace_or_with_invisible_characters_is_refused() {
        for bad in [
            " ",
            "\t",
            "   ",
            "a\nb",
            "a\u{202E}b",
            "a\u{200B}b",
            "\u{FEFF}k",
            "k\u{2028}",
        ] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(" padded key ").is_ok());
        assert!(IdempotencyKey::parse("clé-été-日本").is_ok());
    }

    #[test]
    fn a_client_id_is_one_to_128_printable_characters() {
        assert!(ProductId::parse(&"p".repeat(128)).is_ok());
        assert!(ProductId::parse(&"p".repeat(129)).is_err());
        assert!(ProductId::parse(&"é".repeat(128)).is_ok());
        for bad in ["", " ", "a\u{0}b", "a\u{202E}b", "a\rb"] {
            assert!(ProductId::parse(bad).is_err(), "{bad:?}");
            assert!(OrderId::parse(bad).is_err(), "{bad:?}");
            assert!(HoldId::parse(bad).is_err(), "{bad:?}");
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
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
