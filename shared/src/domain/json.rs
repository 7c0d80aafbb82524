//! Reading request fields out of JSON with field-level messages (parse, don't validate).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;
use serde_json::Value;

use super::{FieldErrors, Money};

/// Serializes a timestamp as RFC 3339 UTC with milliseconds (`2026-11-22T05:12:44.123Z`).
pub(crate) fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Like [`rfc3339`] for an optional timestamp (`null` when absent).
pub(crate) fn rfc3339_opt<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// A string field, or a message against `path`.
pub(crate) fn field_string<'a>(
    object: &'a Value,
    path: &str,
    errors: &mut FieldErrors,
) -> Option<&'a str> {
    let name = path.rsplit('.').next().unwrap_or(path);
    match object.get(name) {
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.add(path, "must be a string");
            None
        }
        None => {
            errors.add(path, "is required");
            None
        }
    }
}

/// An integer field bounded by `max`; fractions, strings and negatives are messages.
pub(crate) fn field_integer(
    value: Option<&Value>,
    path: &str,
    errors: &mut FieldErrors,
) -> Option<i64> {
    match value {
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Some(i),
            None => {
                errors.add(path, "must be an integer");
                None
            }
        },
        Some(_) => {
            errors.add(path, "must be an integer");
            None
        }
        None => {
            errors.add(path, "is required");
            None
        }
    }
}

/// A non-negative integer field up to `max`.
pub(crate) fn field_u32(
    object: &Value,
    name: &str,
    max: u32,
    errors: &mut FieldErrors,
) -> Option<u32> {
    let value = field_integer(object.get(name), name, errors)?;
    if (0..=i64::from(max)).contains(&value) {
        Some(value as u32)
    } else {
        errors.add(name, format!("must be an integer from 0 to {max}"));
        None
    }
}

/// A money field given as a decimal string (`"9.99"`) or a JSON number (`9.99`).
pub(crate) fn field_money(object: &Value, name: &str, errors: &mut FieldErrors) -> Option<Money> {
    // A JSON number prints back as its shortest exact form, so `1.999` stays three places and is refused.
    let text = match object.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            errors.add(name, "must be a decimal string such as \"9.99\"");
            return None;
        }
        None => {
            errors.add(name, "is required");
            return None;
        }
    };
    match Money::parse(&text) {
        Ok(money) => Some(money),
        Err(e) => {
            errors.add(name, e.to_string());
            None
        }
    }
}
