//! Everything the order-processing Lambdas share: the domain, the ports they depend on, the
//! DynamoDB and SQS adapters, and the HTTP handlers that both the Lambda binaries and the local
//! gateway run.
//!
//! # Layout
//!
//! - [`domain`]: money, quantities, ids, products, orders and the status machine. No I/O.
//! - [`ports`]: the narrow traits the use cases and handlers depend on.
//! - [`retry`]: the one jittered backoff.
//! - [`secrets`]: rotating secrets, cached and refreshed, with the previous version's overlap.
//! - [`adapters`]: DynamoDB and SQS implementations of the ports, and in-memory fakes for tests.
//! - [`application`]: the use cases (place and cancel orders, process and settle payments,
//!   reconcile unsettled orders, place and expire holds, receive payment webhooks), typed input to
//!   typed outcome, shared by every entry point.
//! - [`api`]: request parsing, authentication, rate limiting, use-case outcomes and errors to HTTP.
//! - [`app`]: the HTTP API's ports wired together per cold start, and its use cases built from them.
//! - [`aws`]: the one place that connects to AWS: the clients a function's footprint uses.
//! - [`config`]: the one typed `Config`, read from the environment at cold start.
//! - [`function`]: the catalogue of Lambda functions and what each one uses (its footprint).
//! - [`metrics`]: the business metrics, counted per invocation and written as CloudWatch EMF lines.
//! - [`messages`]: bodies of queue messages and WebSocket events.
//! - [`notify`]: order events to the owner's WebSocket connections.
//! - [`telemetry`]: tracing set-up.
//! - [`worker`]: the payment consumer's SQS entry and the background functions' ports.
//! - [`ws`]: the WebSocket API's `$connect`, `$disconnect` and `$default` routes.
//! - [`xray`]: the invocation's X-Ray trace header, carried across the order queue.

pub mod adapters;
pub mod api;
pub mod app;
pub mod application;
pub mod auth;
pub mod aws;
pub mod config;
pub mod domain;
pub mod function;
pub mod messages;
pub mod metrics;
pub mod notify;
pub mod ports;
pub mod retry;
pub mod secrets;
pub mod telemetry;
pub mod worker;
pub mod ws;
pub mod xray;

pub use app::{App, AwsApp, Store};
pub use config::Config;
pub use function::Endpoint;
pub use function::{Footprint, Function};
