//! The hold sweeper: ACTIVE holds whose window closed go to EXPIRED with their units back, each
//! in one transaction conditional on ACTIVE and on the window, so a checkout racing the sweep
//! (or two sweeps) moves each hold exactly once.

use crate::metrics::{self, BusinessMetric};
use crate::ports::{Clock, HoldStore};

use super::AppError;

/// Holds read per query page.
const PAGE: u32 = 100;
/// Pages per run: a run is bounded; what is left goes to the next run, a minute later at most.
const MAX_PAGES: u32 = 50;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Holds this run expired (their units are back).
    pub expired: u32,
    /// Holds a checkout or another sweep moved first.
    pub lost_races: u32,
}

/// The ports sweeping uses.
pub struct ExpireHolds<'a, S, C> {
    /// The holds.
    pub store: &'a S,
    /// The time.
    pub clock: &'a C,
}

impl<S: HoldStore, C: Clock> ExpireHolds<'_, S, C> {
    /// Expires every hold whose window had closed when the run started (up to the run's bound).
    pub async fn run(&self) -> Result<SweepReport, AppError> {
        let mut report = SweepReport::default();
        for _ in 0..MAX_PAGES {
            let now = self.clock.now();
            let due = self.store.expired_holds(now, PAGE).await?;
            let page_len = due.len();
            for hold in due {
                if self.store.expire_hold(&hold.expired(now)).await? {
                    tracing::info!(hold_id = %hold.id, product_id = %hold.product_id, quantity = hold.quantity.get(), "hold expired, stock restored");
                    report.expired += 1;
                    metrics::count(BusinessMetric::HoldsExpired);
                } else {
                    report.lost_races += 1;
                }
            }
            if page_len < PAGE as usize {
                break;
            }
        }
        Ok(report)
    }
}
