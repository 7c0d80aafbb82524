//! The business metrics on the HTTP API's port: `GET /_local/metrics` (JSON, `?reset=true` starts
//! afresh) and `GET /metrics` (Prometheus text format, for a scraper). Local stack only; in AWS
//! the same lines become CloudWatch metrics.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::get;
use http::{HeaderValue, header};

use crate::metrics::MetricsBoard;

/// Where the JSON report answers.
pub(crate) const METRICS_JSON_PATH: &str = "/_local/metrics";
/// Where the Prometheus text answers.
pub(crate) const METRICS_TEXT_PATH: &str = "/metrics";

/// Both paths answer `GET`; any other method goes to `api`, the API Gateway emulation.
pub(crate) fn routes<S, A, T>(board: Arc<MetricsBoard>, api: A) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    A: Handler<T, S>,
    T: 'static,
{
    let json_board = Arc::clone(&board);
    let report = move |Query(query): Query<HashMap<String, String>>| async move {
        let reset = query.get("reset").is_some_and(|v| v == "true");
        let body = json_board.report(reset).to_string();
        response(body, "application/json")
    };
    let text = move || async move {
        response(
            board.prometheus(),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    Router::new()
        .route(METRICS_JSON_PATH, get(report).fallback(api.clone()))
        .route(METRICS_TEXT_PATH, get(text).fallback(api))
}

fn response(body: String, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
