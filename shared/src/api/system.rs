//! `GET /health`: whether DynamoDB and SQS answer.

use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

use crate::ports::Reachable;

use super::response;

/// 200 `ok` when both services answer, else 503 `degraded` naming the one that does not.
pub(crate) async fn health(dynamodb: &impl Reachable, sqs: &impl Reachable) -> Response<Body> {
    let (dynamodb_ok, sqs_ok) = tokio::join!(dynamodb.reachable(), sqs.reachable());
    let label = |ok: bool| if ok { "ok" } else { "unreachable" };
    let (status, text) = if dynamodb_ok && sqs_ok {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    };
    response::json(
        status,
        &json!({ "status": text, "services": { "dynamodb": label(dynamodb_ok), "sqs": label(sqs_ok) } }),
    )
}
