//! The embedded AWS services: Dynoxide (DynamoDB), rustack-sqs (SQS) and a minimal Secrets Manager
//! (`secrets`), in-process behind one endpoint on one port-0 (or `AWS_PORT`) listener.
//!
//! A Lambda's SDK clients share one endpoint URL (`AWS_ENDPOINT_URL`), so the stack exposes one: a
//! front listener that hands `AmazonSQS.*` requests to the SQS service and the rest to Dynoxide's
//! router, both in-process (Dynoxide's `router` is one of the two patches in `vendor/`). Both speak the
//! awsJson1_0 protocol, where the `X-Amz-Target` header names the service and the operation.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustack_sqs_core::config::SqsConfig;
use rustack_sqs_core::handler::RustackSqsHandler;
use rustack_sqs_core::provider::RustackSqs;
use rustack_sqs_http::service::{SqsHttpConfig, SqsHttpService};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

mod conditioned;
mod secrets;

use crate::LOCAL_ACCOUNT_ID;
use crate::conditions::latency::LatencyClass;
use crate::conditions::{CONDITIONS_PATH, Conditions};
use crate::faults::{self, Call, FAULTS_PATH, FaultResponse, FaultService, Faults, Injection};
use crate::meter::{METER_PATH, Meter};
use crate::partitions::{
    self, PARTITIONS_PATH, PartitionLimits, Partitions, ReadOperation, WriteOperation,
};
use crate::server::{ServerTask, StopSignal};
use crate::settings::LocalSettings;

/// The running emulators.
pub(crate) struct Emulators {
    endpoint: String,
    sqs: Arc<RustackSqs>,
    faults: Arc<Faults>,
    front: ServerTask,
}

impl Emulators {
    /// Starts Dynoxide and rustack-sqs, both reachable at [`Emulators::endpoint`] on
    /// 127.0.0.1:`port` (0 = any free port).
    /// `meter_capacity`: whether the endpoint asks DynamoDB for the capacity of every request and
    /// adds it up at `/_local/meter` (requests are always counted). `partition_limits`: the
    /// write and read units per second each partition key value takes (`None`: no limit;
    /// `partitions`). `conditions`: AWS's latency and transaction conflicts (`conditions`).
    /// `data_dir`: where Dynoxide keeps its tables ([`LocalSettings::DYNAMODB_FILE`], created if
    /// missing); `None` keeps them in memory. Queues are always in memory.
    pub(crate) async fn start(
        region: &str,
        port: u16,
        meter_capacity: bool,
        partition_limits: Option<PartitionLimits>,
        conditions: Arc<Conditions>,
        data_dir: Option<&Path>,
    ) -> anyhow::Result<Self> {
        // Dynoxide's router is called in-process by the front: no listener of its own, no second
        // HTTP hop per DynamoDB call.
        let database = open_dynamodb(data_dir)?;
        let dynamodb = dynoxide::server::router(database);

        let front_listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding the AWS endpoint on 127.0.0.1:{port} (AWS_PORT)"))?;
        let front_addr = front_listener.local_addr()?;
        // Queue URLs carry this host and port, so every URL SQS hands out points back at the front.
        let sqs = Arc::new(RustackSqs::new(SqsConfig {
            skip_signature_validation: true,
            default_region: region.to_owned(),
            account_id: LOCAL_ACCOUNT_ID.to_owned(),
            host: front_addr.ip().to_string(),
            port: front_addr.port(),
        }));
        let faults = Faults::new();
        let front = AwsFront::new(
            &sqs,
            region,
            dynamodb,
            Arc::new(Meter::new(meter_capacity)),
            Arc::new(Partitions::new(partition_limits, region)),
            Arc::clone(&faults),
            conditions,
        );
        let front = ServerTask::spawn("aws-endpoint", move |stop| {
            serve_connections(front_listener, front, stop)
        });

        Ok(Emulators {
            endpoint: format!("http://{front_addr}"),
            sqs,
            faults,
            front,
        })
    }

    /// The one endpoint URL that answers both DynamoDB and SQS.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The fault rules of this endpoint (`/_local/faults`).
    pub(crate) fn faults(&self) -> Arc<Faults> {
        Arc::clone(&self.faults)
    }

