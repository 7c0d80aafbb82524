//! Rate limits: per-subject request counts over a sliding 60-second span.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::StoreError;

/// The span a rate limit counts over: no subject gets more than its limit in any 60 seconds.
pub use crate::domain::RATE_SPAN_MS;

/// What a [`RateCounter`] decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Counted: the request may go on.
    Allowed,
    /// Not counted: `retry_after_secs` is when the same request would be allowed (rounded up).
    Limited {
        /// Whole seconds, at least 1.
        retry_after_secs: u64,
    },
}

impl RateDecision {
    /// Every request's answer under a limit of 0: refused without being counted, for a whole span.
    pub const ZERO_LIMIT: RateDecision = RateDecision::Limited {
        retry_after_secs: (RATE_SPAN_MS / 1000) as u64,
    };
}

/// Counts requests per subject over a sliding 60-second span, shared by every Lambda instance.
pub trait RateCounter: Send + Sync {
    /// Counts one request at `now` unless `subject` already had `limit` requests counted in the
    /// 60 seconds before it, counted in 2-second buckets (`domain/rate_window.rs`: a grant 60 to
    /// 62 s old may still count); a `limit` of 0 counts nothing.
    fn try_count(
        &self,
        subject: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<RateDecision, StoreError>> + Send;
}
