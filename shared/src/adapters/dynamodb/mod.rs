//! The DynamoDB adapter: every store port on eight tables, through the AWS SDK.
//! The tables, their keys and every access pattern are described in `docs/data-model.md`.
//!
//! - `items`: attribute values, keys and item <-> domain mapping (the only place that knows them)
//! - `products`, `orders`, `idempotency`: reads and admin writes
//! - `price_cache`: the products an order was priced from, kept for a second per instance
//! - `transactions`: order placement and cancellation, where stock is decremented and restored
//! - `stock_journal`: the single-item stock writes those use, and the sweep that finishes them
//! - `locks`, `rate_limits`: per-product lock items and per-subject sliding rate logs
//! - `settlement`: payment status moves
//! - `unsettled`: the reconciler's query, one per shard of the sparse `unsettled-orders` index
//! - `connections`: open WebSocket connections by user
//! - `holds`: stock holds, their per-user counts and the sweeper's query
//! - `webhooks`: payment webhook answers and outcomes waiting for their order
//! - `schema`: table creation for the local stack and tests (feature `provision`)
//! - `cursor`: opaque pagination cursors

mod connections;
mod cursor;
mod holds;
mod idempotency;
mod items;
mod locks;
mod orders;
mod price_cache;
mod products;
mod rate_limits;
#[cfg(feature = "provision")]
mod schema;
mod settlement;
mod stock_journal;
mod stock_layout;
mod transactions;
mod unsettled;
mod webhooks;

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::TableStatus;

use crate::config::TableNames;
use crate::function::Table;
use crate::ports::Reachable;
use crate::ports::StoreError;

#[cfg(feature = "provision")]
pub use schema::ensure_tables;

/// How long `/health` waits for a table's answer before calling it unreachable.
const REACHABILITY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one instance keeps what `/health` found: a health check every second from each of
/// several monitors then costs each table one DescribeTable per instance in this span, not one
/// per check (the control plane's request rate is far lower than the tables').
const REACHABILITY_CACHE: Duration = Duration::from_secs(5);

/// The DynamoDB adapter: one client shared by every request, and the table names.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    /// The same client without the SDK's retries, for calls whose own loop retries at its own
    /// pace: the SDK's standard backoff on a throttle starts near a second, and its retry quota
    /// is shared by every call of the client.
    own_retries: aws_sdk_dynamodb::Client,
    tables: TableNames,
    /// What this instance remembers of rate-limited subjects (shared by clones).
    rate_memory: std::sync::Arc<rate_limits::RateMemory>,
    /// The products this instance read for prices in the last second (shared by clones).
    price_cache: std::sync::Arc<price_cache::PriceCache>,
    /// The last answer of [`Reachable::unreachable`] (shared by clones).
    reachability: std::sync::Arc<std::sync::Mutex<Option<Found>>>,
}

/// What `/health` found and when: the tables that did not answer.
type Found = (std::time::Instant, Vec<&'static str>);

impl DynamoStore {
    /// Wraps a client and the table names.
    pub fn new(client: aws_sdk_dynamodb::Client, tables: TableNames) -> Self {
        let own_retries = aws_sdk_dynamodb::Client::from_conf(
            client
                .config()
                .to_builder()
                .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
                .build(),
        );
        Self {
            own_retries,
            client,
            tables,
            rate_memory: Default::default(),
            price_cache: Default::default(),
            reachability: Default::default(),
        }
    }

    /// Whether `table` answers a DescribeTable within [`REACHABILITY_TIMEOUT`] in a state that
    /// serves reads and writes. DescribeTable reads no item, so `/health` needs no data
    /// permission; it fails for a table that is missing, denied to this role or whose DynamoDB
    /// endpoint is down, and reports one being deleted, archived or cut off from its KMS key.
    async fn table_answers(&self, table: Table) -> bool {
        let probe = self
            .client
            .describe_table()
            .table_name(self.tables.name(table))
            .send();
        match tokio::time::timeout(REACHABILITY_TIMEOUT, probe).await {
            Ok(Ok(output)) => matches!(
                output.table.and_then(|t| t.table_status),
                Some(TableStatus::Active | TableStatus::Updating)
            ),
            _ => false,
        }
    }
}

impl Reachable for DynamoStore {
    /// Every table, probed in parallel, at most once per [`REACHABILITY_CACHE`] per instance.
    async fn unreachable(&self) -> Vec<&'static str> {
        let cached = self
            .reachability
            .lock()
            .unwrap()
            .as_ref()
            .filter(|(found_at, _)| found_at.elapsed() < REACHABILITY_CACHE)
            .map(|(_, down)| down.clone());
        if let Some(down) = cached {
            return down;
        }
        let answers =
            futures::future::join_all(Table::ALL.map(|table| self.table_answers(table))).await;
        let down: Vec<&'static str> = Table::ALL
            .iter()
            .zip(answers)
            .filter(|(_, answers)| !answers)
            .map(|(table, _)| table.default_name())
            .collect();
        *self.reachability.lock().unwrap() = Some((std::time::Instant::now(), down.clone()));
        down
    }
}

