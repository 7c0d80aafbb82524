//! The WebSocket API's management API (`POST`/`GET`/`DELETE /@connections/{connectionId}`), in the
//! wire format the real aws-sdk-apigatewaymanagement client expects, so the notifier pushes through
//! it unchanged.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use http::{HeaderValue, Method, StatusCode};

use super::connections::Connections;
use crate::conditions::Conditions;
use crate::conditions::latency::LatencyClass;
use crate::gateway::request_parts::percent_decode;

/// The management API's largest `PostToConnection` payload (API Gateway's 128 KB message limit).
const MAX_POST_BYTES: usize = 128 * 1024;

/// The path segment that starts the management API, after an optional stage.
const MANAGEMENT_PREFIX: &str = "@connections";

/// `/@connections/{id}` or `/{stage}/@connections/{id}`: the connection id, percent-decoded.
pub(super) fn management_connection_id(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = match segments.as_slice() {
        [MANAGEMENT_PREFIX, id] | [_, MANAGEMENT_PREFIX, id] => *id,
        _ => return None,
    };
    (!id.is_empty()).then(|| percent_decode(id))
}

/// The management API: `PostToConnection` (delayed by AWS's latency when `AWS_LATENCY` is on),
/// `GetConnection`, `DeleteConnection`.
pub(super) async fn manage(
    connections: &Connections,
    conditions: &Conditions,
    request: Request,
    connection_id: &str,
) -> Response {
    let method = request.method().clone();
    match method {
        Method::POST => {
            conditions
                .delayed(
                    LatencyClass::ApigwPostToConnection,
                    post_to_connection(connections, request, connection_id),
                )
                .await
        }
        Method::GET => {
            let Some(connection) = connections.describe(connection_id) else {
                return gone();
            };
            let body = serde_json::json!({
                "connectedAt": connection.peer.connected_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "identity": {
                    "sourceIp": connection.peer.source_ip.to_string(),
                    "userAgent": connection.peer.user_agent,
                },
                "lastActiveAt": connection.last_active_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            });
            json_response(StatusCode::OK, &body)
        }
        Method::DELETE => match connections.delete(connection_id) {
            true => StatusCode::NO_CONTENT.into_response(),
            false => gone(),
        },
        _ => aws_error(
            StatusCode::FORBIDDEN,
            Some("ForbiddenException"),
            "Missing Authentication Token",
        ),
    }
}

/// `PostToConnection`: the payload to the connection, or 410 when it is gone.
async fn post_to_connection(
    connections: &Connections,
    request: Request,
    connection_id: &str,
) -> Response {
    let Ok(data) = axum::body::to_bytes(request.into_body(), MAX_POST_BYTES).await else {
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("PayloadTooLargeException"),
            "Message too long",
        );
    };
    match connections.post(connection_id, data) {
        true => StatusCode::OK.into_response(),
        false => gone(),
    }
}

/// 410 for an unknown or closed connection, as API Gateway answers it: the restJson1 error type in
/// `x-amzn-ErrorType`, which the SDK maps to `GoneException`, and a `{"message": ...}` body.
fn gone() -> Response {
    aws_error(
        StatusCode::GONE,
        Some("GoneException"),
        "The connection is gone",
    )
}

/// An error in API Gateway's format: `{"message": ...}` and, if given, the `x-amzn-ErrorType`.
pub(super) fn aws_error(
    status: StatusCode,
    error_type: Option<&'static str>,
    message: &str,
) -> Response {
    let mut response = json_response(status, &serde_json::json!({ "message": message }));
    if let Some(error_type) = error_type {
        response
            .headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    }
    response
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_paths_with_or_without_a_stage_give_the_decoded_id() {
        assert_eq!(
            management_connection_id("/@connections/abc%3D").as_deref(),
            Some("abc=")
        );
        assert_eq!(
            management_connection_id("/prod/@connections/abc").as_deref(),
            Some("abc")
        );
        assert_eq!(management_connection_id("/"), None);
        assert_eq!(management_connection_id("/@connections/"), None);
        assert_eq!(management_connection_id("/@connections/a/b"), None);
        assert_eq!(management_connection_id("/prod/other/abc"), None);
    }
}
