//! What a function under measurement is started and invoked with: the settings of
//! `events/cargo-lambda.env` pointed at the in-process stack, and its sample event from
//! `events/<name>.json`, made fresh for each invocation (a new idempotency key, a token that is
//! valid now) so that every cold start does the same work as the first.

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use serde_json::{Value, json};

/// The product the invocations after the first one order, so that 50 orders per run for ten runs
/// never exhaust the sample product's stock (the demo products hold 500 at most).
pub const BENCH_PRODUCT: &str = "lambda-figures-stock";

/// The `KEY=VALUE` lines of a dotenv file such as `events/cargo-lambda.env` (`#` comments and
/// blank lines skipped), in file order.
pub fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_env(&text))
}

fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// `settings` with each key of `overrides` replaced (or added).
pub fn with_overrides(
    settings: &[(String, String)],
    overrides: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = settings
        .iter()
        .filter(|(key, _)| !overrides.iter().any(|(name, _)| name == key))
        .cloned()
        .collect();
    merged.extend(
        overrides
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone())),
    );
    merged
}

/// What Lambda itself sets in a function's environment (besides `AWS_LAMBDA_RUNTIME_API`) for a
/// 128 MB function named `name`.
pub fn lambda_environment(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "lambda-figures".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("TZ", ":UTC".into()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
    ]
}

/// A sample event, and how to make it fresh for each invocation.
#[derive(Debug, Clone)]
pub struct EventTemplate {
    event: Value,
    jwt_secret: Option<String>,
    webhook_secret: Option<String>,
    nonce: String,
}

impl EventTemplate {
    /// The event of `path`; bearer tokens in it are re-signed with `jwt_secret` when given.
    pub fn load(path: &Path, jwt_secret: Option<String>) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let event = serde_json::from_str(&text)
            .with_context(|| format!("parsing {} as JSON", path.display()))?;
        Ok(Self::literal(event, jwt_secret))
    }

    /// `event` itself.
    pub fn literal(event: Value, jwt_secret: Option<String>) -> Self {
        EventTemplate {
            event,
            jwt_secret,
            webhook_secret: None,
            nonce: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        }
    }

    /// Re-signs an `x-webhook-signature` header with `secret` at the time of each invocation (the
    /// sample's own signature is stale after five minutes).
    pub fn with_webhook_secret(mut self, secret: Option<String>) -> Self {
        self.webhook_secret = secret;
        self
    }

    /// The payload of invocation `invocation` (0: the cold start's) of run `run`. An HTTP event
    /// whose JSON body has an `idempotency_key` gets a key of its own, so every invocation places
    /// a new order; after the first, its `items` become one unit of [`BENCH_PRODUCT`].
    pub fn payload(&self, run: usize, invocation: usize) -> Vec<u8> {
        let mut event = self.event.clone();
        if let Some(secret) = &self.jwt_secret {
            refresh_token(&mut event, secret);
        }
        if let Some(body) = event.get("body").and_then(Value::as_str)
            && let Ok(Value::Object(mut body)) = serde_json::from_str::<Value>(body)
            && body.contains_key("idempotency_key")
        {
            body.insert(
                "idempotency_key".into(),
                format!("lambda-figures-{}-{run}-{invocation}", self.nonce).into(),
            );
            if invocation > 0 && body.contains_key("items") {
                body.insert(
                    "items".into(),
                    json!([{"product_id": BENCH_PRODUCT, "quantity": 1}]),
                );
            }
            event["body"] = Value::String(Value::Object(body).to_string());
        }
        // Last: the signature covers the body as sent.
        if let Some(secret) = &self.webhook_secret {
            resign_webhook(&mut event, secret);
        }
        serde_json::to_vec(&event).expect("a JSON value serializes")
    }
}

/// Signs the event's body afresh into its `x-webhook-signature` header, if it has one.
fn resign_webhook(event: &mut Value, secret: &str) {
    let body = event
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(header) = event
        .get_mut("headers")
        .and_then(|headers| headers.get_mut("x-webhook-signature"))
    {
        let now = chrono::Utc::now().timestamp();
        *header = Value::String(shared::domain::webhook::sign(
            secret.as_bytes(),
            now,
            body.as_bytes(),
        ));
    }
}

