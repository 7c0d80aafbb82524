//! Building JSON responses.

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;

use super::request::TRACE_ID_HEADER;

/// A JSON response with the given status.
pub(crate) fn json(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let text =
        serde_json::to_string(body).expect("response bodies are plain data and always serialize");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(text))
        .expect("status and static headers are valid")
}

/// `{"data": ...}` with the given status.
pub(crate) fn data(status: StatusCode, data: &impl Serialize) -> Response<Body> {
    json(status, &json!({ "data": data }))
}

/// `{"data": [...], "next_cursor": ...}`.
pub(crate) fn page<T: Serialize>(items: &[T], next_cursor: Option<&str>) -> Response<Body> {
    json(
        StatusCode::OK,
        &json!({ "data": items, "next_cursor": next_cursor }),
    )
}

/// 204 with no body.
pub(crate) fn no_content() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("static response is valid")
}

/// Adds `X-Trace-Id` to every response.
pub(crate) fn with_trace_id(mut response: Response<Body>, trace_id: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(trace_id) {
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    response
}
