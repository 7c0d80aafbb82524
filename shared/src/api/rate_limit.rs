//! Per-subject, per-minute rate limiting whose count lives in the store, so it holds across Lambda
//! instances that share no memory.

use crate::ports::{Clock, RateCounter};

use super::ApiError;

/// Counts this request against `subject`'s current minute; 429 with `Retry-After` when over.
pub(crate) async fn check(
    counter: &impl RateCounter,
    clock: &impl Clock,
    subject: &str,
    per_minute: u32,
) -> Result<(), ApiError> {
    if per_minute == 0 {
        return Ok(());
    }
    let now = clock.now().timestamp();
    let window = now.div_euclid(60);
    if counter.try_count(subject, window, per_minute).await? {
        Ok(())
    } else {
        Err(ApiError::RateLimited {
            retry_after_secs: (60 - now.rem_euclid(60)) as u64,
        })
    }
}
