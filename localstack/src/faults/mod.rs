//! Fault injection on the local stack's AWS endpoint and WebSocket management API: the failures
//! real AWS gives under contention and outage (a conflicting transaction, throttling, a 5xx, a slow
//! or cut connection), switched on per test or per run, so that the handlers' retry budgets and
//! "nothing half-written" rules are exercised through the real SDK clients instead of fakes.
//!
//! Rules are set over HTTP at `/_local/faults` on the AWS endpoint (`POST` a JSON list replaces
//! them, `DELETE` clears them, `GET` reports them with the injections made so far; `?reset=true`
//! zeroes the counts), or in-process through [`Faults`]. With no rule set nothing is read or
//! delayed: a plain flag is checked per request.
//!
//! A rule names the service (`dynamodb`, `sqs` or `apigw`, the WebSocket management API), an
//! optional operation (`TransactWriteItems`, `SendMessage`, `DeleteMessageBatch`,
//! `PostToConnection`, ...; none = every operation), for DynamoDB an optional table, the fault, a
//! probability, how many matching requests to let through first (`skip`) and how many to fail at
//! most (`times`). The first rule that matches a request and fires decides its fate.
//!
//! What each fault looks like on the wire, as AWS sends it:
//! - `transaction_conflict`: DynamoDB `TransactionCanceledException` whose reasons carry
//!   `TransactionConflict` on the first action and `None` on the others (a single-item write gets
//!   `TransactionConflictException`, what DynamoDB answers a write that meets an ongoing transaction);
//! - `provisioned_throughput_exceeded`: DynamoDB `ProvisionedThroughputExceededException` (400);
//! - `throttling`: DynamoDB `ThrottlingException` (400), SQS `RequestThrottled` (400), the
//!   management API `LimitExceededException` (429);
//! - `internal_error`: HTTP 500 (`InternalServerError`, SQS `InternalError`, the management API
//!   `InternalServerErrorException`);
//! - `latency`: the request waits `latency_ms` and then goes through (a long one stands for a hang);
//! - `drop_before`: the connection is cut before the request reaches the service (nothing applied);
//! - `drop_after`: the request is applied and the connection cut before the answer is sent, the
//!   case where a client cannot know whether its write happened (not for `apigw`);
//! - `gone` (`apigw` only): 410 `GoneException`, as for a connection that went away.

mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub(crate) use self::wire::{FaultResponse, table_names};

/// Where the faults are set and reported on the AWS endpoint.
pub(crate) const FAULTS_PATH: &str = "/_local/faults";

/// The service a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultService {
    /// DynamoDB on the AWS endpoint.
    Dynamodb,
    /// SQS on the AWS endpoint.
    Sqs,
    /// The WebSocket API's management API (`PostToConnection`, `GetConnection`, `DeleteConnection`).
    Apigw,
}

impl FaultService {
    fn name(self) -> &'static str {
        match self {
            FaultService::Dynamodb => "dynamodb",
            FaultService::Sqs => "sqs",
            FaultService::Apigw => "apigw",
        }
    }
}

/// What a request that meets a rule gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A transaction cancelled by a conflicting one.
    TransactionConflict,
    /// DynamoDB's provisioned-throughput refusal.
    ProvisionedThroughputExceeded,
    /// The service's throttling answer.
    Throttling,
    /// HTTP 500.
    InternalError,
    /// A delay of `latency_ms` before the request goes through.
    Latency,
    /// The connection cut before the request reaches the service.
    DropBefore,
    /// The request applied and the connection cut before the answer.
    DropAfter,
    /// 410 from the management API.
    Gone,
}

impl FaultKind {
    fn name(self) -> &'static str {
        match self {
            FaultKind::TransactionConflict => "transaction_conflict",
            FaultKind::ProvisionedThroughputExceeded => "provisioned_throughput_exceeded",
            FaultKind::Throttling => "throttling",
            FaultKind::InternalError => "internal_error",
            FaultKind::Latency => "latency",
            FaultKind::DropBefore => "drop_before",
            FaultKind::DropAfter => "drop_after",
            FaultKind::Gone => "gone",
        }
    }

    /// Whether `service` can give this fault.
    fn fits(self, service: FaultService) -> bool {
        match self {
            FaultKind::TransactionConflict | FaultKind::ProvisionedThroughputExceeded => {
                service == FaultService::Dynamodb
            }
            FaultKind::DropBefore | FaultKind::DropAfter => service != FaultService::Apigw,
            FaultKind::Gone => service == FaultService::Apigw,
            FaultKind::Throttling | FaultKind::InternalError | FaultKind::Latency => true,
        }
    }
}

