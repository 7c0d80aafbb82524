//! What a payment provider decides about a charge, whether it answered the charge call (the
//! simulated gateway) or sent a webhook.

/// What the payment provider decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Charged.
    Approved,
    /// Refused for a business reason (card declined, ...): the order fails.
    Declined {
        /// The provider's reason, passed on to the buyer.
        reason: String,
    },
}
