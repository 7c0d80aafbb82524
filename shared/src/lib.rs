//! Everything the order-processing Lambdas share: the domain, the ports they depend on, the
//! DynamoDB and SQS adapters, and the HTTP handlers that both the Lambda binaries and the local
//! gateway run.
//!
//! # Layout
//!
//! - [`domain`]: money, quantities, ids, products, orders and the status machine. No I/O.
//! - [`ports`]: the narrow traits handlers depend on.
//! - [`adapters`]: DynamoDB and SQS implementations of the ports, and in-memory fakes for tests.
//! - [`api`]: request parsing, authentication, rate limiting, errors to HTTP, one module per endpoint.
//! - [`app`]: the ports wired together per cold start.
//! - [`config`]: the one typed `Config`, read from the environment at cold start.
//! - [`function`]: the catalogue of Lambda functions and what each one uses (its footprint).
//! - [`messages`]: bodies of queue messages and WebSocket events.
//! - [`notify`]: order events to the owner's WebSocket connections.
//! - [`telemetry`]: tracing set-up.
//! - [`worker`]: the payment consumer and the reconciler.
//! - [`ws`]: the WebSocket API's `$connect`, `$disconnect` and `$default` routes.

pub mod adapters;
pub mod api;
pub mod app;
pub mod aws;
pub mod config;
pub mod domain;
pub mod function;
pub mod messages;
pub mod notify;
pub mod ports;
pub mod telemetry;
pub mod worker;
pub mod ws;

pub use api::Endpoint;
pub use app::{App, AwsApp, Store};
pub use config::Config;
pub use function::{Footprint, Function};