/// One rule; see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub service: FaultService,
    /// The operation (`TransactWriteItems`, `SendMessage`, `PostToConnection`, ...); `None`: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// DynamoDB only: the request must name this table (exactly; any of a transaction's tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    pub fault: FaultKind,
    /// Chance that a matching request gets the fault (1 by default).
    #[serde(default = "always")]
    pub probability: f64,
    /// Matching requests let through before the rule starts firing (0 by default).
    #[serde(default)]
    pub skip: u64,
    /// Most faults this rule injects (`None`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// The delay of a `latency` fault.
    #[serde(default)]
    pub latency_ms: u64,
}

fn always() -> f64 {
    1.0
}

impl FaultRule {
    /// A rule failing every `operation` (`None`: any) of `service` with `fault`.
    pub fn new(service: FaultService, operation: Option<&str>, fault: FaultKind) -> Self {
        FaultRule {
            service,
            operation: operation.map(str::to_owned),
            table: None,
            fault,
            probability: 1.0,
            skip: 0,
            times: None,
            latency_ms: 0,
        }
    }

    /// Only requests naming `table`.
    pub fn on_table(mut self, table: &str) -> Self {
        self.table = Some(table.to_owned());
        self
    }

    /// Fires with probability `p`.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    /// Lets the first `n` matching requests through.
    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    /// Fires at most `n` times.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// A `latency` rule's delay.
    pub fn latency(mut self, delay: Duration) -> Self {
        self.latency_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self
    }

    fn check(&self) -> Result<(), String> {
        if !self.fault.fits(self.service) {
            return Err(format!(
                "{} cannot give {}",
                self.service.name(),
                self.fault.name()
            ));
        }
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(format!(
                "probability {} is not within 0..=1",
                self.probability
            ));
        }
        if self.table.is_some() && self.service != FaultService::Dynamodb {
            return Err("only dynamodb rules name a table".into());
        }
        Ok(())
    }
}

/// A request as the rules see it.
pub(crate) struct Call<'a> {
    pub service: FaultService,
    pub operation: &'a str,
    /// The tables a DynamoDB request names (empty for other services).
    pub tables: &'a [String],
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injection {
    /// Answer with this fault instead of the service.
    Answer(FaultKind),
    /// Wait, then go through.
    Delay(Duration),
    /// Cut the connection before the service sees the request.
    DropBefore,
    /// Let the service apply it, then cut the connection.
    DropAfter,
}

struct ActiveRule {
    rule: FaultRule,
    seen: u64,
    fired: u64,
}

#[derive(Default)]
struct State {
    rules: Vec<ActiveRule>,
    /// Injections by `<service>.<operation>.<fault>`.
    injected: BTreeMap<String, u64>,
}

/// The fault rules of one stack, shared by its AWS endpoint and its WebSocket management API.
#[derive(Default)]
pub struct Faults {
    /// Whether any rule is set: the per-request check when none is.
    armed: AtomicBool,
    state: Mutex<State>,
}

impl Faults {
    /// No rules.
    pub fn new() -> Arc<Self> {
        Arc::new(Faults::default())
    }

    /// Replaces the rules (counts of injections so far are kept).
    pub fn set(&self, rules: Vec<FaultRule>) -> Result<(), String> {
        for rule in &rules {
            rule.check()?;
        }
        let mut state = self.lock();
        self.armed.store(!rules.is_empty(), Ordering::Release);
        state.rules = rules
            .into_iter()
            .map(|rule| ActiveRule {
                rule,
                seen: 0,
                fired: 0,
            })
            .collect();
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let _ = self.set(Vec::new());
    }

