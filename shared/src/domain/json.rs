//! Reading request fields out of JSON with field-level messages (parse, don't validate).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{FieldErrors, Money, MoneyError};

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

/// A JSON request body, with the text of each top-level member exactly as the client wrote it.
/// serde_json keeps a number with a fraction or an exponent only as an `f64`, so `12.345e1` and
/// `123.45` would look alike; a price is checked on its written text instead.
#[derive(Debug)]
pub struct JsonBody {
    value: Value,
    written: BTreeMap<String, Box<RawValue>>,
}

impl JsonBody {
    /// Parses a body; not JSON at all is the error (a 400 for the caller to report).
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_slice(bytes)?;
        // A member repeated keeps its last value here as in `value`; not an object: no members.
        let written = serde_json::from_slice(bytes).unwrap_or_default();
        Ok(Self { value, written })
    }

    /// The parsed body.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// A top-level member's text as written (`1E2`, `"9.99"`), if present.
    fn written(&self, name: &str) -> Option<&str> {
        self.written.get(name).map(|raw| raw.get())
    }
}

/// Records every member of `object` that is not in `known` as an error at `{prefix}{member}`, so
/// a misspelt or server-owned field (`id`, `created_at`, a hold's `ttl`) is refused rather than
/// silently dropped while the client believes it applied (docs/decisions.md, "Request bodies").
pub(crate) fn refuse_unknown_members(
    object: &Value,
    prefix: &str,
    known: &[&str],
    errors: &mut FieldErrors,
) {
    if let Value::Object(members) = object {
        for name in members
            .keys()
            .filter(|name| !known.contains(&name.as_str()))
        {
            errors.add(
                format!("{prefix}{name}"),
                format!("is not a known field (expected {})", known.join(", ")),
            );
        }
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

/// An integer field within `range`. A number beyond it says "is out of range" whatever its form
/// (`1e30`, `10001`, `-1`); a fraction (`1.5`), an integral number written with a point or an
/// exponent inside the range (`2.0`, `1e2`) and any non-number are "must be an integer".
pub(crate) fn field_integer(
    value: Option<&Value>,
    path: &str,
    range: RangeInclusive<i64>,
    errors: &mut FieldErrors,
) -> Option<i64> {
    let out_of_range = || format!("is out of range ({} to {})", range.start(), range.end());
    match value {
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                if range.contains(&i) {
                    return Some(i);
                }
                errors.add(path, out_of_range());
                return None;
            }
            // A u64 above i64::MAX, or a number serde_json could only read as an f64.
            let f = n.as_f64().unwrap_or(f64::INFINITY);
            let beyond = !f.is_finite() || f < *range.start() as f64 || f > *range.end() as f64;
            if n.is_u64() || beyond {
                errors.add(path, out_of_range());
            } else {
                errors.add(path, "must be an integer");
            }
            None
        }
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
    let value = field_integer(object.get(name), name, 0..=i64::from(max), errors)?;
    u32::try_from(value).ok()
}

/// A money field of a body: a decimal string (`"9.99"`) or a JSON number (`9.99`), both judged on
/// the text as written by [`Money::parse`]: `^[0-9]+(\.[0-9]{1,2})?$`. So `1E2`, `12.345e1`,
/// `1.990`, `" 2.00 "` and `-1` are refused, never rounded or trimmed; an amount beyond the range
/// says "is out of range" in either form.
pub(crate) fn field_money(body: &JsonBody, name: &str, errors: &mut FieldErrors) -> Option<Money> {
    let parsed = match body.value().get(name) {
        Some(Value::String(s)) => Money::parse(s),
        Some(Value::Number(n)) => {
            // A JSON number is `-?digits(.digits)?([eE][+-]?digits)?`: without a sign and an
            // exponent it is exactly the string form.
            let written = body
                .written(name)
                .map_or_else(|| n.to_string(), str::to_owned);
            match Money::parse(&written) {
                Err(MoneyError::NotANumber) => Err(number_in_wrong_form(n)),
                other => other,
            }
        }
        Some(_) => {
            errors.add(name, "must be a decimal string such as \"9.99\"");
            return None;
        }
        None => {
            errors.add(name, "is required");
            return None;
        }
    };
    match parsed {
        Ok(money) => Some(money),
        Err(e) => {
            errors.add(name, e.to_string());
            None
        }
    }
}

/// Why a number written with an exponent is refused: its range first, so `1e300` says "is out of
/// range" rather than asking for another notation.
fn number_in_wrong_form(n: &serde_json::Number) -> MoneyError {
    match n.as_f64() {
        Some(f) if f < 0.0 => MoneyError::Negative,
        Some(f) if f.is_finite() && f <= 99_999_999.0 => MoneyError::NotANumber,
        _ => MoneyError::TooLarge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(text: &str) -> Result<Money, Vec<String>> {
        let body = JsonBody::parse(format!("{{\"price\": {text}}}").as_bytes()).unwrap();
        let mut errors = FieldErrors::default();
        field_money(&body, "price", &mut errors)
            .ok_or_else(|| errors.get("price").unwrap().to_vec())
    }

    fn quantity(text: &str) -> Result<i64, Vec<String>> {
        let value: Value = serde_json::from_str(text).unwrap();
        let mut errors = FieldErrors::default();
        field_integer(Some(&value), "q", 1..=10_000, &mut errors)
            .ok_or_else(|| errors.get("q").unwrap().to_vec())
    }

    #[test]
    fn a_price_is_judged_as_written_in_either_form() {
        assert_eq!(price("9.99").unwrap().to_string(), "9.99");
        assert_eq!(price("\"9.99\"").unwrap().to_string(), "9.99");
        assert_eq!(price("12").unwrap().to_string(), "12.00");
        assert_eq!(price("0.5").unwrap().to_string(), "0.50");
        for refused in [
            "1E2",
            "12.345e1",
            "1e0",
            "1.990",
            "\"1.990\"",
            "\" 2.00 \"",
            "\"2.00\\n\"",
            "1.999",
            "\"1e3\"",
            "true",
            "null",
        ] {
            assert!(price(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn an_out_of_range_price_says_out_of_range_in_either_form() {
        for big in [
            "1e300",
            "-1",
            "-1e3",
            "100000000",
            "\"100000000\"",
            "123456789012345678901234567890",
            "\"123456789012345678901234567890.123\"",
        ] {
            let messages = price(big).unwrap_err();
            assert!(messages[0].contains("out of range"), "{big}: {messages:?}");
        }
        assert!(!price("1E2").unwrap_err()[0].contains("out of range"));
    }

    #[test]
    fn an_out_of_range_integer_says_out_of_range_whatever_its_form() {
        assert_eq!(quantity("10000"), Ok(10_000));
        for big in [
            "0",
            "-1",
            "10001",
            "1e30",
            "18446744073709551616",
            "9223372036854775808",
            "1e5",
        ] {
            let messages = quantity(big).unwrap_err();
            assert!(messages[0].contains("out of range"), "{big}: {messages:?}");
        }
        for not_integer in ["1.5", "2.0", "1e2", "\"2\""] {
            assert_eq!(
                quantity(not_integer),
                Err(vec!["must be an integer".to_owned()]),
                "{not_integer}"
            );
        }
    }

    #[test]
    fn unknown_members_are_named() {
        let mut errors = FieldErrors::default();
        let body = serde_json::json!({"name": "x", "id": "p1", "created_at": "now"});
        refuse_unknown_members(&body, "", &["name", "price"], &mut errors);
        assert!(errors.get("id").is_some());
        assert!(errors.get("created_at").is_some());
        assert!(errors.get("name").is_none());
    }
}
