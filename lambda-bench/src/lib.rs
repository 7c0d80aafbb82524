//! Benchmarks of the Lambda functions, each written as one JSON object into an output directory
//! (`make bench`: `target/bench/`), from which docs/benchmarks.md is made.
//!
//! # Layout
//!
//! - [`handler_cpu`]: the criterion figures of `benches/create_order.rs` (the handler's CPU per
//!   `POST /orders`, apart from I/O) turned into `handler-cpu.json`.
//! - [`runtime_api`]: a minimal Lambda Runtime API that hands events to a function process and
//!   records its answers (feature `figures`).
//! - [`events`]: the environment and the sample events a function is started and invoked with.
//! - [`figures`]: binary size, cold start against the minimal `lambda_runtime` function
//!   (`lambda-baseline`) and peak memory, written as `lambda.json`.

pub mod handler_cpu;

#[cfg(feature = "figures")]
pub mod events;
#[cfg(feature = "figures")]
pub mod figures;
#[cfg(feature = "figures")]
pub mod runtime_api;
