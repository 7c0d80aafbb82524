//! Stock holds: units set aside for one buyer for a short checkout window.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::json::{field_integer, field_string, refuse_unknown_members};
use super::{
    FieldErrors, HoldId, MAX_QUANTITY, Money, OrderId, ProductId, Quantity, ShardSplit, UserId,
};

/// Most ACTIVE holds one user may have on one product at a time, so that one buyer cannot hold a
/// sale (docs/decisions.md). Counted in the same transaction that takes the stock.
pub const MAX_ACTIVE_HOLDS_PER_PRODUCT: u32 = 2;

/// Where a hold is in its life. Every move is conditional on ACTIVE, so a checkout and the
/// sweeper racing on one hold produce exactly one winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldStatus {
    /// Holds its units until `expires_at`.
    Active,
    /// Turned into an order; the order holds the units now.
    Consumed,
    /// Its time ran out and its units went back to the product.
    Expired,
}

impl HoldStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Consumed => "CONSUMED",
            Self::Expired => "EXPIRED",
        }
    }
}

impl fmt::Display for HoldStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HoldStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ACTIVE" => Ok(Self::Active),
            "CONSUMED" => Ok(Self::Consumed),
            "EXPIRED" => Ok(Self::Expired),
            other => Err(format!("unknown hold status {other:?}")),
        }
    }
}

/// A hold as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// Server-generated id.
    #[serde(rename = "hold_id")]
    pub id: HoldId,
    /// The buyer.
    pub user_id: UserId,
    /// The product held.
    pub product_id: ProductId,
    /// Units held.
    pub quantity: Quantity,
    /// Price snapshot taken with the stock: the order placed from the hold pays this.
    pub unit_price: Money,
    /// Current status as stored: ACTIVE until a checkout or the sweeper moves it.
    pub status: HoldStatus,
    /// The end of the checkout window.
    #[serde(serialize_with = "super::json::rfc3339")]
    pub expires_at: DateTime<Utc>,
    /// When it was taken.
    #[serde(serialize_with = "super::json::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Last status change.
    #[serde(serialize_with = "super::json::rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// The order it became, once CONSUMED.
    pub order_id: Option<OrderId>,
    /// The stock shards the units came from (and go back to on expiry); stored, not served.
    #[serde(skip)]
    pub shards: ShardSplit,
}

impl Hold {
    /// A new ACTIVE hold ending `ttl` after `now`.
    pub fn place(
        user_id: UserId,
        product_id: ProductId,
        quantity: Quantity,
        unit_price: Money,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Hold {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        Hold {
            id: HoldId::generate(),
            user_id,
            product_id,
            quantity,
            unit_price,
            status: HoldStatus::Active,
            expires_at: now
                .checked_add_signed(ttl)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            created_at: now,
            updated_at: now,
            order_id: None,
            shards: ShardSplit::default(),
        }
    }

    /// Whether a checkout at `now` may use it: ACTIVE and its time not up. The time counts, not
    /// only the status: a hold past `expires_at` that the sweeper has not reached is not usable.
    pub fn usable_at(&self, now: DateTime<Utc>) -> bool {
        self.status == HoldStatus::Active && now < self.expires_at
    }

    /// Whether the sweeper may expire it at `now`.
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.status == HoldStatus::Active && now >= self.expires_at
    }

    /// The hold after a checkout turned it into `order_id`.
    pub fn consumed(&self, order_id: OrderId, now: DateTime<Utc>) -> Hold {
        Hold {
            status: HoldStatus::Consumed,
            order_id: Some(order_id),
            updated_at: now,
            ..self.clone()
        }
    }

    /// The hold after the sweeper gave its units back.
    pub fn expired(&self, now: DateTime<Utc>) -> Hold {
        Hold {
            status: HoldStatus::Expired,
            updated_at: now,
            ..self.clone()
        }
    }
}

/// A validated `POST /holds` body: `{product_id, quantity}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    /// The product to hold.
    pub product_id: ProductId,
    /// Units, 1..=10,000 as for an order line.
    pub quantity: Quantity,
}

/// The members a hold body may have; any other (a `ttl`, an `expires_at`) is refused
/// (docs/decisions.md, "Request bodies").
const HOLD_FIELDS: [&str; 2] = ["product_id", "quantity"];

impl HoldRequest {
    /// Parses a body, collecting every bad field.
    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        if !body.is_object() {
            return Err(FieldErrors::single("body", "must be a JSON object"));
        }
        let mut errors = FieldErrors::default();
        refuse_unknown_members(body, "", &HOLD_FIELDS, &mut errors);
        let product_id = field_string(body, "product_id", &mut errors).and_then(|text| {
            match ProductId::parse(text) {
                Ok(id) => Some(id),
                Err(msg) => {
                    errors.add("product_id", msg);
                    None
                }
            }
        });
        let quantity = field_integer(
            body.get("quantity"),
            "quantity",
            1..=MAX_QUANTITY,
            &mut errors,
        )
        .and_then(|n| match Quantity::parse(n) {
            Ok(q) => Some(q),
            Err(e) => {
                errors.add("quantity", e.to_string());
                None
            }
        });
        match (product_id, quantity) {
            (Some(product_id), Some(quantity)) if errors.is_empty() => Ok(HoldRequest {
                product_id,
                quantity,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hold(now: DateTime<Utc>) -> Hold {
        Hold::place(
            UserId::new("u"),
            ProductId::new("p"),
            Quantity::parse(2).unwrap(),
            Money::parse("1.50").unwrap(),
            now,
            Duration::from_secs(120),
        )
    }

    #[test]
    fn a_hold_body_with_an_unknown_member_is_refused_naming_it() {
        let errors = HoldRequest::parse(&json!({"product_id": "p", "quantity": 1, "ttl": 99999}))
            .unwrap_err();
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            json!({"ttl": [
                "is not a known field (expected product_id, quantity)"
            ]})
        );
        assert!(HoldRequest::parse(&json!({"product_id": "p", "quantity": 1})).is_ok());
    }

    #[test]
    fn a_hold_is_usable_until_its_time_is_up_and_expirable_from_then() {
        let now = Utc::now();
        let h = hold(now);
        assert!(h.usable_at(now));
        assert!(!h.expired_at(now));
        let end = h.expires_at;
        assert!(
            !h.usable_at(end),
            "the end of the window is already too late"
        );
        assert!(h.expired_at(end));
        let used = h.consumed(OrderId::new("o"), now);
        assert!(!used.usable_at(now) && !used.expired_at(end));
        assert!(!h.expired(end).usable_at(now));
    }

    #[test]
    fn the_body_needs_a_product_and_a_quantity() {
        assert!(HoldRequest::parse(&json!({"product_id": "p", "quantity": 3})).is_ok());
        let errors = HoldRequest::parse(&json!({"quantity": 0})).unwrap_err();
        assert!(errors.get("product_id").is_some() && errors.get("quantity").is_some());
        assert!(HoldRequest::parse(&json!([1])).is_err());
    }

    #[test]
    fn serves_its_id_as_hold_id_and_its_status_in_capitals() {
        let json = serde_json::to_value(hold(Utc::now())).unwrap();
        assert!(json["hold_id"].is_string());
        assert_eq!(json["status"], "ACTIVE");
        assert_eq!(json["order_id"], Value::Null);
    }
}