/// An SDK failure as a store error. DynamoDB's `ValidationException` means the request itself was
/// wrong (a key over 2,048 bytes, a mistyped key attribute): input is parsed before any call, so
/// that is a fault of ours, [`StoreError::Rejected`] (500), and retrying would not help. Every
/// other failure (throttling, network, 5xx) is [`StoreError::Unavailable`] (503).
fn sdk_failure<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        == Some("ValidationException")
    {
        StoreError::Rejected(Box::new(error))
    } else {
        StoreError::unavailable(error)
    }
}

/// Whether a failed call may succeed if sent again: a throttle, a transaction conflict, a 5xx, or
/// no answer at all (timeout, connection). Only for calls that are safe to send twice.
fn is_retryable<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    match error {
        SdkError::ServiceError(failure) => {
            let code = failure.err().code().unwrap_or_default();
            count_met(code);
            code.starts_with("TransactionConflict")
                || code.starts_with("Throttling")
                || code.starts_with("ProvisionedThroughputExceeded")
                || code.starts_with("RequestLimitExceeded")
                || code.starts_with("InternalServerError")
                || code.starts_with("ServiceUnavailable")
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    }
}

/// Counts the throttle or the transaction conflict an error `code` (or a cancellation reason's)
/// says a call met.
fn count_met(code: &str) {
    use crate::metrics::{BusinessMetric, count};
    if code.starts_with("Throttling")
        || code.starts_with("ProvisionedThroughputExceeded")
        || code.starts_with("RequestLimitExceeded")
    {
        count(BusinessMetric::Throttles);
    } else if code.starts_with("TransactionConflict") {
        count(BusinessMetric::TransactionConflicts);
    }
}

/// Tries of a read that keeps meeting a throttle (a hot key's read budget) or no answer.
const READ_ATTEMPTS: u32 = 8;

/// Sends a read (`call` builds and sends it on the client without the SDK's retries) again while it fails
/// retryably: [`READ_ATTEMPTS`] tries, 5 ms doubling to 250 ms with full jitter (~1 s in all).
async fn with_read_retries<T, E, R, F, Fut>(mut call: F) -> Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if attempt < READ_ATTEMPTS && is_retryable(&error) => {
                crate::metrics::count(crate::metrics::BusinessMetric::Retries);
                tokio::time::sleep(crate::retry::full_jitter(
                    Duration::from_millis(5),
                    attempt,
                    Duration::from_millis(250),
                ))
                .await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Whether a call failed only because its condition expression was false.
fn is_condition_failure<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

/// The outcome of a conditional write: `Ok(true)` when it was applied, `Ok(false)` when only its
/// condition was false (another writer won, or the state was not the expected one), else 503.
fn condition_held<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(sdk_failure(e)),
    }
}

/// BatchGetItem calls for one chunk of keys while some stay unprocessed (a throttled key).
const BATCH_GET_ATTEMPTS: u32 = 8;

