//! `GET /health`: whether every table and the order queue answer.

use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

use crate::ports::Reachable;

use super::response;

/// 200 `ok` when both services answer, else 503 `degraded` naming the service that does not and,
/// for DynamoDB, its tables that do not (`unreachable_tables`).
pub(crate) async fn health(dynamodb: &impl Reachable, sqs: &impl Reachable) -> Response<Body> {
    let (tables_down, queue_down) = tokio::join!(dynamodb.unreachable(), sqs.unreachable());
    let label = |down: &[&str]| if down.is_empty() { "ok" } else { "unreachable" };
    let services = json!({ "dynamodb": label(&tables_down), "sqs": label(&queue_down) });
    if tables_down.is_empty() && queue_down.is_empty() {
        return response::json(
            StatusCode::OK,
            &json!({ "status": "ok", "services": services }),
        );
    }
    let mut body = json!({ "status": "degraded", "services": services });
    if !tables_down.is_empty() {
        body["unreachable_tables"] = json!(tables_down);
    }
    response::json(StatusCode::SERVICE_UNAVAILABLE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service whose listed parts do not answer.
    struct Parts(Vec<&'static str>);

    impl Reachable for Parts {
        async fn unreachable(&self) -> Vec<&'static str> {
            self.0.clone()
        }
    }

    async fn answer(tables_down: Vec<&'static str>) -> (StatusCode, serde_json::Value) {
        let response = health(&Parts(tables_down), &Parts(Vec::new())).await;
        let status = response.status();
        let body = serde_json::from_slice(response.body().as_ref()).unwrap();
        (status, body)
    }

    #[tokio::test]
    async fn one_refused_table_makes_health_503_naming_it() {
        let (status, body) = answer(vec!["orders"]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            json!({
                "status": "degraded",
                "services": {"dynamodb": "unreachable", "sqs": "ok"},
                "unreachable_tables": ["orders"],
            })
        );
    }

    #[tokio::test]
    async fn every_table_answering_is_ok_without_a_table_list() {
        let (status, body) = answer(Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"status": "ok", "services": {"dynamodb": "ok", "sqs": "ok"}})
        );
    }
}
