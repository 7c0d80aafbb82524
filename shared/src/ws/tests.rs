//! Route tests through [`super::handle`] against the in-memory connection store, fed with the
//! sample events the way the Lambda runtime deserializes them.

use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use chrono::Utc;
use serde_json::{Value, json};

use super::{CONNECTION_TTL, WsApp, WsRoute, handle};
use crate::adapters::in_memory::{FixedClock, InMemoryStore};
use crate::auth::mint_hs256;
use crate::config::Config;
use crate::domain::UserId;
use crate::ports::{Clock, Connection, ConnectionStore, StoreError};

const CONNECT: &str = include_str!("../../../events/ws-connect.json");
const DISCONNECT: &str = include_str!("../../../events/ws-disconnect.json");
const DEFAULT: &str = include_str!("../../../events/ws-default.json");

fn app() -> WsApp<InMemoryStore, FixedClock> {
    WsApp::new(
        InMemoryStore::default(),
        FixedClock::default(),
        &Config::default(),
    )
    .unwrap()
}

/// A sample event with `adjust` applied, deserialized as the runtime would.
fn event(sample: &str, adjust: impl FnOnce(&mut Value)) -> ApiGatewayWebsocketProxyRequest {
    let mut json: Value = serde_json::from_str(sample).unwrap();
    adjust(&mut json);
    serde_json::from_value(json).unwrap()
}

/// The connect sample with its connection id and `?token=` replaced (or removed).
fn connect_event(connection_id: &str, token: Option<&str>) -> ApiGatewayWebsocketProxyRequest {
    event(CONNECT, |json| {
        json["requestContext"]["connectionId"] = json!(connection_id);
        match token {
            Some(token) => {
                json["queryStringParameters"] = json!({ "token": token });
                json["multiValueQueryStringParameters"] = json!({ "token": [token] });
            }
            None => {
                let fields = json.as_object_mut().unwrap();
                fields.remove("queryStringParameters");
                fields.remove("multiValueQueryStringParameters");
            }
        }
    })
}

fn message_event(body: &str) -> ApiGatewayWebsocketProxyRequest {
    event(DEFAULT, |json| json["body"] = json!(body))
}

fn token(secret: &str, sub: &str, valid_for: chrono::Duration) -> String {
    mint_hs256(secret, sub, None, Utc::now() + valid_for)
}

