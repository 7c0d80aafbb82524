//! The limiter's side of DynamoDB's wire protocol: items in DynamoDB's JSON, error answers
//! (throttling, cancelled transactions, the ARNs they name), what a forwarded answer says was
//! done, and the in-process reader that calls Dynoxide's router.

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::{Charge, PartitionKey, Partitions, TARGET_PREFIX};
use crate::LOCAL_ACCOUNT_ID;
pub(super) use crate::aws_errors::aws_error;
use crate::aws_errors::{JSON_CONTENT_TYPE, transaction_canceled};

/// An item (or key) in DynamoDB's JSON: attribute name → `{"S": ...}`.
pub(super) type Item = Map<String, Value>;

/// What DynamoDB says when an on-demand table's key is throttled (the API reference's
/// cancellation reasons quote it).
const TABLE_MESSAGE: &str = "Throughput exceeds the current capacity of your table or index. \
    DynamoDB is automatically scaling your table or index so please try again shortly. If \
    exceptions persist, check if you have a hot key: \
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html";
/// The same for an on-demand GSI.
const INDEX_MESSAGE: &str = "Throughput exceeds the current capacity for one or more global \
    secondary indexes. DynamoDB is automatically scaling your index so please try again shortly.";

impl Partitions {
    /// `ThrottlingException` naming each refused table or index, for a read or a write.
    pub(super) fn throttled(&self, refused: &[PartitionKey], access: Access) -> Response<Body> {
        let mut reasons: Vec<Value> = Vec::new();
        for key in refused {
            let reason = json!({"reason": reason_of(key, access), "resource": self.arn(key)});
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        let message = if refused.iter().all(|k| k.index().is_some()) {
            INDEX_MESSAGE
        } else {
            TABLE_MESSAGE
        };
        // `throttlingReasons` is the member's wire name on ThrottlingException in DynamoDB's
        // model (ProvisionedThroughputExceededException spells it `ThrottlingReasons`).
        aws_error(
            StatusCode::BAD_REQUEST,
            &json!({
                "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "message": message,
                "throttlingReasons": reasons,
            }),
        )
    }

    /// `TransactionCanceledException`: `ThrottlingError` for each action charging a refused
    /// key, `None` for the others.
    pub(super) fn cancelled(
        &self,
        estimates: &[Vec<Charge>],
        refused: &[PartitionKey],
    ) -> Response<Body> {
        let reasons: Vec<Value> = estimates
            .iter()
            .map(|charges| {
                let hit: Vec<&PartitionKey> = charges
                    .iter()
                    .map(|c| &c.key)
                    .filter(|k| refused.contains(k))
                    .collect();
                match hit.first() {
                    None => json!({"Code": "None"}),
                    Some(_) if hit.iter().all(|k| k.index().is_some()) => {
                        json!({"Code": "ThrottlingError", "Message": INDEX_MESSAGE})
                    }
                    Some(_) => json!({"Code": "ThrottlingError", "Message": TABLE_MESSAGE}),
                }
            })
            .collect();
        transaction_canceled(reasons)
    }

    fn arn(&self, key: &PartitionKey) -> String {
        let path = match key.index() {
            Some((table, index)) => format!("{table}/index/{index}"),
            None => key.resource.clone(),
        };
        format!(
            "arn:aws:dynamodb:{}:{LOCAL_ACCOUNT_ID}:table/{path}",
            self.region
        )
    }
}

/// Whether a key's read or its write budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

fn reason_of(key: &PartitionKey, access: Access) -> &'static str {
    match (key.index(), access) {
        (Some(_), Access::Write) => "IndexWriteKeyRangeThroughputExceeded",
        (None, Access::Write) => "TableWriteKeyRangeThroughputExceeded",
        (Some(_), Access::Read) => "IndexReadKeyRangeThroughputExceeded",
        (None, Access::Read) => "TableReadKeyRangeThroughputExceeded",
    }
}

/// What DynamoDB did with a forwarded write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Written.
    Applied,
    /// A condition was false (or the transaction was cancelled): charged, nothing written.
    Refused,
    /// Refused as invalid: nothing charged.
    Invalid,
}

impl Outcome {
    pub(super) fn of(status: StatusCode, answer: &[u8]) -> Self {
        if status.is_success() {
            return Outcome::Applied;
        }
        let kind = serde_json::from_slice::<Value>(answer)
            .ok()
            .and_then(|v| v["__type"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if kind.ends_with("ConditionalCheckFailedException")
            || kind.ends_with("TransactionCanceledException")
        {
            Outcome::Refused
        } else {
            Outcome::Invalid
        }
    }
}

/// Calls Dynoxide's router in-process with the request's credentials.
pub(super) struct Reader<'a> {
    dynamodb: &'a axum::Router,
    auth: Vec<(http::HeaderName, HeaderValue)>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(dynamodb: &'a axum::Router, headers: &HeaderMap) -> Self {
        // Dynoxide checks that auth material is present (never the signature), as DynamoDB does.
        let auth = ["authorization", "x-amz-date", "x-amz-security-token"]
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?;
                Some((http::HeaderName::from_static(name), value.clone()))
            })
            .collect();
        Reader { dynamodb, auth }
    }

    /// A successful answer's JSON; `None` for an error or an unreadable answer.
    pub(super) async fn call(&self, operation: &str, body: &Value) -> Option<Value> {
        let mut request = Request::post("/")
            .header(http::header::CONTENT_TYPE, JSON_CONTENT_TYPE)
            .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
            .body(Body::from(body.to_string()))
            .ok()?;
        for (name, value) in &self.auth {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let mut router = self.dynamodb.clone();
        let response = match tower_service::Service::call(&mut router, request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if !response.status().is_success() {
            return None;
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The item at `key`, read consistently: `Some(None)` when there is none, `None` when the read
    /// failed.
    pub(super) async fn get_item(&self, table: &str, key: &Item) -> Option<Option<Item>> {
        let answer = self
            .call(
                "GetItem",
                &json!({"TableName": table, "Key": key, "ConsistentRead": true}),
            )
            .await?;
        Some(answer.get("Item").and_then(Value::as_object).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_table_or_index_by_arn() {
        let limiter = Partitions::new(Some(super::super::tests::limits(10.0)), "eu-west-1");
        let key = PartitionKey {
            resource: "orders/unsettled".into(),
            value: "PENDING#1".into(),
        };

        assert_eq!(
            limiter.arn(&key),
            "arn:aws:dynamodb:eu-west-1:000000000000:table/orders/index/unsettled"
        );
        assert_eq!(
            reason_of(&key, Access::Write),
            "IndexWriteKeyRangeThroughputExceeded"
        );
        assert_eq!(
            reason_of(&key, Access::Read),
            "IndexReadKeyRangeThroughputExceeded"
        );
    }
}
