//! The fault schedule: every few seconds a new random set of rules on DynamoDB, SQS and the
//! WebSocket management API (or none for a while), each firing with a probability of 5 to 30 %.

use std::time::Duration;

use localstack::{FaultKind, FaultRule, FaultService};
use rand::Rng;
use rand::rngs::StdRng;

/// One kind of rule the schedule can set: service, operation (`None`: any) and fault.
type Menu = (FaultService, Option<&'static str>, FaultKind);

/// Every rule the schedule draws from: what AWS gives under contention and outage, on the calls
/// the handlers, the consumer, the reconciler, the sweeper and the notifier make.
const MENU: &[Menu] = &[
    (
        FaultService::Dynamodb,
        Some("TransactWriteItems"),
        FaultKind::TransactionConflict,
    ),
    (
        FaultService::Dynamodb,
        None,
        FaultKind::ProvisionedThroughputExceeded,
    ),
    (FaultService::Dynamodb, None, FaultKind::Throttling),
    (FaultService::Dynamodb, None, FaultKind::InternalError),
    (FaultService::Dynamodb, None, FaultKind::Latency),
    (FaultService::Dynamodb, None, FaultKind::DropBefore),
    (
        FaultService::Dynamodb,
        Some("TransactWriteItems"),
        FaultKind::DropAfter,
    ),
    (
        FaultService::Dynamodb,
        Some("UpdateItem"),
        FaultKind::DropAfter,
    ),
    (
        FaultService::Dynamodb,
        Some("PutItem"),
        FaultKind::DropAfter,
    ),
    (
        FaultService::Sqs,
        Some("SendMessage"),
        FaultKind::InternalError,
    ),
    (FaultService::Sqs, Some("SendMessage"), FaultKind::DropAfter),
    (
        FaultService::Sqs,
        Some("SendMessage"),
        FaultKind::Throttling,
    ),
    (
        FaultService::Sqs,
        Some("DeleteMessageBatch"),
        FaultKind::InternalError,
    ),
    (
        FaultService::Sqs,
        Some("DeleteMessageBatch"),
        FaultKind::DropBefore,
    ),
    (
        FaultService::Sqs,
        Some("ReceiveMessage"),
        FaultKind::Latency,
    ),
    (
        FaultService::Apigw,
        Some("PostToConnection"),
        FaultKind::InternalError,
    ),
    (
        FaultService::Apigw,
        Some("PostToConnection"),
        FaultKind::Throttling,
    ),
    (
        FaultService::Apigw,
        Some("PostToConnection"),
        FaultKind::Gone,
    ),
    (
        FaultService::Apigw,
        Some("PostToConnection"),
        FaultKind::Latency,
    ),
];

/// The next set of rules (empty about one time in five: a calm spell) and how long it lasts.
pub(crate) fn next_rules(rng: &mut StdRng) -> (Vec<FaultRule>, Duration) {
    let lasts = Duration::from_millis(rng.random_range(2_000..5_000));
    if rng.random_bool(0.2) {
        return (Vec::new(), lasts);
    }
    let count = rng.random_range(1..=3);
    let rules = (0..count)
        .map(|_| {
            let (service, operation, fault) = MENU[rng.random_range(0..MENU.len())];
            let rule = FaultRule::new(service, operation, fault)
                .probability(f64::from(rng.random_range(5_u32..=30)) / 100.0);
            match fault {
                // Long enough to overlap other requests, short of the clients' timeouts.
                FaultKind::Latency => {
                    rule.latency(Duration::from_millis(rng.random_range(50..600)))
                }
                _ => rule,
            }
        })
        .collect();
    (rules, lasts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_rule_on_the_menu_is_one_the_stack_accepts() {
        let faults = localstack::Faults::new();
        for &(service, operation, fault) in MENU {
            let rule = FaultRule::new(service, operation, fault).probability(0.1);
            assert_eq!(faults.set(vec![rule]), Ok(()), "{service:?} {fault:?}");
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_schedule() {
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20).map(|_| next_rules(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert!(draw(7).iter().any(|(rules, _)| !rules.is_empty()));
    }
}