    /// Injections made so far, by `<service>.<operation>.<fault>`.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.lock().injected.clone()
    }

    /// All injections made so far.
    pub fn injected_total(&self) -> u64 {
        self.lock().injected.values().sum()
    }

    /// Whether any rule is set.
    pub(crate) fn armed(&self) -> bool {
        self.armed.load(Ordering::Acquire)
    }

    /// The fate of one request: `None` lets it through untouched.
    pub(crate) fn decide(&self, call: &Call<'_>) -> Option<Injection> {
        let mut state = self.lock();
        let State { rules, injected } = &mut *state;
        for active in rules.iter_mut() {
            let rule = &active.rule;
            if rule.service != call.service || !operation_matches(rule, call.operation) {
                continue;
            }
            if let Some(table) = &rule.table
                && !call.tables.iter().any(|t| t == table)
            {
                continue;
            }
            active.seen += 1;
            if active.seen <= rule.skip || rule.times.is_some_and(|n| active.fired >= n) {
                continue;
            }
            if rule.probability < 1.0 && rand::random::<f64>() >= rule.probability {
                continue;
            }
            active.fired += 1;
            let key = format!(
                "{}.{}.{}",
                rule.service.name(),
                call.operation,
                rule.fault.name()
            );
            *injected.entry(key).or_default() += 1;
            return Some(match rule.fault {
                FaultKind::Latency => Injection::Delay(Duration::from_millis(rule.latency_ms)),
                FaultKind::DropBefore => Injection::DropBefore,
                FaultKind::DropAfter => Injection::DropAfter,
                fault => Injection::Answer(fault),
            });
        }
        None
    }

    /// The `/_local/faults` report: the rules with how often each matched and fired, and the
    /// injections by kind.
    pub(crate) fn report(&self, reset: bool) -> Value {
        let mut state = self.lock();
        let rules: Vec<Value> = state
            .rules
            .iter()
            .map(|active| {
                json!({
                    "rule": active.rule,
                    "matched": active.seen,
                    "fired": active.fired,
                })
            })
            .collect();
        let total: u64 = state.injected.values().sum();
        let report = json!({ "rules": rules, "injected": state.injected, "total": total });
        if reset {
            state.injected.clear();
        }
        report
    }

    /// Serves `/_local/faults`: `GET` reports, `POST` replaces the rules with the body's JSON list
    /// (or `{"rules": [...]}`), `DELETE` clears them. Answers (status, JSON).
    pub(crate) fn control(&self, method: &http::Method, query: &str, body: &[u8]) -> (u16, Value) {
        let reset = query.split('&').any(|pair| pair == "reset=true");
        match *method {
            http::Method::GET => (200, self.report(reset)),
            http::Method::DELETE => {
                self.clear();
                (200, self.report(reset))
            }
            http::Method::POST | http::Method::PUT => {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Rules {
                    List(Vec<FaultRule>),
                    Wrapped { rules: Vec<FaultRule> },
                }
                let rules = match serde_json::from_slice::<Rules>(body) {
                    Ok(Rules::List(rules) | Rules::Wrapped { rules }) => rules,
                    Err(error) => return (400, json!({ "message": error.to_string() })),
                };
                match self.set(rules) {
                    Ok(()) => (200, self.report(reset)),
                    Err(message) => (400, json!({ "message": message })),
                }
            }
            _ => (405, json!({ "message": "GET, POST or DELETE" })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn operation_matches(rule: &FaultRule, operation: &str) -> bool {
    rule.operation.as_deref().is_none_or(|op| op == operation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(service: FaultService, operation: &'a str, tables: &'a [String]) -> Call<'a> {
        Call {
            service,
            operation,
            tables,
        }
    }

    #[test]
    fn a_rule_fires_after_its_skip_and_up_to_its_times() {
        let faults = Faults::new();
        faults
            .set(vec![
                FaultRule::new(
                    FaultService::Dynamodb,
                    Some("TransactWriteItems"),
                    FaultKind::TransactionConflict,
                )
                .skip(1)
                .times(2),
            ])
            .unwrap();
        let fates: Vec<_> = (0..5)
            .map(|_| faults.decide(&call(FaultService::Dynamodb, "TransactWriteItems", &[])))
            .collect();
        let conflict = Some(Injection::Answer(FaultKind::TransactionConflict));
        assert_eq!(fates, vec![None, conflict, conflict, None, None]);
        assert_eq!(
            faults.decide(&call(FaultService::Dynamodb, "GetItem", &[])),
            None
        );
        assert_eq!(
            faults.injected(),
            BTreeMap::from([(
                "dynamodb.TransactWriteItems.transaction_conflict".to_owned(),
                2
            )])
        );
    }

    #[test]
    fn a_table_rule_matches_only_requests_naming_its_table() {
        let faults = Faults::new();
        faults
            .set(vec![
                FaultRule::new(FaultService::Dynamodb, None, FaultKind::InternalError)
                    .on_table("orders"),
            ])
            .unwrap();
        let other = ["products".to_owned()];
        let both = ["products".to_owned(), "orders".to_owned()];
        assert_eq!(
            faults.decide(&call(FaultService::Dynamodb, "PutItem", &other)),
            None
        );
        assert_eq!(
            faults.decide(&call(FaultService::Dynamodb, "TransactWriteItems", &both)),
            Some(Injection::Answer(FaultKind::InternalError))
        );
    }

    #[test]
    fn rules_that_a_service_cannot_give_are_refused_over_http() {
        let faults = Faults::new();
        let (status, _) = faults.control(
            &http::Method::POST,
            "",
            br#"[{"service":"apigw","fault":"drop_after"}]"#,
        );
        assert_eq!(status, 400);
        let (status, _) = faults.control(
            &http::Method::POST,
            "",
            br#"{"rules":[{"service":"sqs","operation":"SendMessage","fault":"internal_error","probability":0.5}]}"#,
        );
        assert_eq!(status, 200);
        assert!(faults.armed());
        let (_, report) = faults.control(&http::Method::DELETE, "", b"");
        assert!(!faults.armed());
        assert_eq!(report["rules"], json!([]));
    }

    #[test]
    fn probability_zero_never_fires() {
        let faults = Faults::new();
        faults
            .set(vec![
                FaultRule::new(FaultService::Sqs, None, FaultKind::Throttling).probability(0.0),
            ])
            .unwrap();
        for _ in 0..100 {
            assert_eq!(
                faults.decide(&call(FaultService::Sqs, "SendMessage", &[])),
                None
            );
        }
    }
}
