//! Opaque pagination cursors: a `LastEvaluatedKey` as JSON, in URL-safe base64 without padding.
//! A cursor is only trusted after its shape matches the key of the listing it is passed to.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::items::Item;
use crate::ports::StoreError;

/// Encodes a `LastEvaluatedKey`. Keys hold only string and number attributes.
pub(super) fn encode(key: &Item) -> Result<String, StoreError> {
    let mut object = Map::new();
    for (name, value) in key {
        let typed = match value {
            AttributeValue::S(text) => ("S", text),
            AttributeValue::N(text) => ("N", text),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "key attribute {name} is neither a string nor a number"
                )));
            }
        };
        let mut wrapped = Map::new();
        wrapped.insert(typed.0.to_owned(), Value::String(typed.1.clone()));
        object.insert(name.clone(), Value::Object(wrapped));
    }
    Ok(URL_SAFE_NO_PAD.encode(Value::Object(object).to_string()))
}

/// Decodes a cursor into an `ExclusiveStartKey` whose attribute names are exactly `attributes`;
/// anything else is [`StoreError::InvalidCursor`], never a request DynamoDB would refuse.
pub(super) fn decode(cursor: &str, attributes: &[&str]) -> Result<Item, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(StoreError::InvalidCursor);
    };
    if object.len() != attributes.len() {
        return Err(StoreError::InvalidCursor);
    }
    let mut key = Item::new();
    for name in attributes {
        let value = object
            .get(*name)
            .and_then(attribute)
            .ok_or(StoreError::InvalidCursor)?;
        key.insert((*name).to_owned(), value);
    }
    Ok(key)
}

fn attribute(value: &Value) -> Option<AttributeValue> {
    let Value::Object(typed) = value else {
        return None;
    };
    if typed.len() != 1 {
        return None;
    }
    match typed.iter().next()? {
        (kind, Value::String(text)) if kind == "S" && !text.is_empty() => {
            Some(AttributeValue::S(text.clone()))
        }
        (kind, Value::String(text)) if kind == "N" && !text.is_empty() => {
            Some(AttributeValue::N(text.clone()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect()
    }

    #[test]
    fn a_cursor_decodes_back_to_its_key() {
        let original = key(&[("id", "o1"), ("user_id", "u1"), ("user_created", "t#o1")]);
        let cursor = encode(&original).unwrap();
        assert!(!cursor.contains('=') && !cursor.contains('+') && !cursor.contains('/'));
        assert_eq!(
            decode(&cursor, &["id", "user_id", "user_created"]).unwrap(),
            original
        );
    }

    #[test]
    fn garbage_or_a_cursor_of_another_shape_is_invalid() {
        let product_cursor = encode(&key(&[("id", "p1")])).unwrap();
        for bad in ["", "!!!", "bm90IGpzb24", product_cursor.as_str()] {
            assert!(
                matches!(
                    decode(bad, &["id", "user_id", "user_created"]),
                    Err(StoreError::InvalidCursor)
                ),
                "{bad:?}"
            );
        }
        let typed_wrong = URL_SAFE_NO_PAD.encode(r#"{"id":{"BOOL":true}}"#);
        assert!(matches!(
            decode(&typed_wrong, &["id"]),
            Err(StoreError::InvalidCursor)
        ));
    }
}
