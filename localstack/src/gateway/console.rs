//! The developer console (`GET /`): a static page compiled into the binary, its configuration, the
//! HTTP API's description as JSON, and development tokens minted with the stack's own HS256
//! secret. Local stack only: no Lambda serves any of this, so a deployed stack never mints tokens.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use shared::domain::{HoldStatus, MAX_NAME_CHARS, MAX_ORDER_LINES, MAX_QUANTITY, OrderStatus};

use super::openapi;

const INDEX_HTML: &str = include_str!("../../console/index.html");
const CONSOLE_CSS: &str = include_str!("../../console/console.css");

/// The page's ES modules (`localstack/console/js/`), served at `/console/js/<name>`; `main.js` is
/// the entry point `index.html` loads, and imports the others.
const MODULES: &[(&str, &str)] = &[
    ("api-docs.js", include_str!("../../console/js/api-docs.js")),
    ("api.js", include_str!("../../console/js/api.js")),
    ("dom.js", include_str!("../../console/js/dom.js")),
    ("events.js", include_str!("../../console/js/events.js")),
    ("facts.js", include_str!("../../console/js/facts.js")),
    (
        "flash-sale.js",
        include_str!("../../console/js/flash-sale.js"),
    ),
    ("holds.js", include_str!("../../console/js/holds.js")),
    ("main.js", include_str!("../../console/js/main.js")),
    ("metrics.js", include_str!("../../console/js/metrics.js")),
    ("orders.js", include_str!("../../console/js/orders.js")),
    ("products.js", include_str!("../../console/js/products.js")),
    (
        "sale-charts.js",
        include_str!("../../console/js/sale-charts.js"),
    ),
    ("sign-in.js", include_str!("../../console/js/sign-in.js")),
    ("state.js", include_str!("../../console/js/state.js")),
];

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// How long a development token is valid: long enough for a session, short enough that a token
/// copied out of the page does not outlive it by much.
const DEV_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// The longest `sub` a development token may carry.
const MAX_SUB_CHARS: usize = 64;

/// What the console needs from the stack.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleSettings {
    /// The WebSocket API's URL, e.g. `ws://127.0.0.1:3001`, for the page's default.
    pub(crate) ws_url: String,
    /// The HS256 secret the stack verifies tokens with; `None` when it verifies RS256 tokens
    /// (`JWT_PUBLIC_KEY`), which it cannot sign, so the page has no development tokens.
    pub(crate) jwt_secret: Option<String>,
}

/// The console's routes. Each path answers its own method (`GET`, or `POST` for the token); any
/// other method on it goes to `api`, the API Gateway emulation, exactly as before the console
/// existed (so the API's 404 for, say, `POST /` is unchanged).
pub(crate) fn routes<S, A, T>(settings: ConsoleSettings, api: A) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    A: Handler<T, S>,
    T: 'static,
{
    let settings = Arc::new(settings);
    let config = {
        let settings = Arc::clone(&settings);
        move || async move { config_json(&settings) }
    };
    let dev_token = move |body: Bytes| async move { dev_token(&settings, &body, Utc::now()) };
    let mut router = Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }).fallback(api.clone()),
        )
        .route(
            "/console/console.css",
            get(|| async { asset(CONSOLE_CSS, "text/css; charset=utf-8") }).fallback(api.clone()),
        );
    for &(name, body) in MODULES {
        router = router.route(
            &format!("/console/js/{name}"),
            get(move || async move { asset(body, JAVASCRIPT) }).fallback(api.clone()),
        );
    }
    router
        .route("/console/config.json", get(config).fallback(api.clone()))
        .route(
            "/console/facts.json",
            get(|| async { json(StatusCode::OK, &facts()) }).fallback(api.clone()),
        )
        .route(
            "/console/openapi.json",
            get(|| async { openapi_json() }).fallback(api.clone()),
        )
        .route("/console/dev-token", post(dev_token).fallback(api))
}

/// A file of the page; `no-cache` so an edited page shows after a rebuild without a hard reload.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /console/config.json`: the page's defaults. `api_url` is empty: the page is served by the
/// HTTP API itself, so same-origin requests reach it.
fn config_json(settings: &ConsoleSettings) -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({
            "api_url": "",
            "ws_url": settings.ws_url,
            "dev_tokens": settings.jwt_secret.is_some(),
        }),
    )
}