    /// Stops the endpoint, the queue actors and Dynoxide, in that order.
    pub(crate) async fn stop(self, grace: Duration) {
        self.front.stop(grace).await;
        self.sqs.shutdown_all().await;
    }
}

/// Routes one AWS request to the service its `X-Amz-Target` names.
#[derive(Clone)]
struct AwsFront {
    sqs: SqsHttpService<RustackSqsHandler>,
    secrets: Arc<secrets::SecretStore>,
    dynamodb: axum::Router,
    meter: Arc<Meter>,
    partitions: Arc<Partitions>,
    faults: Arc<Faults>,
    conditions: Arc<Conditions>,
}

impl AwsFront {
    fn new(
        sqs: &Arc<RustackSqs>,
        region: &str,
        dynamodb: axum::Router,
        meter: Arc<Meter>,
        partitions: Arc<Partitions>,
        faults: Arc<Faults>,
        conditions: Arc<Conditions>,
    ) -> Self {
        let handler = Arc::new(RustackSqsHandler::new(Arc::clone(sqs)));
        let sqs_config = SqsHttpConfig {
            skip_signature_validation: true,
            region: region.to_owned(),
            credential_provider: None,
        };
        AwsFront {
            sqs: SqsHttpService::new(handler, sqs_config),
            secrets: Arc::new(secrets::SecretStore::new(region)),
            dynamodb,
            meter,
            partitions,
            faults,
            conditions,
        }
    }