fn body_json(response: &ApiGatewayProxyResponse) -> Value {
    match &response.body {
        Some(Body::Text(text)) => serde_json::from_str(text).unwrap(),
        other => panic!("expected a text body, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_with_a_valid_token_stores_the_connection_for_its_user() {
    let app = app();
    let alice = token("local-dev-secret", "alice", chrono::Duration::hours(1));

    let response = handle(
        &app,
        WsRoute::Connect,
        connect_event("conn-1=", Some(&alice)),
    )
    .await;

    assert_eq!(response.status_code, 200);
    assert_eq!(app.connections.connection_ids(), ["conn-1="]);
    assert_eq!(
        app.connections
            .connections_of(&UserId::new("alice"))
            .await
            .unwrap(),
        ["conn-1="]
    );
}

#[tokio::test]
async fn connect_refuses_expired_foreign_and_missing_tokens_with_401() {
    let app = app();
    let expired = token("local-dev-secret", "alice", chrono::Duration::seconds(-120));
    let foreign = token("another-secret", "alice", chrono::Duration::hours(1));

    for (name, event) in [
        ("expired", connect_event("c-expired", Some(&expired))),
        ("foreign", connect_event("c-foreign", Some(&foreign))),
        ("garbage", connect_event("c-garbage", Some("not.a.jwt"))),
        ("empty", connect_event("c-empty", Some(""))),
        ("missing", connect_event("c-missing", None)),
    ] {
        let response = handle(&app, WsRoute::Connect, event).await;
        assert_eq!(response.status_code, 401, "{name} token");
    }

    assert!(app.connections.connection_ids().is_empty());
}

#[tokio::test]
async fn connect_answers_500_and_stores_nothing_when_the_store_is_down() {
    let app = app();
    app.connections.set_down(true);
    let alice = token("local-dev-secret", "alice", chrono::Duration::hours(1));

    let response = handle(&app, WsRoute::Connect, connect_event("c", Some(&alice))).await;

    assert_eq!(response.status_code, 500);
    app.connections.set_down(false);
    assert!(app.connections.connection_ids().is_empty());
}

/// Records what `save_connection` was asked to store.
#[derive(Default)]
struct SavedConnections(Mutex<Vec<(Connection, Duration)>>);

impl ConnectionStore for SavedConnections {
    async fn save_connection(
        &self,
        connection: &Connection,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.0.lock().unwrap().push((connection.clone(), ttl));
        Ok(())
    }

    async fn delete_connection(&self, _connection_id: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn connections_of(&self, _user_id: &UserId) -> Result<Vec<String>, StoreError> {
        Ok(vec![])
    }
}

#[tokio::test]
async fn connect_stores_the_connection_with_api_gateways_two_hour_ttl() {
    let app = WsApp::new(
        SavedConnections::default(),
        FixedClock::default(),
        &Config::default(),
    )
    .unwrap();
    let bob = token("local-dev-secret", "bob", chrono::Duration::hours(1));

    handle(&app, WsRoute::Connect, connect_event("c-bob", Some(&bob))).await;

    let saved = app.connections.0.lock().unwrap().clone();
    let expected = Connection {
        connection_id: "c-bob".into(),
        user_id: UserId::new("bob"),
        connected_at: app.clock.now(),
    };
    assert_eq!(saved, [(expected, Duration::from_secs(7_200))]);
    assert_eq!(CONNECTION_TTL, Duration::from_secs(7_200));
}

#[tokio::test]
async fn disconnect_deletes_only_that_connection() {
    let app = app();
    let alice = token("local-dev-secret", "alice", chrono::Duration::hours(1));
    for id in ["c-1", "c-2"] {
        let response = handle(&app, WsRoute::Connect, connect_event(id, Some(&alice))).await;
        assert_eq!(response.status_code, 200);
    }
    assert_eq!(app.connections.connection_ids(), ["c-1", "c-2"]);

    let response = handle(
        &app,
        WsRoute::Disconnect,
        event(DISCONNECT, |json| {
            json["requestContext"]["connectionId"] = json!("c-1")
        }),
    )
    .await;

    assert_eq!(response.status_code, 200);
    assert_eq!(app.connections.connection_ids(), ["c-2"]);
}

#[tokio::test]
async fn a_ping_in_json_or_plain_text_gets_a_pong() {
    let app = app();
    for body in [r#"{"action":"ping"}"#, "ping", "hello", ""] {
        let response = handle(&app, WsRoute::Default, message_event(body)).await;

        assert_eq!(response.status_code, 200, "{body:?}");
        assert_eq!(body_json(&response), json!({"event": "pong"}), "{body:?}");
    }
}

#[tokio::test]
async fn unknown_json_gets_an_error_event_that_names_the_ping_action() {
    let app = app();
    for body in [
        r#"{"action":"dance"}"#,
        r#"{"action":7}"#,
        r#"{"hello":1}"#,
        "[]",
    ] {
        let response = handle(&app, WsRoute::Default, message_event(body)).await;

        assert_eq!(response.status_code, 200, "{body:?}");
        let reply = body_json(&response);
        assert_eq!(reply["event"], "error", "{body:?}");
        assert!(
            reply["message"].as_str().unwrap().contains("ping"),
            "{reply}"
        );
    }
}

#[tokio::test]
async fn the_sample_events_are_served_as_a_whole_session() {
    let app = app();
    let connect: ApiGatewayWebsocketProxyRequest = serde_json::from_str(CONNECT).unwrap();
    let message: ApiGatewayWebsocketProxyRequest = serde_json::from_str(DEFAULT).unwrap();
    let disconnect: ApiGatewayWebsocketProxyRequest = serde_json::from_str(DISCONNECT).unwrap();
    for (route, event) in [
        (WsRoute::Connect, &connect),
        (WsRoute::Default, &message),
        (WsRoute::Disconnect, &disconnect),
    ] {
        assert_eq!(
            event.request_context.route_key.as_deref(),
            Some(route.route_key())
        );
        assert_eq!(
            event.request_context.event_type.as_deref(),
            Some(route.event_type())
        );
    }

    let connected = handle(&app, WsRoute::Connect, connect).await;
    assert_eq!(connected.status_code, 200);
    assert_eq!(
        app.connections
            .connections_of(&UserId::new("dev-user"))
            .await
            .unwrap(),
        ["Tk5cVcYDoAMCKdA="]
    );

    let pong = handle(&app, WsRoute::Default, message).await;
    assert_eq!(body_json(&pong), json!({"event": "pong"}));

    let disconnected = handle(&app, WsRoute::Disconnect, disconnect).await;
    assert_eq!(disconnected.status_code, 200);
    assert!(app.connections.connection_ids().is_empty());
}
