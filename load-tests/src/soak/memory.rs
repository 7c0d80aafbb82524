//! The process's resident memory, read from `/proc/self/status` (Linux; elsewhere every figure is
//! 0): sampled every second for the peak, and read at each checkpoint to show whether it is flat.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// A field of `/proc/self/status` in kB (`VmRSS`, `VmHWM`), 0 when unreadable.
pub(crate) fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                rest.split_whitespace().next()?.parse().ok()
            })
        })
        .unwrap_or(0)
}

/// The size of the files in `dir` (the stack's SQLite database and its write-ahead log), in MB.
pub(crate) fn tables_mb(dir: &std::path::Path) -> u64 {
    let bytes: u64 = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .map(|meta| meta.len())
                .sum()
        })
        .unwrap_or(0);
    bytes / (1024 * 1024)
}

/// The highest `VmRSS` seen by a one-second sampler.
pub(crate) struct RssSampler {
    peak_kb: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling.
    pub(crate) fn start() -> Self {
        let peak_kb = Arc::new(AtomicU64::new(status_kb("VmRSS")));
        let peak = Arc::clone(&peak_kb);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                peak.fetch_max(status_kb("VmRSS"), Ordering::Relaxed);
            }
        });
        RssSampler { peak_kb, task }
    }

    /// The highest sample so far, in kB.
    pub(crate) fn peak_kb(&self) -> u64 {
        self.peak_kb.load(Ordering::Relaxed).max(status_kb("VmRSS"))
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// kB as MB with no decimals, for the report.
pub(crate) fn mb(kb: u64) -> u64 {
    (kb + 512) / 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_set_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(status_kb("VmRSS") > 0);
            assert!(status_kb("VmHWM") >= status_kb("VmRSS") / 2);
        }
        assert_eq!(status_kb("NoSuchField"), 0);
    }
}