    /// Routes one request; `Err` cuts the connection without an answer (an injected drop).
    async fn route(self, request: Request<Incoming>) -> Result<Response<Body>, DroppedConnection> {
        if request.uri().path() == FAULTS_PATH {
            let method = request.method().clone();
            let query = request.uri().query().unwrap_or("").to_owned();
            let Ok(body) = axum::body::to_bytes(Body::new(request.into_body()), usize::MAX).await
            else {
                return Ok(plain_response(
                    StatusCode::BAD_REQUEST,
                    "unreadable request body",
                ));
            };
            let (status, report) = self.faults.control(&method, &query, &body);
            let mut response = json_response(&report);
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            return Ok(response);
        }
        if let Some(operation) = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|target| target.strip_prefix(secrets::TARGET_PREFIX))
        {
            let operation = operation.to_owned();
            let Ok(body) = axum::body::to_bytes(Body::new(request.into_body()), usize::MAX).await
            else {
                return Ok(plain_response(
                    StatusCode::BAD_REQUEST,
                    "unreadable request body",
                ));
            };
            return Ok(self.secrets.call(&operation, &body));
        }
        if self.faults.armed() {
            return self.route_with_faults(request).await;
        }
        Ok(self.route_to_service(request).await)
    }

    /// A request while fault rules are set: a DynamoDB body is read for the tables it names.
    async fn route_with_faults(
        self,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, DroppedConnection> {
        let target = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let (service, operation) = match target.split_once('.') {
            Some(("AmazonSQS", operation)) => (FaultService::Sqs, operation),
            Some((_, operation)) => (FaultService::Dynamodb, operation),
            None => (FaultService::Dynamodb, ""),
        };
        if service == FaultService::Sqs {
            let call = Call {
                service,
                operation,
                tables: &[],
            };
            return match self.faults.decide(&call) {
                None => Ok(self.route_to_service(request).await),
                Some(Injection::Delay(delay)) => {
                    tokio::time::sleep(delay).await;
                    Ok(self.route_to_service(request).await)
                }
                Some(Injection::DropBefore) => Err(DroppedConnection),
                Some(Injection::DropAfter) => {
                    drain(self.route_to_service(request).await).await;
                    Err(DroppedConnection)
                }
                Some(Injection::Answer(fault)) => Ok(FaultResponse::sqs(fault)),
            };
        }
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(Body::new(body), usize::MAX).await else {
            return Ok(plain_response(
                StatusCode::BAD_REQUEST,
                "unreadable request body",
            ));
        };
        let named = faults::table_names(&body);
        let request = Request::from_parts(parts, Body::from(body));
        let call = Call {
            service,
            operation,
            tables: &named.tables,
        };
        match self.faults.decide(&call) {
            None => Ok(self.route_to_dynamodb(request).await),
            Some(Injection::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                Ok(self.route_to_dynamodb(request).await)
            }
            Some(Injection::DropBefore) => Err(DroppedConnection),
            Some(Injection::DropAfter) => {
                // The whole answer is produced (the write applied) before the cut.
                drain(self.route_to_dynamodb(request).await).await;
                Err(DroppedConnection)
            }
            Some(Injection::Answer(fault)) => {
                Ok(FaultResponse::dynamodb(fault, operation, named.actions))
            }
        }
    }

    /// Counts the request and hands it to SQS or DynamoDB (through the meter and the partition
    /// limiter when they are on).
    async fn route_to_service(self, request: Request<Incoming>) -> Response<Body> {
        if is_sqs_request(request.headers()) {
            self.meter.count(
                request
                    .headers()
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok()),
            );
            if self.conditions.active() {
                let class = LatencyClass::of_target(
                    request
                        .headers()
                        .get("x-amz-target")
                        .and_then(|v| v.to_str().ok()),
                );
                let conditions = Arc::clone(&self.conditions);
                let Ok(response) = conditions.delayed(class, self.sqs.call(request)).await;
                return response.map(Body::new);
            }
            let Ok(response) = self.sqs.call(request).await;
            return response.map(Body::new);
        }
        self.route_to_dynamodb(request.map(Body::new)).await
    }

    /// The local reports, or DynamoDB (through the meter and the partition limiter when on).
    async fn route_to_dynamodb(self, request: Request<Body>) -> Response<Body> {
        if request.uri().path() == METER_PATH {
            let pairs: Vec<&str> = request.uri().query().unwrap_or("").split('&').collect();
            match (
                pairs.contains(&"capacity=on"),
                pairs.contains(&"capacity=off"),
            ) {
                (true, false) => self.meter.set_capacity(true),
                (false, true) => self.meter.set_capacity(false),
                _ => {}
            }
            let reset = pairs.contains(&"reset=true");
            return json_response(&self.meter.report(reset));
        }
        if request.uri().path() == PARTITIONS_PATH {
            let query = request.uri().query().unwrap_or("");
            let pairs: Vec<&str> = query.split('&').collect();
            let top = pairs
                .iter()
                .find_map(|pair| pair.strip_prefix("top="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(partitions::DEFAULT_TOP);
            let report = self.partitions.report(pairs.contains(&"reset=true"), top);
            return json_response(&report);
        }
        if request.uri().path() == CONDITIONS_PATH {
            let reset = request
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .any(|pair| pair == "reset=true");
            let partitions = self.partitions.conditions_report(reset);
            return json_response(&self.conditions.report(partitions, reset));
        }
        // A plain flag: with the conditions off no body is read and nothing is delayed here.
        if self.conditions.active() {
            return self.route_with_conditions(request).await;
        }
        self.route_to_limiter(request).await
    }

    /// The partition limiter (when on), the meter and DynamoDB.
    async fn route_to_limiter(self, request: Request<Body>) -> Response<Body> {
        let target = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok());
        self.meter.count(target);
        // The key schemas are cached by the limiter and the conflict check alike.
        if partitions::changes_schema(target)
            && (self.partitions.enabled() || self.conditions.active())
        {
            self.partitions.forget_schemas();
        }
        // A plain flag: with the limit off no body is read here.
        if self.partitions.enabled() {
            if let Some(operation) = WriteOperation::from_target(target) {
                let target = target.map(str::to_owned);
                return self
                    .forward_limited(request, Limited::Write(operation), target)
                    .await;
            }
            if let Some(operation) = ReadOperation::from_target(target) {
                let target = target.map(str::to_owned);
                return self
                    .forward_limited(request, Limited::Read(operation), target)
                    .await;
            }
        }
        if self.meter.capacity_on() {
            let target = target.map(str::to_owned);
            return self.forward_metered(request, target.as_deref()).await;
        }
        self.forward_to_dynamodb(request).await
    }

    /// A write or a read through the partition limiter, which may refuse it; metered as any other.
    async fn forward_limited(
        &self,
        request: Request<Body>,
        limited: Limited,
        target: Option<String>,
    ) -> Response<Body> {
        let (mut parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
            return plain_response(StatusCode::BAD_REQUEST, "unreadable request body");
        };
        let headers = parts.headers.clone();
        // The limiter may hand on a smaller batch than it read.
        parts.headers.remove(http::header::CONTENT_LENGTH);
        let forward = |body: axum::body::Bytes| async move {
            let request = Request::from_parts(parts, Body::from(body));
            if self.meter.capacity_on() {
                self.forward_metered(request, target.as_deref()).await
            } else {
                self.forward_to_dynamodb(request).await
            }
        };
        match limited {
            Limited::Write(operation) => {
                self.partitions
                    .write(&self.dynamodb, operation, &headers, body, forward)
                    .await
            }
            Limited::Read(operation) => {
                self.partitions
                    .read(&self.dynamodb, operation, &headers, body, forward)
                    .await
            }
        }
    }

    /// Forwards with `ReturnConsumedCapacity` asked for, and meters the answer's capacity.
    async fn forward_metered(
        &self,
        request: Request<Body>,
        target: Option<&str>,
    ) -> Response<Body> {
        let (mut parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
            return plain_response(StatusCode::BAD_REQUEST, "unreadable request body");
        };
        let body = match Meter::ask_for_capacity(&body) {
            Some(asked) => {
                parts.headers.remove(http::header::CONTENT_LENGTH);
                axum::body::Bytes::from(asked)
            }
            None => body,
        };
        let response = self
            .forward_to_dynamodb(Request::from_parts(parts, Body::from(body)))
            .await;
        let (parts, body) = response.into_parts();
        let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
            return plain_response(StatusCode::BAD_GATEWAY, "unreadable DynamoDB answer");
        };
        self.meter.add_capacity(target, &body);
        Response::from_parts(parts, Body::from(body))
    }

    /// Dynoxide's router, called in-process.
    async fn forward_to_dynamodb(&self, request: Request<Body>) -> Response<Body> {
        let mut router = self.dynamodb.clone();
        match tower_service::Service::call(&mut router, request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// What the partition limiter charges a request as.
#[derive(Debug, Clone, Copy)]
enum Limited {
    Write(WriteOperation),
    Read(ReadOperation),
}

/// Dynoxide's database: in memory, or the file [`LocalSettings::DYNAMODB_FILE`] in `data_dir`.
/// A file is opened in WAL mode with SQLite's default `synchronous = FULL` (libsqlite3-sys's
/// bundled build sets no other), so a DynamoDB write that was answered is in the fsynced log and
/// survives `kill -9`, and a power cut as well.
fn open_dynamodb(data_dir: Option<&Path>) -> anyhow::Result<dynoxide::Database> {
    let Some(data_dir) = data_dir else {
        return dynoxide::Database::memory().context("opening Dynoxide's in-memory database");
    };
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating LOCAL_DATA_DIR {}", data_dir.display()))?;
    let file = data_dir.join(LocalSettings::DYNAMODB_FILE);
    let path = file
        .to_str()
        .with_context(|| format!("LOCAL_DATA_DIR {} is not UTF-8", data_dir.display()))?;
    dynoxide::Database::new(path).with_context(|| format!("opening Dynoxide's database {path}"))
}

/// The error that makes hyper cut a connection without answering: an injected drop.
#[derive(Debug)]
struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DroppedConnection {}

/// Reads an answer to its end, so that whatever produced it has finished.
async fn drain(response: Response<Body>) {
    let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
}

/// Whether a request is for SQS: the JSON protocol names `AmazonSQS.<Operation>` in `X-Amz-Target`.
fn is_sqs_request(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|target| target.starts_with("AmazonSQS."))
}

fn json_response(report: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(report.to_string()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn plain_response(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
}

/// Accepts connections until `stop`; the connections live in a set that is aborted with the task.
async fn serve_connections(listener: TcpListener, front: AwsFront, mut stop: StopSignal) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let front = front.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| front.clone().route(request));
                        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        if let Err(error) = builder.serve_connection(TokioIo::new(stream), service).await {
                            tracing::debug!(%error, "AWS endpoint connection ended");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(%error, "AWS endpoint cannot accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