/// `GET /console/facts.json`: what the page would otherwise copy from the domain, so the code
/// stays the one list: the order statuses (lifecycle order), the terminal ones, the ones whose
/// order still holds its units (stock conservation), the ones an order can be cancelled from, a
/// hold's active status, and the limits of an order line and a product name.
fn facts() -> serde_json::Value {
    let statuses = |keep: fn(OrderStatus) -> bool| -> Vec<&'static str> {
        OrderStatus::ALL
            .into_iter()
            .filter(|status| keep(*status))
            .map(OrderStatus::as_str)
            .collect()
    };
    serde_json::json!({
        "order_statuses": statuses(|_| true),
        "terminal_statuses": statuses(OrderStatus::is_terminal),
        "stock_holding_statuses": statuses(OrderStatus::holds_stock),
        "cancellable_statuses": statuses(|status| status.can_transition_to(OrderStatus::Cancelled)),
        "active_hold_status": HoldStatus::Active.as_str(),
        "max_quantity": MAX_QUANTITY,
        "max_order_lines": MAX_ORDER_LINES,
        "max_product_name_chars": MAX_NAME_CHARS,
    })
}

/// `GET /console/openapi.json`.
fn openapi_json() -> Response {
    match &*openapi::JSON {
        Ok(document) => {
            let mut response = asset("", "application/json");
            *response.body_mut() = Body::from(document.as_str());
            response
        }
        Err(message) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "message": message }),
        ),
    }
}

/// The body of `POST /console/dev-token`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenRequest {
    sub: String,
    #[serde(default)]
    admin: bool,
}

