//! Products: what can be ordered, at which price, and how many units are available.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::ids::is_printable_text;
use super::json::{
    JsonBody, field_integer, field_money, field_string, field_u32, refuse_unknown_members,
};
use super::{FieldErrors, Money, ProductId};

/// Longest product name.
pub const MAX_NAME_CHARS: usize = 200;
/// Largest stock a product may be given in one write.
pub const MAX_STOCK: u32 = 1_000_000_000;
/// Most stock shards a product may have: a re-shard rewrites every shard in one transaction
/// (100 actions at most), and 64 shards take a hot product to 64 partitions (docs/scaling.md).
pub const MAX_STOCK_SHARDS: u16 = 64;

/// A product as stored and served; `stock` is the number of units available right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Server-generated id.
    pub id: ProductId,
    /// Display name.
    pub name: String,
    /// Current unit price; orders snapshot it.
    pub price: Money,
    /// Available units: the sum over the product's stock shards.
    pub stock: u32,
    /// How many items (each its own DynamoDB partition) the stock is split over; 1 for an
    /// ordinary product.
    pub stock_shards: u16,
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
    /// Stock shards (1 unless given).
    pub stock_shards: u16,
}

/// A validated `PUT /products/{id}` body: any subset of the fields, at least one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    /// New name.
    pub name: Option<String>,
    /// New unit price; existing orders keep their snapshot.
    pub price: Option<Money>,
    /// New absolute stock (a restock or a correction), spread over the shards.
    pub stock: Option<u32>,
    /// New shard count: the units are spread over that many shards, the total kept exact.
    pub stock_shards: Option<u16>,
}

/// Members a product body may hold.
const PRODUCT_FIELDS: [&str; 4] = ["name", "price", "stock", "stock_shards"];

fn parse_name(value: &Value, errors: &mut FieldErrors) -> Option<String> {
    let name = field_string(value, "name", errors)?;
    let chars = name.trim().chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        errors.add("name", format!("must be 1 to {MAX_NAME_CHARS} characters"));
        return None;
    }
    if !is_printable_text(name) {
        errors.add(
            "name",
            "must not contain control or invisible formatting characters (newlines, tabs, bidi overrides)",
        );
        return None;
    }
    Some(name.trim().to_owned())
}

/// `stock_shards`, when present: an integer from 1 to [`MAX_STOCK_SHARDS`].
fn parse_shards(body: &Value, errors: &mut FieldErrors) -> Option<u16> {
    let value = body.get("stock_shards")?;
    let shards = field_integer(
        Some(value),
        "stock_shards",
        1..=i64::from(MAX_STOCK_SHARDS),
        errors,
    )?;
    u16::try_from(shards).ok()
}

/// A product body's members, each parsed where present (a create and an update body share them),
/// with the errors found so far; `Err` when the body is not a JSON object at all.
fn parse_members(written: &JsonBody) -> Result<(ProductPatch, FieldErrors), FieldErrors> {
    let body = written.value();
    let mut errors = FieldErrors::default();
    if !body.is_object() {
        return Err(FieldErrors::single("body", "must be a JSON object"));
    }
    refuse_unknown_members(body, "", &PRODUCT_FIELDS, &mut errors);
    let members = ProductPatch {
        name: body.get("name").and_then(|_| parse_name(body, &mut errors)),
        price: body
            .get("price")
            .and_then(|_| field_money(written, "price", &mut errors)),
        stock: body
            .get("stock")
            .and_then(|_| field_u32(body, "stock", MAX_STOCK, &mut errors)),
        stock_shards: parse_shards(body, &mut errors),
    };
    Ok((members, errors))
}

impl NewProduct {
    /// Parses a create body; `name`, `price` and `stock` are required, `stock_shards` optional,
    /// any other member is an error.
    pub fn parse(body: &JsonBody) -> Result<Self, FieldErrors> {
        let (members, mut errors) = parse_members(body)?;
        for field in ["name", "price", "stock"] {
            if body.value().get(field).is_none() {
                errors.add(field, "is required");
            }
        }
        match (members.name, members.price, members.stock) {
            (Some(name), Some(price), Some(stock)) if errors.is_empty() => Ok(NewProduct {
                name,
                price,
                stock,
                stock_shards: members.stock_shards.unwrap_or(1),
            }),
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
            stock_shards: self.stock_shards,
            created_at: now,
            updated_at: now,
        }
    }
}

