//! End-to-end tests through the real local stack: the local API Gateway emulation, the handlers,
//! Dynoxide and rustack-sqs over HTTP through the AWS SDK, each test on its own port-0 stack.
//! Every order test runs in both `STOCK_LOCKS` modes.

mod support;

mod abuse;
mod cancel;
mod crashes;
mod errors;
mod faults;
mod hangups;
mod holds;
mod idempotency;
mod oversell;
mod payments;
mod products;
mod rate_limit;
mod rough_edges;
mod shards;
mod tokens;
mod webhooks;
mod workload;
mod ws;
