//! A minimal Lambda Runtime API (the `2018-06-01` interface `lambda_runtime` polls) on an
//! ephemeral port of 127.0.0.1: it hands queued events to the one function process polling it and
//! timestamps each answer as it arrives, which is where a cold start ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `POST /runtime/invocation/{id}/response`.
    Response,
    /// `POST /runtime/invocation/{id}/error`.
    Error,
}

/// A function's answer to one invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Response or error.
    pub outcome: Outcome,
    /// The body as posted (the handler's JSON output, or the error diagnostic).
    pub body: Bytes,
    /// When the whole body had arrived.
    pub at: Instant,
}

struct Invocation {
    request_id: String,
    payload: Vec<u8>,
}

struct Shared {
    function_arn: String,
    sender: mpsc::UnboundedSender<Invocation>,
    /// Held across the long poll: one function process, one poller at a time.
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    first_poll: OnceLock<Instant>,
    init_error: watch::Sender<Option<String>>,
}

/// A running Runtime API for one function process. Dropping it stops the server.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves the API for function `function_name` on 127.0.0.1, on a port of the system's choice.
    pub async fn start(function_name: &str) -> std::io::Result<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{function_name}"),
            sender,
            events: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            first_poll: OnceLock::new(),
            init_error: watch::channel(None).0,
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(|state: State<Arc<Shared>>, id: Path<String>, body: Bytes| {
                    answer(state, id, body, Outcome::Response)
                }),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(|state: State<Arc<Shared>>, id: Path<String>, body: Bytes| {
                    answer(state, id, body, Outcome::Error)
                }),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            // Ends only with an accept error; the task is aborted on drop.
            let _ = axum::serve(listener, router).await;
        });
        Ok(RuntimeApi {
            addr,
            shared,
            server,
        })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API`: `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues one event; the receiver gets the function's answer.
    pub fn invoke(&self, payload: Vec<u8>) -> oneshot::Receiver<Answer> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .unwrap()
            .insert(request_id.clone(), tx);
        // The receiver lives in `shared` as long as the sender does.
        let _ = self.shared.sender.send(Invocation {
            request_id,
            payload,
        });
        rx
    }

    /// When the function first asked for an event: the end of its initialization.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.first_poll.get().copied()
    }

    /// The diagnostic of `POST /runtime/init/error`, once the function reported one.
    pub fn init_errors(&self) -> watch::Receiver<Option<String>> {
        self.shared.init_error.subscribe()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `GET /runtime/invocation/next`: waits for an event, as Lambda's long poll does.
async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_poll.get_or_init(Instant::now);
    let invocation = shared.events.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let deadline = SystemTime::now() + Duration::from_secs(60);
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut insert = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    };
    insert("content-type", "application/json".into());
    insert(
        "lambda-runtime-aws-request-id",
        invocation.request_id.clone(),
    );
    insert("lambda-runtime-deadline-ms", deadline_ms.to_string());
    insert(
        "lambda-runtime-invoked-function-arn",
        shared.function_arn.clone(),
    );
    insert(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            deadline_ms / 1000,
            &invocation.request_id.replace('-', "")[..24],
            &invocation.request_id.replace('-', "")[..16],
        ),
    );
    (StatusCode::OK, headers, invocation.payload).into_response()
}

/// `POST /runtime/invocation/{id}/response` and `.../error`.
async fn answer(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
    outcome: Outcome,
) -> Response {
    let at = Instant::now();
    let waiting = shared.waiting.lock().unwrap().remove(&id);
    match waiting {
        Some(tx) => {
            let _ = tx.send(Answer { outcome, body, at });
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            r#"{"errorMessage":"unknown or already answered request id","errorType":"InvalidRequestID"}"#,
        )
            .into_response(),
    }
}

/// `POST /runtime/init/error`.
async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    shared
        .init_error
        .send_replace(Some(String::from_utf8_lossy(&body).into_owned()));
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}