impl ProductPatch {
    /// Parses an update body: any of `name`, `price`, `stock`, `stock_shards`, at least one; any
    /// other member is an error, as on create.
    pub fn parse(body: &JsonBody) -> Result<Self, FieldErrors> {
        let (patch, mut errors) = parse_members(body)?;
        if errors.is_empty() && patch == ProductPatch::default() {
            errors.add(
                "body",
                "must set at least one of name, price, stock, stock_shards",
            );
        }
        errors.into_result(patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> JsonBody {
        JsonBody::parse(value.to_string().as_bytes()).unwrap()
    }

    fn text(text: &str) -> JsonBody {
        JsonBody::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn new_product_reports_every_bad_field() {
        let errors = NewProduct::parse(&body(json!({"name": "", "price": "1.999", "stock": -1})))
            .unwrap_err();
        assert!(errors.get("name").is_some());
        assert!(errors.get("price").is_some());
        assert!(errors.get("stock").is_some());
    }

    #[test]
    fn new_product_accepts_price_as_string_or_number() {
        let a =
            NewProduct::parse(&text(r#"{"name": "Mug", "price": "9.99", "stock": 3}"#)).unwrap();
        let b = NewProduct::parse(&text(r#"{"name": "Mug", "price": 9.99, "stock": 3}"#)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn new_product_refuses_a_price_written_with_an_exponent_or_a_third_place() {
        for price in [
            "1E2",
            "12.345e1",
            "9.990",
            r#""1.990""#,
            r#"" 2.00 ""#,
            r#""2.00\n""#,
        ] {
            let errors = NewProduct::parse(&text(&format!(
                r#"{{"name": "Mug", "price": {price}, "stock": 3}}"#
            )))
            .unwrap_err();
            assert!(errors.get("price").is_some(), "{price}: {errors:?}");
        }
    }

    #[test]
    fn new_product_refuses_unknown_members_and_names_them() {
        let errors = NewProduct::parse(&body(
            json!({"id": "mine", "name": "Mug", "price": "1.00", "stock": 1}),
        ))
        .unwrap_err();
        assert!(errors.get("id").is_some(), "{errors:?}");
        assert!(
            NewProduct::parse(&body(
                json!({"name": "Mug", "price": "1.00", "stock": 1, "stock_shards": 1})
            ))
            .is_ok()
        );
        let shards = NewProduct::parse(&body(
            json!({"name": "Mug", "price": "1.00", "stock": 1, "stock_shards": 4}),
        ))
        .unwrap();
        assert_eq!(shards.stock_shards, 4);
        for bad in [json!(0), json!(65), json!("4"), json!(1.5)] {
            let errors = NewProduct::parse(&body(
                json!({"name": "Mug", "price": "1.00", "stock": 1, "stock_shards": bad}),
            ))
            .unwrap_err();
            assert!(errors.get("stock_shards").is_some(), "{bad}");
        }
    }

    #[test]
    fn a_name_with_control_or_bidi_characters_is_refused() {
        for name in [
            "Mug\nCup",
            "Mug\u{202E}guM",
            "Tab\there",
            "\u{200B}",
            "Mug\u{2066}",
        ] {
            let errors =
                NewProduct::parse(&body(json!({"name": name, "price": "1.00", "stock": 1})))
                    .unwrap_err();
            assert!(errors.get("name").is_some(), "{name:?}");
        }
        let trimmed = NewProduct::parse(&body(
            json!({"name": "  Mug  ", "price": "1.00", "stock": 1}),
        ))
        .unwrap();
        assert_eq!(trimmed.name, "Mug");
    }

    #[test]
    fn empty_patch_is_rejected() {
        assert!(ProductPatch::parse(&body(json!({}))).is_err());
        assert_eq!(
            ProductPatch::parse(&body(json!({"stock": 5})))
                .unwrap()
                .stock,
            Some(5)
        );
        assert!(
            ProductPatch::parse(&body(json!({"stock": 5, "colour": "red"})))
                .unwrap_err()
                .get("colour")
                .is_some()
        );
    }
}
