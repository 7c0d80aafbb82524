//! The AWS endpoint's layers beyond routing: AWS's conditions on a DynamoDB request (latency and
//! transaction conflicts, `crate::conditions`) and the read side of the partition limiter.

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, Request, Response, StatusCode};

use super::{AwsFront, plain_response};
use crate::conditions::conflicts::{ConflictOperation, Hold, ItemId, transact_get_items};
use crate::conditions::latency::LatencyClass;
use crate::partitions::WriteOperation;

impl AwsFront {
    /// A DynamoDB request under AWS's conditions: its item conflicts checked when it arrives,
    /// then half its latency, the limiter and DynamoDB, the rest of its latency; the items it
    /// writes stay held until it answers.
    pub(super) async fn route_with_conditions(self, request: Request<Body>) -> Response<Body> {
        let target = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let conditions = Arc::clone(&self.conditions);
        let delay = conditions.delay(LatencyClass::of_target(target.as_deref()));
        let mut hold: Option<Hold> = None;
        let mut request = request;
        if let (Some(conflicts), Some(operation)) = (
            conditions.conflicts(),
            ConflictOperation::from_target(target.as_deref()),
        ) {
            let (parts, body) = request.into_parts();
            let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
                return plain_response(StatusCode::BAD_REQUEST, "unreadable request body");
            };
            match self
                .items_of(operation, target.as_deref(), &parts.headers, &body)
                .await
            {
                // Malformed, or about an unknown table: DynamoDB's own answer says which.
                None => {}
                Some(items) => match conflicts.check(operation, items) {
                    Ok(held) => hold = held,
                    Err(conflict) => {
                        if let Some(delay) = &delay {
                            delay.before().await;
                            delay.after().await;
                        }
                        return conflict.response();
                    }
                },
            }
            request = Request::from_parts(parts, Body::from(body));
        }
        if let Some(delay) = &delay {
            delay.before().await;
        }
        let response = self.route_to_limiter(request).await;
        if let Some(delay) = &delay {
            delay.after().await;
        }
        drop(hold);
        response
    }

    /// The items a request checked for conflicts touches, in request order.
    async fn items_of(
        &self,
        operation: ConflictOperation,
        target: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Vec<ItemId>> {
        let request: serde_json::Value = serde_json::from_slice(body).ok()?;
        if operation == ConflictOperation::TransactGet {
            return transact_get_items(&request);
        }
        let write = WriteOperation::from_target(target)?;
        let keys = self
            .partitions
            .item_keys(&self.dynamodb, headers, write, &request)
            .await?;
        Some(
            keys.iter()
                .map(|(table, key)| ItemId::new(table, key))
                .collect(),
        )
    }
}