/// Replaces an `authorization: Bearer <HS256 JWT>` header by a token for the same subject and
/// role, signed with `secret` and valid for an hour: the sample's own may have expired.
fn refresh_token(event: &mut Value, secret: &str) {
    let Some(header) = event
        .get_mut("headers")
        .and_then(|headers| headers.get_mut("authorization"))
    else {
        return;
    };
    let Some(claims) = header
        .as_str()
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| token.split('.').nth(1))
        .and_then(|claims| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .ok()
        })
        .and_then(|claims| serde_json::from_slice::<Value>(&claims).ok())
    else {
        return;
    };
    let Some(sub) = claims["sub"].as_str() else {
        return;
    };
    let token = shared::auth::mint_hs256(
        secret,
        sub,
        claims["role"].as_str(),
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    *header = Value::String(format!("Bearer {token}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_env_file_is_read_as_key_value_lines_without_comments() {
        let settings = parse_env("# a comment\n\nAWS_REGION=us-east-1\n  JWT_SECRET = s=3 \n");

        assert_eq!(
            settings,
            vec![
                ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
                ("JWT_SECRET".to_owned(), "s=3".to_owned())
            ]
        );
    }

    #[test]
    fn overrides_replace_a_setting_and_add_missing_ones() {
        let settings = parse_env("AWS_ENDPOINT_URL=http://127.0.0.1:4566\nA=1\n");

        let merged = with_overrides(
            &settings,
            &[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".into()),
                ("B", "2".into()),
            ],
        );

        assert_eq!(
            merged,
            vec![
                ("A".to_owned(), "1".to_owned()),
                (
                    "AWS_ENDPOINT_URL".to_owned(),
                    "http://127.0.0.1:9".to_owned()
                ),
                ("B".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn each_order_invocation_gets_its_own_key_and_later_ones_the_bench_product() {
        let event = json!({
            "headers": {"authorization": format!("Bearer {}", shared::auth::mint_hs256("old", "dev-user", None, chrono::Utc::now()))},
            "body": r#"{"idempotency_key": "sample-order-1", "items": [{"product_id": "espresso-beans", "quantity": 2}]}"#,
        });
        let template = EventTemplate::literal(event, Some("new-secret".into()));

        let body = |payload: Vec<u8>| -> (Value, Value) {
            let event: Value = serde_json::from_slice(&payload).unwrap();
            (
                serde_json::from_str(event["body"].as_str().unwrap()).unwrap(),
                event["headers"]["authorization"].clone(),
            )
        };
        let (first, token) = body(template.payload(3, 0));
        let (later, _) = body(template.payload(3, 1));

        assert_ne!(first["idempotency_key"], "sample-order-1");
        assert_ne!(first["idempotency_key"], later["idempotency_key"]);
        assert_eq!(first["items"][0]["product_id"], "espresso-beans");
        assert_eq!(
            later["items"],
            json!([{"product_id": BENCH_PRODUCT, "quantity": 1}])
        );
        let authenticator =
            shared::auth::Authenticator::from_settings(&shared::config::AuthSettings {
                jwt_secret: Some("new-secret".into()),
                ..Default::default()
            });
        let token = token.as_str().unwrap().strip_prefix("Bearer ").unwrap();
        assert_eq!(
            authenticator
                .unwrap()
                .verify(token)
                .unwrap()
                .user_id
                .as_str(),
            "dev-user"
        );
    }

    #[test]
    fn an_event_without_a_key_is_sent_as_it_is() {
        let event = json!({"Records": [{"body": "{}"}]});
        let template = EventTemplate::literal(event.clone(), Some("secret".into()));

        let payload: Value = serde_json::from_slice(&template.payload(0, 5)).unwrap();

        assert_eq!(payload, event);
    }

    #[test]
    fn a_webhook_is_signed_over_the_body_it_is_sent_with() {
        let event = json!({
            "headers": {"x-webhook-signature": "t=1,v1=00"},
            "body": r#"{"idempotency_key":"k","order_id":"o","status":"success"}"#,
        });
        let template =
            EventTemplate::literal(event, None).with_webhook_secret(Some("whsec".into()));
        let sent: Value = serde_json::from_slice(&template.payload(0, 1)).unwrap();
        let body = sent["body"].as_str().unwrap();
        assert!(body.contains("lambda-figures-"), "a key of its own: {body}");
        shared::domain::webhook::verify(
            b"whsec",
            sent["headers"]["x-webhook-signature"].as_str(),
            body.as_bytes(),
            chrono::Utc::now(),
        )
        .unwrap();
    }
}
