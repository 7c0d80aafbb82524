//! Load scenarios against a running order-processing stack (local or deployed), each ending in a
//! verdict and its figures, and the benchmark run behind `make bench` that writes
//! `docs/benchmarks.md` with its SVG charts.
//!
//! # Layout
//!
//! - [`client`]: the HTTP API and WebSocket client the scenarios share (tokens, products, orders).
//! - [`tls`]: the certificates those clients trust over `https://` and `wss://` (`tls` feature).
//! - [`stats`]: latency histograms (hdrhistogram) and per-second series.
//! - [`outcome`]: a scenario's verdict and figures, printed as a table and one JSON line.
//! - [`scenarios`]: oversell, idempotency, high load, flash sale, holds, ceiling and cost.
//! - [`run`]: a run of scenarios: its id, each result printed and appended as it finishes.
//! - [`stack_process`]: the local stack binary as a child process: its banner, its log, SIGTERM.
//! - [`bench`]: a stack per lock mode with every scenario run on it, then the other phases.
//! - [`partitions`]: the flash sale over 1 and 16 stock shards under the emulated partition limit.
//! - [`hot`]: a hot product over 1, 8 and 64 stock shards under AWS conditions (`AWS_CONDITIONS=on`),
//!   against what the emulated limits allow it.
//! - [`report`]: the markdown report; [`svg`]: its charts, drawn by hand.
//! - [`soak`]: the randomized soak under injected faults, invariants checked as it runs.

pub mod bench;
pub mod client;
pub mod hot;
pub mod outcome;
pub mod partitions;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod soak;
pub mod stack_process;
pub mod stats;
pub mod svg;
pub mod tls;

pub use client::Api;
pub use outcome::{ScenarioResult, Verdict};
pub use scenarios::{Scenario, Sizes, Target};
pub use tls::Trust;
