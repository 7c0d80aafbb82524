//! Payment webhooks: the signed notice a payment provider sends when it has settled a charge,
//! and the signature scheme, Stripe's: `X-Webhook-Signature: t=<unix seconds>,v1=<hex
//! HMAC-SHA256 of "<t>.<raw body>">`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::json::field_string;
use super::{FieldErrors, IdempotencyKey, OrderId, PaymentOutcome};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";

/// How far the signed timestamp may be from now, either way: a captured delivery cannot be
/// replayed later than this.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a signature was refused. Every kind is 401; the kind goes to the log only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header.
    #[error("the webhook signature header is missing")]
    Missing,
    /// Not `t=<seconds>,v1=<hex>`.
    #[error("the webhook signature header is malformed")]
    Malformed,
    /// The timestamp is too far from now.
    #[error("the webhook signature is stale")]
    Stale,
    /// No `v1` matches.
    #[error("the webhook signature does not match")]
    Mismatch,
}

/// The header value for `body` signed with `secret` at `timestamp` (what a provider sends).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Checks a header against `body`: the timestamp within [`SIGNATURE_TOLERANCE`] of `now`, and one
/// of its `v1` entries equal to the HMAC, compared in constant time.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            Some(("v1", value)) => candidates.push(decode_hex(value)?),
            // Other schemes (v0, ...) are ignored, as Stripe's clients do.
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let age = now.timestamp().abs_diff(timestamp);
    if age > SIGNATURE_TOLERANCE.as_secs() {
        return Err(SignatureError::Stale);
    }
    let matches = candidates
        .iter()
        .any(|tag| mac(secret, timestamp, body).verify_slice(tag).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn decode_hex(text: &str) -> Result<Vec<u8>, SignatureError> {
    if text.len() % 2 != 0 {
        return Err(SignatureError::Malformed);
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or(SignatureError::Malformed)
        })
        .collect()
}

/// A validated webhook body: `{idempotency_key, order_id, status: "success"|"failure", reason?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotice {
    /// The provider's key for this notice: a redelivery carries the same one.
    pub idempotency_key: IdempotencyKey,
    /// The order it settles (it may not exist yet).
    pub order_id: OrderId,
    /// What the provider decided.
    pub outcome: PaymentOutcome,
}

/// The reason an order fails when the notice gives none.
pub const DEFAULT_DECLINE_REASON: &str = "declined by the payment provider";

impl PaymentNotice {
    /// Parses a body, collecting every bad field.
    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        if !body.is_object() {
            return Err(FieldErrors::single("body", "must be a JSON object"));
        }
        let mut errors = FieldErrors::default();
        let key = field_string(body, "idempotency_key", &mut errors).and_then(|text| {
            IdempotencyKey::parse(text)
                .map_err(|msg| errors.add("idempotency_key", msg))
                .ok()
        });
        let order_id = field_string(body, "order_id", &mut errors).and_then(|text| {
            OrderId::parse(text)
                .map_err(|msg| errors.add("order_id", msg))
                .ok()
        });
        let reason = match body.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if (1..=500).contains(&text.chars().count()) => {
                Some(text.clone())
            }
            Some(_) => {
                errors.add("reason", "must be a string of 1 to 500 characters");
                None
            }
        };
        let outcome = match field_string(body, "status", &mut errors) {
            Some("success") => Some(PaymentOutcome::Approved),
            Some("failure") => Some(PaymentOutcome::Declined {
                reason: reason.unwrap_or_else(|| DEFAULT_DECLINE_REASON.to_owned()),
            }),
            Some(_) => {
                errors.add("status", "must be \"success\" or \"failure\"");
                None
            }
            None => None,
        };
        match (key, order_id, outcome) {
            (Some(idempotency_key), Some(order_id), Some(outcome)) if errors.is_empty() => {
                Ok(PaymentNotice {
                    idempotency_key,
                    order_id,
                    outcome,
                })
            }
            _ => Err(errors),
        }
    }

    /// What the notice says, so a key reused with another notice is detected.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.order_id.as_str().as_bytes());
        hasher.update([0]);
        match &self.outcome {
            PaymentOutcome::Approved => hasher.update(b"success"),
            PaymentOutcome::Declined { reason } => {
                hasher.update(b"failure\0");
                hasher.update(reason.as_bytes());
            }
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"whsec";

    #[test]
    fn a_signature_made_with_the_secret_verifies_and_any_change_does_not() {
        let now = Utc::now();
        let body = br#"{"a":1}"#;
        let header = sign(SECRET, now.timestamp(), body);
        assert_eq!(verify(SECRET, Some(&header), body, now), Ok(()));
        assert_eq!(
            verify(b"other", Some(&header), body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some(&header), br#"{"a":2}"#, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, None, body, now),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=0",
            "t=1,v1=zz",
            "garbage",
        ] {
            assert_eq!(
                verify(SECRET, Some(bad), body, now),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_timestamp_more_than_300_seconds_away_is_stale_either_way() {
        let now = Utc::now();
        let body = b"{}";
        for offset in [-301, 301] {
            let header = sign(SECRET, now.timestamp() + offset, body);
            assert_eq!(
                verify(SECRET, Some(&header), body, now),
                Err(SignatureError::Stale)
            );
        }
        for offset in [-300, 300] {
            let header = sign(SECRET, now.timestamp() + offset, body);
            assert_eq!(verify(SECRET, Some(&header), body, now), Ok(()));
        }
    }

    #[test]
    fn any_matching_v1_entry_is_enough_as_during_a_secret_rotation() {
        let now = Utc::now();
        let body = b"{}";
        let good = sign(SECRET, now.timestamp(), body);
        let tag = good.split("v1=").nth(1).unwrap();
        let header = format!(
            "t={},v1={},v0=ignored,v1={tag}",
            now.timestamp(),
            "00".repeat(32)
        );
        assert_eq!(verify(SECRET, Some(&header), body, now), Ok(()));
    }

    #[test]
    fn the_body_names_a_key_an_order_and_success_or_failure() {
        let notice = PaymentNotice::parse(
            &json!({"idempotency_key": "evt_1", "order_id": "o1", "status": "failure"}),
        )
        .unwrap();
        assert_eq!(
            notice.outcome,
            PaymentOutcome::Declined {
                reason: DEFAULT_DECLINE_REASON.to_owned()
            }
        );
        // Members a provider adds to its events are ignored, unlike in bodies clients write.
        let with_more = json!({"idempotency_key": "evt_2", "order_id": "o1", "status": "success",
            "livemode": true, "amount_received": 1490});
        assert_eq!(
            PaymentNotice::parse(&with_more).unwrap().outcome,
            PaymentOutcome::Approved
        );
        let errors = PaymentNotice::parse(&json!({"order_id": "", "status": "maybe"})).unwrap_err();
        for field in ["idempotency_key", "order_id", "status"] {
            assert!(errors.get(field).is_some(), "{field}");
        }
    }
}
