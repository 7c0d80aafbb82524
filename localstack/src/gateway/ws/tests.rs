//! The WebSocket gateway with the in-memory connection store, a real WebSocket client
//! (tokio-tungstenite) and the real aws-sdk-apigatewaymanagement client.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use shared::Config;
use shared::adapters::apigw::ApiGatewayPusher;
use shared::adapters::in_memory::InMemoryStore;
use shared::api::auth::mint_hs256;
use shared::ports::{ConnectionPusher, Delivery, SystemClock};
use shared::ws::WsApp;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{bind_ws, serve_ws};
use crate::server::ServerTask;

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Gateway {
    url: String,
    app: Arc<WsApp<InMemoryStore>>,
    task: Option<ServerTask>,
}

async fn gateway() -> Gateway {
    let listener = bind_ws(0).await.unwrap();
    let url = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app =
        Arc::new(WsApp::new(InMemoryStore::default(), SystemClock, &Config::default()).unwrap());
    let wired = Arc::clone(&app);
    let handler = move |route, event| {
        let app = Arc::clone(&wired);
        async move { shared::ws::handle(&app, route, event).await }
    };
    let task = serve_ws(
        listener,
        handler,
        crate::faults::Faults::new(),
        std::sync::Arc::default(),
        crate::gateway::REQUEST_READ_TIMEOUT,
    );
    Gateway {
        url,
        app,
        task: Some(task),
    }
}

impl Gateway {
    fn token(&self, sub: &str) -> String {
        mint_hs256(
            "local-dev-secret",
            sub,
            None,
            Utc::now() + chrono::Duration::hours(1),
        )
    }

    async fn connect(&self, token: &str) -> Result<Client, tungstenite::Error> {
        tokio_tungstenite::connect_async(format!("ws://{}/?token={token}", self.url))
            .await
            .map(|(client, _)| client)
    }

    async fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        let config = Config {
            aws_endpoint_url: Some(format!("http://{}", self.url)),
            ..Config::default()
        };
        let sdk = shared::aws::sdk_config(&config).await;
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
            .endpoint_url(format!("http://{}", self.url))
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(config)
    }

    /// Waits until the store holds exactly `expected` connections.
    async fn stored_connections(&self, expected: usize) -> Vec<String> {
        for _ in 0..200 {
            let ids = self.app.connections.connection_ids();
            if ids.len() == expected {
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "expected {expected} stored connections, have {:?}",
            self.app.connections.connection_ids()
        );
    }
}

