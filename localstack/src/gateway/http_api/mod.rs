//! The HTTP API: routes each request by its route key, builds the payload v2 event, and runs the
//! handler on it (to its end, even if the client leaves); the function's response goes back as
//! API Gateway returns it.

mod event;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use chrono::Utc;
use http::{HeaderValue, StatusCode};
use tokio::net::TcpListener;

use self::event::{HttpCall, Invocation};
use super::HttpHandler;
use super::console::{self, ConsoleSettings};
use super::cors::CorsPolicy;
use super::metrics;
use super::openapi;
use super::routes::RouteTable;
use crate::metrics::MetricsBoard;
use crate::server::ServerTask;

/// API Gateway's payload limit: larger requests never reach a function.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// What every request of one gateway shares.
struct HttpGateway<H> {
    handler: H,
    routes: RouteTable,
    region: String,
    cors: CorsPolicy,
    /// How long a request's body may take to arrive ([`super::REQUEST_READ_TIMEOUT`] by default).
    read_timeout: Duration,
}

/// Serves the HTTP API on 127.0.0.1:`port` (0 = ephemeral) with `cors`, the developer console
/// (`GET /`) with `console`, and the sums of `metrics`; returns the task and the bound address.
pub(crate) async fn serve_http<H: HttpHandler>(
    handler: H,
    port: u16,
    region: &str,
    cors: CorsPolicy,
    console: ConsoleSettings,
    metrics: Arc<MetricsBoard>,
    read_timeout: Duration,
) -> anyhow::Result<(ServerTask, SocketAddr)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .context("binding the HTTP API")?;
    let addr = listener.local_addr()?;
    let gateway = Arc::new(HttpGateway {
        handler,
        routes: RouteTable::new(),
        region: region.to_owned(),
        cors,
        read_timeout,
    });
    // `GET /openapi.yaml` is the document; any other method there, and every other path, goes
    // through the API Gateway emulation (an unknown route is its 404). CORS covers both, so a
    // browser page on an allowed origin can load the document too.
    let router = Router::new()
        .route(
            openapi::PATH,
            axum::routing::get(openapi::serve_yaml).fallback(serve_request::<H>),
        )
        // The console's paths likewise: their own method served, any other to the API.
        .merge(console::routes(console, serve_request::<H>))
        .merge(metrics::routes(metrics, serve_request::<H>))
        .fallback(serve_request::<H>)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&gateway),
            apply_cors::<H>,
        ))
        .with_state(gateway);
    let task = ServerTask::spawn("http-gateway", move |stop| async move {
        if let Err(error) = super::serve_router(listener, router, stop, read_timeout).await {
            tracing::error!(%error, "HTTP API stopped");
        }
    });
    Ok((task, addr))
}

/// CORS as API Gateway applies it, before routing: preflights answered here, the configured
/// headers on every other response.
async fn apply_cors<H: HttpHandler>(
    State(gateway): State<Arc<HttpGateway<H>>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(preflight) = gateway.cors.preflight(request.method(), request.headers()) {
        return preflight;
    }
    let request_headers = request.headers().clone();
    let mut response = next.run(request).await;
    gateway.cors.apply(&request_headers, &mut response);
    response
}

async fn serve_request<H: HttpHandler>(
    State(gateway): State<Arc<HttpGateway<H>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let received_at = Utc::now();
    let (parts, body) = request.into_parts();
    let Some(route) = gateway.routes.find(&parts.method, parts.uri.path()) else {
        return gateway_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let declared_length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > MAX_REQUEST_BYTES as u64) {
        return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    let body = tokio::time::timeout(
        gateway.read_timeout,
        axum::body::to_bytes(body, MAX_REQUEST_BYTES),
    );
    let body = match body.await {
        Ok(Ok(body)) => body,
        // What API Gateway does with a client that stops sending: gives up, invoking nothing.
        Err(_) => return gateway_error(StatusCode::REQUEST_TIMEOUT, "Request Timeout"),
        Ok(Err(_)) => {
            return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        }
    };

    let invocation = Invocation {
        request_id: uuid::Uuid::new_v4().to_string(),
        received_at,
        account_id: crate::LOCAL_ACCOUNT_ID.to_owned(),
        region: gateway.region.clone(),
        trace: event::request_trace(&parts.headers, received_at),
    };
    let call = HttpCall {
        method: &parts.method,
        uri: &parts.uri,
        version: parts.version,
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip(),
    };
    let event = event::api_gateway_event(call, &route, &invocation);
    let request = match event::lambda_request(&event, &route, &invocation) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(%error, route = route.endpoint.route_key(), "the event does not deserialize as the runtime would");
            return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };

    // The invocation runs to its end even if the client goes away meanwhile (a buyer closing the
    // tab, a load tool stopping): API Gateway does not cancel a Lambda invocation whose caller
    // left, so this future, which axum drops with the connection, only waits for its answer.
    let endpoint = route.endpoint;
    let invocation_task = tokio::spawn({
        let gateway = Arc::clone(&gateway);
        async move { gateway.handler.call(endpoint, request).await }
    });
    let response = match invocation_task.await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(%error, route = endpoint.route_key(), "the function's invocation panicked");
            return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let mut response = into_http_response(response);
    if let Ok(id) = HeaderValue::from_str(&invocation.request_id) {
        response.headers_mut().insert("apigw-requestid", id);
    }
    response
}

/// The function's response as API Gateway returns it: status, headers and the body bytes.
fn into_http_response(response: lambda_http::Response<lambda_http::Body>) -> Response {
    let (parts, body) = response.into_parts();
    let body = match body {
        lambda_http::Body::Text(text) => Body::from(text),
        lambda_http::Body::Binary(bytes) => Body::from(bytes),
        _ => Body::empty(),
    };
    Response::from_parts(parts, body)
}

/// An error API Gateway answers itself, before or instead of the function: `{"message": ...}`.
fn gateway_error(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(
        serde_json::json!({ "message": message }).to_string(),
    ));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
