//! The injected answers, in each service's wire format, and what a DynamoDB request names.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

use super::FaultKind;
use crate::aws_errors::{aws_error, transaction_canceled};

/// What a DynamoDB request names: its tables, and how many actions a transaction holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Named {
    pub tables: Vec<String>,
    pub actions: usize,
}

/// The tables a DynamoDB JSON request names (`TableName`, each `TransactItems` action's, each
/// `RequestItems` key), and its number of transaction actions. An unreadable body names nothing.
pub(crate) fn table_names(body: &[u8]) -> Named {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return Named::default();
    };
    let mut tables = Vec::new();
    if let Some(table) = request["TableName"].as_str() {
        tables.push(table.to_owned());
    }
    let actions = request["TransactItems"].as_array().map_or(0, |items| {
        for item in items {
            if let Some(action) = item.as_object().and_then(|a| a.values().next())
                && let Some(table) = action["TableName"].as_str()
            {
                tables.push(table.to_owned());
            }
        }
        items.len()
    });
    if let Some(batch) = request["RequestItems"].as_object() {
        tables.extend(batch.keys().cloned());
    }
    tables.sort();
    tables.dedup();
    Named { tables, actions }
}

/// Builds the injected answers.
pub(crate) struct FaultResponse;

impl FaultResponse {
    /// DynamoDB's answer for `fault` to `operation` (`actions`: a transaction's action count).
    pub(crate) fn dynamodb(fault: FaultKind, operation: &str, actions: usize) -> Response<Body> {
        let dynamodb = |status, error: &str, message: &str| {
            aws_error(
                status,
                &json!({
                    "__type": format!("com.amazonaws.dynamodb.v20120810#{error}"),
                    "message": message,
                }),
            )
        };
        match fault {
            FaultKind::TransactionConflict if operation == "TransactWriteItems" => {
                // The conflict on the first action, as DynamoDB names the item another
                // transaction holds; the other actions did not run.
                let reasons: Vec<Value> = (0..actions.max(1))
                    .map(|i| match i {
                        0 => json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}),
                        _ => json!({"Code": "None"}),
                    })
                    .collect();
                transaction_canceled(reasons)
            }
            FaultKind::TransactionConflict => dynamodb(
                StatusCode::BAD_REQUEST,
                "TransactionConflictException",
                "Transaction is ongoing for the item",
            ),
            FaultKind::ProvisionedThroughputExceeded => dynamodb(
                StatusCode::BAD_REQUEST,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded. \
                 Consider increasing your provisioning level with the UpdateTable API.",
            ),
            FaultKind::Throttling => aws_error(
                StatusCode::BAD_REQUEST,
                &json!({
                    "__type": "com.amazon.coral.availability#ThrottlingException",
                    "message": "Rate of requests exceeds the allowed throughput.",
                }),
            ),
            _ => dynamodb(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Internal server error (injected)",
            ),
        }
    }

    /// SQS's answer for `fault`, in its JSON protocol with the query-compatible error header the
    /// SDK reads the code from.
    pub(crate) fn sqs(fault: FaultKind) -> Response<Body> {
        let (status, code, fault_by, message) = match fault {
            FaultKind::Throttling => (
                StatusCode::BAD_REQUEST,
                "RequestThrottled",
                "Sender",
                "Rate exceeded",
            ),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "Receiver",
                "We encountered an internal error. Please try again. (injected)",
            ),
        };
        let mut response = aws_error(
            status,
            &json!({ "__type": format!("com.amazonaws.sqs#{code}"), "message": message }),
        );
        if let Ok(value) = HeaderValue::from_str(&format!("{code};{fault_by}")) {
            response.headers_mut().insert("x-amzn-query-error", value);
        }
        response
    }

    /// The management API's answer for `fault` (restJson1: the type in `x-amzn-errortype`).
    pub(crate) fn apigw(fault: FaultKind) -> Response<Body> {
        let (status, error_type, message) = match fault {
            FaultKind::Throttling => (
                StatusCode::TOO_MANY_REQUESTS,
                "LimitExceededException",
                "Rate exceeded",
            ),
            FaultKind::Gone => (StatusCode::GONE, "GoneException", "The connection is gone"),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
                "Internal server error (injected)",
            ),
        };
        let mut response = Response::new(Body::from(json!({ "message": message }).to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_names_every_action_table_once() {
        let body = br#"{"TransactItems":[{"Update":{"TableName":"products"}},{"Put":{"TableName":"orders"}},{"Put":{"TableName":"orders"}}]}"#;
        assert_eq!(
            table_names(body),
            Named {
                tables: vec!["orders".into(), "products".into()],
                actions: 3
            }
        );
        assert_eq!(
            table_names(br#"{"RequestItems":{"a":[],"b":[]}}"#).tables,
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert_eq!(table_names(b"not json"), Named::default());
    }
}