async fn next_text(client: &mut Client) -> String {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("a frame within 5 s")
            .expect("the connection is open")
            .unwrap();
        match frame {
            Frame::Text(text) => return text.to_string(),
            Frame::Ping(_) | Frame::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads up to the gateway's close frame, then to the end (which sends the close reply); the code.
async fn close_code(client: &mut Client) -> Option<u16> {
    let mut code = None;
    let read_all = async {
        while let Some(Ok(frame)) = client.next().await {
            if let Frame::Close(frame) = frame {
                code = frame.map(|f| u16::from(f.code));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read_all)
        .await
        .expect("the connection ends within 5 s");
    code
}

fn http_status(error: tungstenite::Error) -> u16 {
    match error {
        tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_handshake_with_a_bad_or_missing_token_is_refused_with_401() {
    let gateway = gateway().await;
    let foreign = mint_hs256(
        "another-secret",
        "alice",
        None,
        Utc::now() + chrono::Duration::hours(1),
    );

    let bad = gateway.connect(&foreign).await.unwrap_err();
    let missing = tokio_tungstenite::connect_async(format!("ws://{}/", gateway.url))
        .await
        .unwrap_err();
    let good = gateway.connect(&gateway.token("alice")).await;

    assert_eq!(http_status(bad), 401);
    assert_eq!(http_status(missing), 401);
    assert!(good.is_ok(), "a valid token connects");
    assert_eq!(gateway.stored_connections(1).await.len(), 1);
}

#[tokio::test]
async fn a_ping_frame_is_answered_with_the_route_response() {
    let gateway = gateway().await;
    let mut client = gateway.connect(&gateway.token("alice")).await.unwrap();

    client
        .send(Frame::Text(r#"{"action":"ping"}"#.into()))
        .await
        .unwrap();
    let pong = next_text(&mut client).await;
    client
        .send(Frame::Text(r#"{"action":"dance"}"#.into()))
        .await
        .unwrap();
    let error = next_text(&mut client).await;

    assert_eq!(pong, r#"{"event":"pong"}"#);
    assert!(error.contains(r#""event":"error""#), "{error}");
}

#[tokio::test]
async fn the_sdk_posts_to_gets_and_deletes_a_connection_then_finds_it_gone() {
    let gateway = gateway().await;
    let mut client = gateway.connect(&gateway.token("alice")).await.unwrap();
    let ids = gateway.stored_connections(1).await;
    let id = ids[0].as_str();
    let sdk = gateway.management().await;

    sdk.post_to_connection()
        .connection_id(id)
        .data(Blob::new(r#"{"event":"OrderPaid"}"#))
        .send()
        .await
        .unwrap();
    let pushed = next_text(&mut client).await;
    let info = sdk.get_connection().connection_id(id).send().await.unwrap();
    sdk.delete_connection()
        .connection_id(id)
        .send()
        .await
        .unwrap();
    let closed = close_code(&mut client).await;
    let post_after = sdk
        .post_to_connection()
        .connection_id(id)
        .data(Blob::new("late"))
        .send()
        .await
        .unwrap_err();
    let get_after = sdk
        .get_connection()
        .connection_id(id)
        .send()
        .await
        .unwrap_err();

    assert_eq!(pushed, r#"{"event":"OrderPaid"}"#);
    assert!(info.connected_at().is_some());
    assert!(info.last_active_at().is_some());
    assert_eq!(
        info.identity().and_then(|i| i.source_ip()),
        Some("127.0.0.1")
    );
    assert_eq!(closed, Some(1000), "DeleteConnection closes normally");
    assert!(
        matches!(&post_after, SdkError::ServiceError(e) if e.err().is_gone_exception()),
        "{post_after:?}"
    );
    assert!(
        matches!(&get_after, SdkError::ServiceError(e) if e.err().is_gone_exception()),
        "{get_after:?}"
    );
    gateway.stored_connections(0).await;
}

#[tokio::test]
async fn an_unknown_connection_is_gone_to_the_sdk_and_to_the_pusher() {
    let gateway = gateway().await;
    let sdk = gateway.management().await;
    let endpoint = format!("http://{}", gateway.url);
    let pusher = ApiGatewayPusher::new(
        &shared::aws::sdk_config(&Config {
            aws_endpoint_url: Some(endpoint.clone()),
            ..Config::default()
        })
        .await,
        &endpoint,
    );
    let mut client = gateway.connect(&gateway.token("alice")).await.unwrap();
    let live = gateway.stored_connections(1).await.remove(0);

    // API Gateway's own ids end in `=`, which the SDK sends percent-encoded.
    let post = sdk
        .post_to_connection()
        .connection_id("Tk5cVcYDoAMCKdA=")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    let delete = sdk
        .delete_connection()
        .connection_id("Tk5cVcYDoAMCKdA=")
        .send()
        .await
        .unwrap_err();
    let gone = pusher.push("Tk5cVcYDoAMCKdA=", b"x").await.unwrap();
    let delivered = pusher.push(&live, b"hello").await.unwrap();

    assert!(
        matches!(&post, SdkError::ServiceError(e) if e.err().is_gone_exception() && e.raw().status().as_u16() == 410),
        "{post:?}"
    );
    assert!(
        matches!(&delete, SdkError::ServiceError(e) if e.err().is_gone_exception()),
        "{delete:?}"
    );
    assert_eq!(gone, Delivery::Gone);
    assert_eq!(delivered, Delivery::Delivered);
    assert_eq!(next_text(&mut client).await, "hello");
}

#[tokio::test]
async fn a_client_close_runs_disconnect_and_the_connection_is_gone() {
    let gateway = gateway().await;
    let mut client = gateway.connect(&gateway.token("alice")).await.unwrap();
    let id = gateway.stored_connections(1).await.remove(0);

    client.close(None).await.unwrap();
    while client.next().await.is_some() {}

    gateway.stored_connections(0).await;
    let post = gateway
        .management()
        .await
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&post, SdkError::ServiceError(e) if e.err().is_gone_exception()),
        "{post:?}"
    );
}

#[tokio::test]
async fn stopping_the_gateway_closes_open_connections_as_going_away() {
    let mut gateway = gateway().await;
    let mut client = gateway.connect(&gateway.token("alice")).await.unwrap();
    gateway.stored_connections(1).await;

    let stop = gateway.task.take().unwrap().stop(Duration::from_secs(5));
    let (_, closed) = tokio::join!(stop, close_code(&mut client));

    assert_eq!(closed, Some(1001), "going away");
    assert!(
        gateway.app.connections.connection_ids().is_empty(),
        "stop waits for $disconnect"
    );
}