/// Whether `sub` is 1 to 64 of `A-Z a-z 0-9 _ . -`: a user id that is safe in a URL, a log line
/// and a DynamoDB key alike.
fn is_valid_sub(sub: &str) -> bool {
    (1..=MAX_SUB_CHARS).contains(&sub.len())
        && sub
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `POST /console/dev-token`: an HS256 token for `sub` (role `admin` when asked), valid for
/// [`DEV_TOKEN_LIFETIME`] from `now`.
fn dev_token(settings: &ConsoleSettings, body: &[u8], now: DateTime<Utc>) -> Response {
    let Some(secret) = settings.jwt_secret.as_deref() else {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({
                "message": "development tokens are not available: the stack verifies RS256 tokens (JWT_PUBLIC_KEY), which it cannot sign",
            }),
        );
    };
    let request: DevTokenRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({
                    "message": format!("the body must be {{\"sub\": \"...\", \"admin\": true|false}}: {error}"),
                    "error_code": "MALFORMED_REQUEST",
                }),
            );
        }
    };
    if !is_valid_sub(&request.sub) {
        return json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({
                "message": "sub must be 1 to 64 characters of A-Z a-z 0-9 _ . -",
                "error_code": "VALIDATION_ERROR",
                "details": { "sub": ["must be 1 to 64 characters of A-Z a-z 0-9 _ . -"] },
            }),
        );
    }
    let expires_at = now + DEV_TOKEN_LIFETIME;
    let role = request.admin.then_some("admin");
    let token = shared::api::auth::mint_hs256(secret, &request.sub, role, expires_at);
    json(
        StatusCode::OK,
        &serde_json::json!({
            "token": token,
            "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }),
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use shared::config::AuthSettings;

    use super::*;
    use crate::gateway::cors::CorsPolicy;
    use crate::gateway::serve_http;
    use crate::server::ServerTask;

    const SECRET: &str = "console-test-secret";

    /// The HTTP gateway with the console and a fake API that answers every route with 200
    /// `{"routed": "<route key>"}`, on an ephemeral port.
    async fn gateway(jwt_secret: Option<&str>) -> (ServerTask, SocketAddr) {
        let api = |endpoint: shared::Endpoint, _request| async move {
            let body = serde_json::json!({ "routed": endpoint.route_key() }).to_string();
            lambda_http::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(lambda_http::Body::Text(body))
                .unwrap()
        };
        let console = ConsoleSettings {
            ws_url: "ws://127.0.0.1:45678".to_owned(),
            jwt_secret: jwt_secret.map(str::to_owned),
        };
        serve_http(
            api,
            0,
            "us-east-1",
            CorsPolicy::default(),
            console,
            Arc::default(),
            crate::gateway::REQUEST_READ_TIMEOUT,
        )
        .await
        .unwrap()
    }

    async fn get(addr: SocketAddr, path: &str) -> reqwest::Response {
        reqwest::get(format!("http://{addr}{path}")).await.unwrap()
    }

    async fn post_token(addr: SocketAddr, body: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("http://{addr}/console/dev-token"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    fn content_type(response: &reqwest::Response) -> &str {
        response.headers()[header::CONTENT_TYPE].to_str().unwrap()
    }

    #[tokio::test]
    async fn the_page_and_its_files_are_served_with_their_content_types_and_no_cache() {
        let (_task, addr) = gateway(Some(SECRET)).await;

        for (path, expected_type, expected_body) in [
            ("/", "text/html; charset=utf-8", INDEX_HTML),
            (
                "/console/console.css",
                "text/css; charset=utf-8",
                CONSOLE_CSS,
            ),
            ("/console/js/main.js", JAVASCRIPT, module("main.js")),
        ] {
            let response = get(addr, path).await;
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(content_type(&response), expected_type, "{path}");
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
            assert_eq!(response.text().await.unwrap(), expected_body, "{path}");
        }
    }

    /// The served text of the module `name`.
    fn module(name: &str) -> &'static str {
        MODULES
            .iter()
            .find(|(served, _)| *served == name)
            .map(|(_, body)| *body)
            .unwrap_or_else(|| panic!("no module {name}"))
    }

    /// The `src` of each `<script type="module">` in the page.
    fn module_scripts(html: &str) -> Vec<String> {
        html.split("<script ")
            .skip(1)
            .filter_map(|tag| tag.split('>').next())
            .filter(|attrs| attrs.contains(r#"type="module""#))
            .filter_map(|attrs| attrs.split(r#"src=""#).nth(1)?.split('"').next())
            .map(str::to_owned)
            .collect()
    }

    /// The paths a module imports (`from "./x.js"` and `import "./x.js"`), resolved against the
    /// module's own folder.
    fn imports(module_path: &str, source: &str) -> Vec<String> {
        let folder = &module_path[..=module_path.rfind('/').unwrap()];
        source
            .lines()
            .filter(|line| line.starts_with("import ") || line.starts_with("} from "))
            .filter_map(|line| line.split('"').nth(1))
            .map(|specifier| {
                let relative = specifier.strip_prefix("./").unwrap_or_else(|| {
                    panic!("{module_path} imports {specifier}: only ./ imports are served")
                });
                format!("{folder}{relative}")
            })
            .collect()
    }

    #[tokio::test]
    async fn every_module_the_page_loads_is_served_as_javascript_and_every_served_module_is_used() {
        let (_task, addr) = gateway(Some(SECRET)).await;
        let mut pending = module_scripts(INDEX_HTML);
        assert_eq!(pending, ["/console/js/main.js"]);
        let mut reached = std::collections::BTreeSet::new();

        while let Some(path) = pending.pop() {
            if !reached.insert(path.clone()) {
                continue;
            }
            let response = get(addr, &path).await;
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(content_type(&response), JAVASCRIPT, "{path}");
            assert_eq!(
                response.headers()[header::CACHE_CONTROL],
                "no-cache",
                "{path}"
            );
            let source = response.text().await.unwrap();
            pending.extend(imports(&path, &source));
        }

        let served: std::collections::BTreeSet<String> = MODULES
            .iter()
            .map(|(name, _)| format!("/console/js/{name}"))
            .collect();
        assert_eq!(reached, served, "modules the page loads vs modules served");
    }

    #[tokio::test]
    async fn the_facts_are_the_domains_own() {
        let (_task, addr) = gateway(Some(SECRET)).await;

        let response = get(addr, "/console/facts.json").await;

        assert_eq!(response.status(), 200);
        assert_eq!(content_type(&response), "application/json");
        let facts: serde_json::Value = response.json().await.unwrap();
        let names = |key: &str| -> Vec<OrderStatus> {
            facts[key]
                .as_array()
                .unwrap_or_else(|| panic!("{key} is not a list"))
                .iter()
                .map(|name| name.as_str().unwrap().parse().unwrap())
                .collect()
        };
        assert_eq!(names("order_statuses"), OrderStatus::ALL);
        for status in OrderStatus::ALL {
            assert_eq!(
                names("stock_holding_statuses").contains(&status),
                status.holds_stock(),
                "{status}"
            );
            assert_eq!(
                names("terminal_statuses").contains(&status),
                status.is_terminal(),
                "{status}"
            );
            assert_eq!(
                names("cancellable_statuses").contains(&status),
                status.can_transition_to(OrderStatus::Cancelled),
                "{status}"
            );
        }
        assert_eq!(facts["active_hold_status"], HoldStatus::Active.as_str());
        assert_eq!(facts["max_quantity"], MAX_QUANTITY);
        assert_eq!(facts["max_order_lines"], MAX_ORDER_LINES);
        assert_eq!(facts["max_product_name_chars"], MAX_NAME_CHARS);
    }

    #[tokio::test]
    async fn config_names_the_stacks_websocket_and_whether_it_mints_tokens() {
        let (_task, with_secret) = gateway(Some(SECRET)).await;
        let (_other, without_secret) = gateway(None).await;

        let response = get(with_secret, "/console/config.json").await;
        assert_eq!(content_type(&response), "application/json");
        let config: serde_json::Value = response.json().await.unwrap();
        let rs256: serde_json::Value = get(without_secret, "/console/config.json")
            .await
            .json()
            .await
            .unwrap();

        assert_eq!(
            config,
            serde_json::json!({"api_url": "", "ws_url": "ws://127.0.0.1:45678", "dev_tokens": true})
        );
        assert_eq!(rs256["dev_tokens"], false);
    }

    #[tokio::test]
    async fn a_dev_token_verifies_with_the_stacks_secret_and_carries_the_admin_role_when_asked() {
        let (_task, addr) = gateway(Some(SECRET)).await;
        let authenticator = shared::api::auth::Authenticator::from_settings(&AuthSettings {
            jwt_secret: Some(SECRET.to_owned()),
            ..AuthSettings::default()
        })
        .unwrap();

        let user = post_token(addr, r#"{"sub": "dev-user", "admin": false}"#).await;
        assert_eq!(user.status(), 200);
        let user: serde_json::Value = user.json().await.unwrap();
        let admin: serde_json::Value = post_token(addr, r#"{"sub": "sale-1.x_2", "admin": true}"#)
            .await
            .json()
            .await
            .unwrap();

        let caller = authenticator
            .verify(user["token"].as_str().unwrap())
            .unwrap();
        assert_eq!(caller.user_id.as_str(), "dev-user");
        assert!(!caller.is_admin);
        let caller = authenticator
            .verify(admin["token"].as_str().unwrap())
            .unwrap();
        assert_eq!(caller.user_id.as_str(), "sale-1.x_2");
        assert!(caller.is_admin);
        let expires_at: DateTime<Utc> = user["expires_at"].as_str().unwrap().parse().unwrap();
        let lifetime = expires_at - Utc::now();
        assert!(lifetime > chrono::Duration::minutes(59) && lifetime <= DEV_TOKEN_LIFETIME);
    }

    #[tokio::test]
    async fn a_bad_dev_token_request_is_400_json() {
        let (_task, addr) = gateway(Some(SECRET)).await;
        let too_long = format!(r#"{{"sub": "{}"}}"#, "a".repeat(65));

        for body in [
            "not json",
            r#"{"admin": true}"#,
            r#"{"sub": ""}"#,
            r#"{"sub": "has space"}"#,
            r#"{"sub": "é"}"#,
            r#"{"sub": 7}"#,
            r#"{"sub": "ok", "admin": "yes"}"#,
            too_long.as_str(),
        ] {
            let response = post_token(addr, body).await;
            assert_eq!(response.status(), 400, "{body}");
            assert_eq!(content_type(&response), "application/json", "{body}");
            let answer: serde_json::Value = response.json().await.unwrap();
            assert!(answer["message"].is_string(), "{body}");
        }
        let longest = format!(r#"{{"sub": "{}"}}"#, "a".repeat(64));
        assert_eq!(post_token(addr, &longest).await.status(), 200);
    }

    #[tokio::test]
    async fn without_an_hs256_secret_there_are_no_dev_tokens() {
        let (_task, addr) = gateway(None).await;

        let response = post_token(addr, r#"{"sub": "dev-user"}"#).await;

        assert_eq!(response.status(), 404);
        assert_eq!(content_type(&response), "application/json");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("JWT_PUBLIC_KEY")
        );
    }

    #[tokio::test]
    async fn the_openapi_document_is_served_as_json() {
        let (_task, addr) = gateway(Some(SECRET)).await;

        let response = get(addr, "/console/openapi.json").await;

        assert_eq!(response.status(), 200);
        assert_eq!(content_type(&response), "application/json");
        let document: serde_json::Value = response.json().await.unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        assert!(document["paths"]["/orders"]["post"].is_object());
    }

    #[tokio::test]
    async fn api_paths_and_other_methods_on_console_paths_still_reach_the_api() {
        let (_task, addr) = gateway(Some(SECRET)).await;
        let client = reqwest::Client::new();

        let products: serde_json::Value = get(addr, "/products").await.json().await.unwrap();
        let post_root = client.post(format!("http://{addr}/")).send().await.unwrap();
        let get_token = get(addr, "/console/dev-token").await;
        let unknown = get(addr, "/console/nope").await;

        assert_eq!(products, serde_json::json!({"routed": "GET /products"}));
        // No route matches these: API Gateway's own 404, as before the console existed.
        for response in [post_root, get_token, unknown] {
            assert_eq!(response.status(), 404);
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body, serde_json::json!({"message": "Not Found"}));
        }
    }
}