impl DynamoStore {
    /// One BatchGetItem chunk (at most 100 keys), retrying `UnprocessedKeys` with backoff.
    pub(super) async fn batch_get(
        &self,
        table: &str,
        keys: Vec<items::Item>,
        consistent: bool,
    ) -> Result<Vec<items::Item>, StoreError> {
        let mut pending = keys;
        let mut found = Vec::with_capacity(pending.len());
        for attempt in 0..BATCH_GET_ATTEMPTS {
            if attempt > 0 {
                crate::metrics::count(crate::metrics::BusinessMetric::Retries);
                tokio::time::sleep(crate::retry::full_jitter(
                    Duration::from_millis(20),
                    attempt,
                    Duration::from_secs(1),
                ))
                .await;
            }
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(consistent)
                .build()
                .map_err(StoreError::unavailable)?;
            let sent = self
                .own_retries
                .batch_get_item()
                .request_items(table, request.clone())
                .send()
                .await;
            let mut output = match sent {
                Ok(output) => output,
                // Every key throttled (or no answer): all of them are still pending.
                Err(error) if is_retryable(&error) => {
                    pending = request.keys().to_vec();
                    continue;
                }
                Err(error) => return Err(sdk_failure(error)),
            };
            found.extend(
                output
                    .responses
                    .as_mut()
                    .and_then(|r| r.remove(table))
                    .unwrap_or_default(),
            );
            pending = output
                .unprocessed_keys
                .as_mut()
                .and_then(|u| u.remove(table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
        }
        Err(StoreError::unavailable(UnprocessedKeys {
            remaining: pending.len(),
            attempts: BATCH_GET_ATTEMPTS,
        }))
    }
}

/// A `BatchGetItem` that kept returning `UnprocessedKeys` (sustained throttling).
#[derive(Debug, thiserror::Error)]
#[error("{remaining} keys were still unprocessed after {attempts} BatchGetItem calls")]
struct UnprocessedKeys {
    remaining: usize,
    attempts: u32,
}

/// Index names, shared by the queries here and the table creation in `schema`.
pub(crate) mod index {
    /// The index that lists a user's orders newest first (keys only).
    pub(crate) const USER_ORDERS: &str = "user-orders-keys";
    /// The sparse index of PENDING and PROCESSING orders by shard and placement time, keys only
    /// (the reconciler's query).
    pub(crate) const UNSETTLED: &str = "unsettled-orders";
    /// The index that finds a user's WebSocket connections.
    pub(crate) const USER_CONNECTIONS: &str = "user-connections";
    /// The sparse index of ACTIVE holds by sweep shard and end of window (the sweeper's query).
    pub(crate) const ACTIVE_HOLDS: &str = "active-holds";
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    use super::*;

    fn service_error(code: &str) -> SdkError<GetItemError, ()> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("refused")
            .build();
        SdkError::service_error(GetItemError::generic(meta), ())
    }

    #[tokio::test]
    async fn a_read_that_meets_a_throttle_counts_it_and_each_retry() {
        use crate::metrics::{BusinessMetric, collect};
        let tries = std::cell::Cell::new(0);
        let (read, tally) = collect(with_read_retries(|| {
            tries.set(tries.get() + 1);
            let answer = match tries.get() {
                1 => Err(service_error("ThrottlingException")),
                _ => Ok(()),
            };
            async move { answer }
        }))
        .await;
        assert!(read.is_ok());
        assert_eq!(tally.count(BusinessMetric::Throttles), 1);
        assert_eq!(tally.count(BusinessMetric::Retries), 1);
    }

    #[test]
    fn a_validation_exception_is_ours_and_throttling_is_unavailability() {
        assert!(matches!(
            sdk_failure(service_error("ValidationException")),
            StoreError::Rejected(_)
        ));
        assert!(matches!(
            sdk_failure(service_error("ThrottlingException")),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            sdk_failure(service_error("ProvisionedThroughputExceededException")),
            StoreError::Unavailable(_)
        ));
    }
}
