//! The local gateway behaves as API Gateway does where a client can tell: CORS as the template
//! configures it (preflights answered by the gateway, headers on actual responses, nothing when no
//! origin is allowed), and a WebSocket API that accepts connections only on its stage path.

mod common;

use localstack::{LocalSettings, Stack, StackOptions, cors};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

use common::{item_count, ping, token};

/// The repository's `template.yaml`, whose CORS configuration the gateway mirrors.
const TEMPLATE_YAML: &str = include_str!("../../template.yaml");

const SHOP: &str = "https://shop.example.com";

fn options(cors_allow_origins: &[&str]) -> StackOptions {
    StackOptions {
        config: shared::Config::default(),
        local: LocalSettings {
            cors_allow_origins: cors_allow_origins.iter().map(|o| (*o).to_owned()).collect(),
            ..LocalSettings::ephemeral()
        },
        seed_products: false,
        run_workers: false,
    }
}

async fn preflight(stack: &Stack, path: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}{path}", stack.http_url()),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap()
}

async fn get_from(stack: &Stack, path: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", stack.http_url()))
        .header("origin", origin)
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_allowed_origin_the_gateway_answers_preflights_and_marks_responses() {
    let stack = Stack::start(options(&[SHOP])).await.unwrap();

    let allowed = preflight(&stack, "/orders", SHOP).await;
    let foreign = preflight(&stack, "/orders", "https://evil.example.com").await;
    let unrouted = preflight(&stack, "/no/such/route", SHOP).await;
    let health = get_from(&stack, "/health", SHOP).await;
    let not_found = get_from(&stack, "/products/no-such-product", SHOP).await;
    let foreign_get = get_from(&stack, "/health", "https://evil.example.com").await;

    // Answered by the gateway itself, before any route: even a path no route serves.
    for response in [&allowed, &unrouted] {
        assert_eq!(response.status(), 204);
        assert_eq!(header(response, "access-control-allow-origin"), Some(SHOP));
        assert_eq!(
            header(response, "access-control-allow-methods"),
            Some("GET,POST,PUT,DELETE,OPTIONS")
        );
        assert_eq!(
            header(response, "access-control-allow-headers"),
            Some("authorization,content-type,idempotency-key,x-trace-id")
        );
        assert_eq!(header(response, "access-control-max-age"), Some("600"));
    }
    assert_eq!(foreign.status(), 204);
    assert!(
        !foreign
            .headers()
            .keys()
            .any(|name| name.as_str().starts_with("access-control-")),
        "{:?}",
        foreign.headers()
    );
    // An actual request's answer, success or error, is readable by the allowed origin's page.
    assert_eq!(health.status(), 200);
    assert_eq!(not_found.status(), 404);
    for response in [&health, &not_found] {
        assert_eq!(header(response, "access-control-allow-origin"), Some(SHOP));
        assert_eq!(
            header(response, "access-control-expose-headers"),
            Some("x-trace-id,retry-after")
        );
        assert!(header(response, "x-trace-id").is_some());
    }
    assert_eq!(foreign_get.status(), 200);
    assert_eq!(header(&foreign_get, "access-control-allow-origin"), None);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_origin_is_answered_with_a_star() {
    let stack = Stack::start(options(&["*"])).await.unwrap();

    let preflight = preflight(&stack, "/products", "http://localhost:5173").await;
    let health = get_from(&stack, "/health", "http://localhost:5173").await;

    assert_eq!(preflight.status(), 204);
    assert_eq!(header(&preflight, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&health, "access-control-allow-origin"), Some("*"));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_there_is_no_cors_and_a_preflight_is_an_unknown_route() {
    let settings = LocalSettings::from_lookup(|_| None).unwrap();
    assert!(settings.cors_allow_origins.is_empty());
    let stack = Stack::start(options(&[])).await.unwrap();

    let preflight = preflight(&stack, "/orders", SHOP).await;
    let health = get_from(&stack, "/health", SHOP).await;

    assert_eq!(preflight.status(), 404);
    assert_eq!(header(&preflight, "access-control-allow-origin"), None);
    assert_eq!(
        preflight.json::<Value>().await.unwrap(),
        json!({"message": "Not Found"})
    );
    assert_eq!(health.status(), 200);
    assert!(
        !health
            .headers()
            .keys()
            .any(|name| name.as_str().starts_with("access-control-")),
        "{:?}",
        health.headers()
    );
    stack.shutdown().await;
}

/// A YAML value with its CloudFormation tag (`!If`, `!Ref`) taken off.
fn untagged(value: &serde_norway::Value) -> &serde_norway::Value {
    match value {
        serde_norway::Value::Tagged(tagged) => &tagged.value,
        other => other,
    }
}

fn strings(value: &serde_norway::Value) -> Vec<String> {
    value
        .as_sequence()
        .expect("a list")
        .iter()
        .map(|item| item.as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn the_gateways_cors_rules_are_the_templates() {
    let template: serde_norway::Value = serde_norway::from_str(TEMPLATE_YAML).unwrap();
    let cors_if = untagged(
        &template["Resources"]["HttpApi"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-cors"],
    );
    // `!If [HasCors, {the configuration}, !Ref AWS::NoValue]`
    let configuration = &cors_if.as_sequence().expect("!If [condition, then, else]")[1];

    assert_eq!(strings(&configuration["allowMethods"]), cors::ALLOW_METHODS);
    assert_eq!(strings(&configuration["allowHeaders"]), cors::ALLOW_HEADERS);
    assert_eq!(
        strings(&configuration["exposeHeaders"]),
        cors::EXPOSE_HEADERS
    );
    assert_eq!(
        configuration["maxAge"].as_u64(),
        Some(u64::from(cors::MAX_AGE_SECONDS))
    );
    assert!(
        configuration.get("allowCredentials").is_none(),
        "the gateway sends no access-control-allow-credentials"
    );
    // The parameter's default, empty, is CORS off; so is an unset CORS_ALLOW_ORIGINS.
    assert_eq!(
        template["Parameters"]["CorsAllowedOrigins"]["Default"].as_str(),
        Some("")
    );
    assert!(LocalSettings::default().cors_allow_origins.is_empty());
}

fn refusal_status(result: Result<impl Sized, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

async fn stored_connections(stack: &Stack) -> usize {
    let dynamodb = aws_sdk_dynamodb::Client::new(&shared::aws::sdk_config(stack.config()).await);
    item_count(&dynamodb, &stack.config().tables.connections).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_connect_only_on_the_stage_path() {
    let stack = Stack::start(options(&[])).await.unwrap();
    let token = token("alice", None);

    let mut refusals = Vec::new();
    for path in ["/prod", "/local", "/prod/", "/other/path"] {
        let url = format!("{}{path}?token={token}", stack.ws_url());
        refusals.push((
            path,
            refusal_status(tokio_tungstenite::connect_async(url).await),
        ));
    }
    let ws_as_http = stack.ws_url().replace("ws://", "http://");
    let refused_plain = reqwest::get(format!("{ws_as_http}/prod")).await.unwrap();
    let stored_after_refusals = stored_connections(&stack).await;
    let (mut client, _) =
        tokio_tungstenite::connect_async(format!("{}/?token={token}", stack.ws_url()))
            .await
            .expect("the stage path, as the banner prints it, accepts connections");
    let pong = ping(&mut client).await;

    for (path, status) in refusals {
        assert_eq!(status, 403, "{path}");
    }
    assert_eq!(refused_plain.status(), 403);
    assert_eq!(
        refused_plain.json::<Value>().await.unwrap(),
        json!({"message": "Forbidden"})
    );
    assert_eq!(stored_after_refusals, 0, "$connect ran for a refused path");
    assert_eq!(pong.into_text().unwrap().as_str(), r#"{"event":"pong"}"#);
    assert_eq!(stored_connections(&stack).await, 1);
    drop(client);
    stack.shutdown().await;
}
