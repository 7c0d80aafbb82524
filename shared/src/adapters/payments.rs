//! The simulated payment provider: approves `PAYMENT_SUCCESS_RATE` of charges after 50-200 ms,
//! declines the rest with a reason, and can fail with a technical error at
//! `PAYMENT_TRANSIENT_ERROR_RATE`.
//!
//! The decision and the latency come from a generator seeded with `PAYMENT_SEED` (or a per-process
//! random seed) mixed with the order id, so the provider is idempotent per order like a real one
//! called with the order id as idempotency key: charging the same order twice gives the same answer.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::PaymentSettings;
use crate::domain::Order;
use crate::ports::{PaymentError, PaymentGateway, PaymentOutcome};

/// Reasons a simulated decline gives.
const DECLINE_REASONS: [&str; 3] = ["card_declined", "insufficient_funds", "expired_card"];

/// The technical error the simulator throws.
#[derive(Debug, thiserror::Error)]
#[error("simulated transient payment provider error")]
struct TransientFailure;

/// The simulated provider.
#[derive(Debug, Clone)]
pub struct SimulatedPayments {
    seed: u64,
    success_rate: f64,
    transient_error_rate: f64,
    latency: (u64, u64),
}

impl SimulatedPayments {
    /// From `PAYMENT_SUCCESS_RATE`, `PAYMENT_SEED` and `PAYMENT_TRANSIENT_ERROR_RATE`.
    pub fn from_settings(settings: &PaymentSettings) -> Self {
        Self {
            seed: settings.seed.unwrap_or_else(rand::random),
            success_rate: settings.success_rate,
            transient_error_rate: settings.transient_error_rate,
            latency: (50, 200),
        }
    }

    /// Without latency (unit tests).
    pub fn instant(mut self) -> Self {
        self.latency = (0, 0);
        self
    }

    fn generator_for(&self, order: &Order) -> StdRng {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.seed.hash(&mut hasher);
        order.id.as_str().hash(&mut hasher);
        StdRng::seed_from_u64(hasher.finish())
    }
}

impl PaymentGateway for SimulatedPayments {
    async fn charge(&self, order: &Order) -> Result<PaymentOutcome, PaymentError> {
        let mut decision = self.generator_for(order);
        let latency = decision.random_range(self.latency.0..=self.latency.1);
        let approved = decision.random_bool(self.success_rate);
        let reason = DECLINE_REASONS[decision.random_range(0..DECLINE_REASONS.len())];
        tokio::time::sleep(Duration::from_millis(latency)).await;
        // Technical errors are per call, not per order: a retry may get through.
        if self.transient_error_rate > 0.0 && rand::rng().random_bool(self.transient_error_rate) {
            return Err(PaymentError(Box::new(TransientFailure)));
        }
        Ok(if approved {
            PaymentOutcome::Approved
        } else {
            PaymentOutcome::Declined {
                reason: reason.to_owned(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IdempotencyKey, OrderId, UserId};

    fn order(id: &str) -> Order {
        Order::place(
            OrderId::new(id),
            UserId::new("u"),
            IdempotencyKey::parse("k").unwrap(),
            vec![],
            chrono::Utc::now(),
        )
    }

    fn gateway(seed: u64, success_rate: f64) -> SimulatedPayments {
        let settings = PaymentSettings {
            seed: Some(seed),
            success_rate,
            ..PaymentSettings::default()
        };
        SimulatedPayments::from_settings(&settings).instant()
    }

    #[tokio::test]
    async fn the_same_seed_and_order_always_get_the_same_answer() {
        let (a, b) = (gateway(7, 0.5), gateway(7, 0.5));
        for i in 0..50 {
            let o = order(&format!("order-{i}"));
            assert_eq!(a.charge(&o).await.unwrap(), b.charge(&o).await.unwrap());
            assert_eq!(
                a.charge(&o).await.unwrap(),
                a.charge(&o).await.unwrap(),
                "idempotent per order"
            );
        }
    }

    #[tokio::test]
    async fn success_rate_is_respected_over_many_orders() {
        let payments = gateway(42, 0.8);
        let mut approved = 0;
        for i in 0..1_000 {
            if payments.charge(&order(&format!("o{i}"))).await.unwrap() == PaymentOutcome::Approved
            {
                approved += 1;
            }
        }
        assert!(
            (740..=860).contains(&approved),
            "approved {approved} of 1000 at rate 0.8"
        );
        match gateway(1, 0.0).charge(&order("x")).await.unwrap() {
            PaymentOutcome::Declined { reason } => {
                assert!(DECLINE_REASONS.contains(&reason.as_str()))
            }
            PaymentOutcome::Approved => panic!("rate 0 never approves"),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_thrown_at_the_configured_rate() {
        let settings = PaymentSettings {
            transient_error_rate: 1.0,
            ..PaymentSettings::default()
        };
        assert!(
            SimulatedPayments::from_settings(&settings)
                .instant()
                .charge(&order("o"))
                .await
                .is_err()
        );
    }
}
