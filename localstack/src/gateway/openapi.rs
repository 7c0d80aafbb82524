//! The HTTP API's description (`openapi.yaml` at the repository root), compiled in: served as
//! YAML at [`PATH`] next to the routes it describes, and as JSON to the developer console.

use std::sync::LazyLock;

use axum::body::Body;
use axum::response::Response;
use http::HeaderValue;

/// The document.
pub(super) const YAML: &str = include_str!("../../../openapi.yaml");
/// Where the local gateway serves [`YAML`] (not an API Gateway route).
pub(super) const PATH: &str = "/openapi.yaml";

/// The document as JSON, converted on first use: the console's page reads JSON without a YAML
/// parser.
pub(super) static JSON: LazyLock<Result<String, String>> = LazyLock::new(|| {
    let document: serde_json::Value = serde_norway::from_str(YAML)
        .map_err(|error| format!("openapi.yaml is not YAML: {error}"))?;
    serde_json::to_string(&document).map_err(|error| error.to_string())
});

/// `GET /openapi.yaml`: the document, as YAML.
pub(super) async fn serve_yaml() -> Response {
    let mut response = Response::new(Body::from(YAML));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml"),
    );
    response
}
