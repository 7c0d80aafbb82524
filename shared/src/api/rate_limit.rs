//! Per-subject rate limiting over a sliding 60-second span, whose log lives in the store, so it
//! holds across Lambda instances that share no memory.

use crate::ports::{Clock, RateCounter, RateDecision};

use super::ApiError;

/// Counts this request against `subject`'s last 60 seconds; 429 with `Retry-After` (the seconds
/// until the same request would be allowed, rounded up) when `per_minute` were already counted.
pub(crate) async fn check(
    counter: &impl RateCounter,
    clock: &impl Clock,
    subject: &str,
    per_minute: u32,
) -> Result<(), ApiError> {
    if per_minute == 0 {
        return Ok(());
    }
    match counter.try_count(subject, clock.now(), per_minute).await? {
        RateDecision::Allowed => Ok(()),
        RateDecision::Limited { retry_after_secs } => {
            Err(ApiError::RateLimited { retry_after_secs })
        }
    }
}
