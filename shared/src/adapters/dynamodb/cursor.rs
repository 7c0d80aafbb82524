//! Opaque pagination cursors: a `LastEvaluatedKey` as JSON, in URL-safe base64 without padding.
//! A cursor is only trusted after its shape matches the key of the listing it is passed to.

use std::collections::HashMap;

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

/// Longest cursor accepted: a products key is about 200 characters and an orders key about 500
/// once encoded; anything far longer was not handed out here.
const MAX_CURSOR_CHARS: usize = 2048;

/// Decodes a cursor into the string values of exactly the key attributes `attributes`. Every key
/// attribute of the listed tables and indexes is a string (`S`), so a number, another type, an
/// empty string or a missing or extra attribute is [`StoreError::InvalidCursor`]. The caller then
/// parses each value into its domain type, so DynamoDB is never asked with a key it would refuse.
pub(super) fn decode(
    cursor: &str,
    attributes: &[&str],
) -> Result<HashMap<String, String>, StoreError> {
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(StoreError::InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(StoreError::InvalidCursor);
    };
    if object.len() != attributes.len() {
        return Err(StoreError::InvalidCursor);
    }
    attributes
        .iter()
        .map(|name| {
            let value = object
                .get(*name)
                .and_then(string_attribute)
                .ok_or(StoreError::InvalidCursor)?;
            Ok(((*name).to_owned(), value))
        })
        .collect()
}

/// The text of `{"S": "<non-empty>"}`; anything else is not a key attribute of ours.
fn string_attribute(value: &Value) -> Option<String> {
    let Value::Object(typed) = value else {
        return None;
    };
    match (typed.len(), typed.get("S")) {
        (1, Some(Value::String(text))) if !text.is_empty() => Some(text.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A forged cursor (any text) is decoded or refused as invalid, never a panic, and what
        /// is decoded has exactly the listing's key attributes.
        #[test]
        fn any_text_is_a_cursor_or_invalid(text in "[A-Za-z0-9_=+/-]{0,300}|.{0,64}") {
            if let Ok(values) = decode(&text, &["id"]) {
                proptest::prop_assert_eq!(values.len(), 1);
                proptest::prop_assert!(!values["id"].is_empty());
            }
        }

        /// Well-formed base64 of JSON-like text, the forgery a client can make by hand, is
        /// decoded only into exactly the listing's string attributes.
        #[test]
        fn forged_json_cursors_are_refused_unless_shaped_like_a_key(
            json in r#"\{("id":)?(\{"S":)?.{0,30}\}?\}"#,
        ) {
            let forged = URL_SAFE_NO_PAD.encode(&json);
            if let Ok(values) = decode(&forged, &["id"]) {
                let expected: Value =
                    serde_json::json!({"id": {"S": values["id"]}});
                proptest::prop_assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), expected);
            }
        }

        /// A cursor handed out decodes back to its key, whatever the key's text.
        #[test]
        fn a_handed_out_cursor_decodes_to_its_key(id in ".{1,40}", user in ".{1,40}") {
            let cursor = encode(&key(&[("id", &id), ("user_id", &user)])).unwrap();
            proptest::prop_assert_eq!(
                decode(&cursor, &["id", "user_id"]).unwrap(),
                strings(&[("id", &id), ("user_id", &user)])
            );
            proptest::prop_assert!(decode(&cursor, &["id"]).is_err());
        }
    }

    fn key(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect()
    }

    fn strings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_cursor_decodes_back_to_its_key() {
        let pairs = [("id", "o1"), ("user_id", "u1"), ("user_created", "t#o1")];
        let cursor = encode(&key(&pairs)).unwrap();
        assert!(!cursor.contains('=') && !cursor.contains('+') && !cursor.contains('/'));
        assert_eq!(
            decode(&cursor, &["id", "user_id", "user_created"]).unwrap(),
            strings(&pairs)
        );
    }

    #[test]
    fn garbage_or_a_cursor_of_another_shape_is_invalid() {
        let product_cursor = encode(&key(&[("id", "p1")])).unwrap();
        let too_long = "A".repeat(MAX_CURSOR_CHARS + 4);
        for bad in [
            "",
            "!!!",
            "bm90IGpzb24",
            product_cursor.as_str(),
            too_long.as_str(),
        ] {
            assert!(
                matches!(
                    decode(bad, &["id", "user_id", "user_created"]),
                    Err(StoreError::InvalidCursor)
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_key_attribute_that_is_not_a_non_empty_string_is_invalid() {
        for json in [
            r#"{"id":{"N":"1"}}"#,
            r#"{"id":{"BOOL":true}}"#,
            r#"{"id":{"S":""}}"#,
            r#"{"id":{"S":7}}"#,
            r#"{"id":{"S":"a","N":"1"}}"#,
            r#"{"id":"p1"}"#,
            r#"{"id":{"S":"p1"},"extra":{"S":"x"}}"#,
            r#"["id"]"#,
        ] {
            assert!(
                matches!(
                    decode(&URL_SAFE_NO_PAD.encode(json), &["id"]),
                    Err(StoreError::InvalidCursor)
                ),
                "{json}"
            );
        }
    }
}
