//! Products: what can be ordered, at which price, and how many units are available.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::json::{field_money, field_string, field_u32};
use super::{FieldErrors, Money, ProductId};

/// Longest product name (SPEC section 3).
pub const MAX_NAME_CHARS: usize = 200;
/// Largest stock a product may be given in one write.
pub const MAX_STOCK: u32 = 1_000_000_000;

/// A product as stored and served; `stock` is the number of units available right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Server-generated id.
    pub id: ProductId,
    /// Display name.
    pub name: String,
    /// Current unit price; orders snapshot it.
    pub price: Money,
    /// Available units.
    pub stock: u32,
    /// Creation time.
    #[serde(serialize_with = "super::json::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Last change of name, price or stock by an admin or an order.
    #[serde(serialize_with = "super::json::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// A validated `POST /products` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    /// Display name.
    pub name: String,
    /// Unit price.
    pub price: Money,
    /// Initial stock.
    pub stock: u32,
}

/// A validated `PUT /products/{id}` body: any subset of the fields, at least one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    /// New name.
    pub name: Option<String>,
    /// New unit price; existing orders keep their snapshot.
    pub price: Option<Money>,
    /// New absolute stock (a restock or a correction).
    pub stock: Option<u32>,
}

fn parse_name(value: &Value, errors: &mut FieldErrors) -> Option<String> {
    let name = field_string(value, "name", errors)?;
    let chars = name.trim().chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        errors.add("name", format!("must be 1 to {MAX_NAME_CHARS} characters"));
        return None;
    }
    Some(name.trim().to_owned())
}

impl NewProduct {
    /// Parses a create body; every field is required.
    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        if !body.is_object() {
            return Err(FieldErrors::single("body", "must be a JSON object"));
        }
        for field in ["name", "price", "stock"] {
            if body.get(field).is_none() {
                errors.add(field, "is required");
            }
        }
        let name = body.get("name").and_then(|_| parse_name(body, &mut errors));
        let price = body
            .get("price")
            .and_then(|_| field_money(body, "price", &mut errors));
        let stock = body
            .get("stock")
            .and_then(|_| field_u32(body, "stock", MAX_STOCK, &mut errors));
        match (name, price, stock) {
            (Some(name), Some(price), Some(stock)) if errors.is_empty() => {
                Ok(NewProduct { name, price, stock })
            }
            _ => Err(errors),
        }
    }

    /// The product this body creates.
    pub fn into_product(self, id: ProductId, now: DateTime<Utc>) -> Product {
        Product {
            id,
            name: self.name,
            price: self.price,
            stock: self.stock,
            created_at: now,
            updated_at: now,
        }
    }
}

impl ProductPatch {
    /// Parses an update body; unknown fields are ignored, an empty update is an error.
    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        if !body.is_object() {
            return Err(FieldErrors::single("body", "must be a JSON object"));
        }
        let patch = ProductPatch {
            name: body.get("name").and_then(|_| parse_name(body, &mut errors)),
            price: body
                .get("price")
                .and_then(|_| field_money(body, "price", &mut errors)),
            stock: body
                .get("stock")
                .and_then(|_| field_u32(body, "stock", MAX_STOCK, &mut errors)),
        };
        if errors.is_empty() && patch == ProductPatch::default() {
            errors.add("body", "must set at least one of name, price, stock");
        }
        errors.into_result(patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_product_reports_every_bad_field() {
        let errors =
            NewProduct::parse(&json!({"name": "", "price": "1.999", "stock": -1})).unwrap_err();
        assert!(errors.get("name").is_some());
        assert!(errors.get("price").is_some());
        assert!(errors.get("stock").is_some());
    }

    #[test]
    fn new_product_accepts_price_as_string_or_number() {
        let a = NewProduct::parse(&json!({"name": "Mug", "price": "9.99", "stock": 3})).unwrap();
        let b = NewProduct::parse(&json!({"name": "Mug", "price": 9.99, "stock": 3})).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn empty_patch_is_rejected() {
        assert!(ProductPatch::parse(&json!({})).is_err());
        assert_eq!(
            ProductPatch::parse(&json!({"stock": 5})).unwrap().stock,
            Some(5)
        );
    }
}
