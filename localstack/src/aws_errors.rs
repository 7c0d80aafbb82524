//! DynamoDB's error answers as the local endpoint writes them (its awsJson1_0 protocol), shared by
//! the partition limiter and the fault injector so that both refuse exactly as AWS does.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

/// Content type of DynamoDB's JSON protocol.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// An answer in DynamoDB's JSON protocol with a fresh request id.
pub(crate) fn aws_error(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response.headers_mut().insert(
        "x-amzn-requestid",
        HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("local")),
    );
    response
}

/// `TransactionCanceledException` with one reason per action (`{"Code": ...}`), its message
/// listing the codes in order as DynamoDB's does.
pub(crate) fn transaction_canceled(reasons: Vec<Value>) -> Response<Body> {
    let codes: Vec<&str> = reasons
        .iter()
        .map(|r| r["Code"].as_str().unwrap_or("None"))
        .collect();
    let message = format!(
        "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
        codes.join(", ")
    );
    aws_error(
        StatusCode::BAD_REQUEST,
        &json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": message,
            "CancellationReasons": reasons,
        }),
    )
}
