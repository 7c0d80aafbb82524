//! EventBridge schedules, emulated: a job that runs every interval, as a `rate(...)` rule invokes its
//! Lambda. Runs never overlap (a run that outlasts the interval delays the next one), so a job need
//! not guard against itself.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::time::{Instant, MissedTickBehavior};

use crate::event_source::panic_message;
use crate::server::ServerTask;

/// A scheduled job: what the scheduled Lambda's handler does, minus the runtime.
pub(crate) type ScheduledJob = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync + 'static>;

/// Runs `job` every `interval`, the first time one interval after the start, until the returned
/// task is stopped. A run in progress when the stop comes is allowed to finish (within the stop's
/// grace); a panicking run is logged and the schedule goes on.
pub(crate) fn spawn_schedule(
    name: &'static str,
    interval: Duration,
    job: ScheduledJob,
) -> ServerTask {
    ServerTask::spawn(name, move |mut stop| async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticks.tick() => {}
            }
            if let Err(panic) = AssertUnwindSafe(job()).catch_unwind().await {
                tracing::error!(
                    schedule = name,
                    panic = panic_message(&*panic),
                    "the scheduled job panicked"
                );
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// When each run started and whether any two overlapped.
    #[derive(Default)]
    struct Runs {
        starts: Mutex<Vec<Instant>>,
        running: AtomicUsize,
        overlaps: AtomicUsize,
    }

    impl Runs {
        fn count(&self) -> usize {
            self.starts.lock().unwrap().len()
        }
    }

    fn recording_job(runs: &Arc<Runs>, run_for: Duration) -> ScheduledJob {
        let runs = Arc::clone(runs);
        Arc::new(move || {
            let runs = Arc::clone(&runs);
            Box::pin(async move {
                runs.starts.lock().unwrap().push(Instant::now());
                if runs.running.fetch_add(1, Ordering::SeqCst) > 0 {
                    runs.overlaps.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(run_for).await;
                runs.running.fetch_sub(1, Ordering::SeqCst);
            })
        })
    }

    async fn until(deadline: Duration, done: impl Fn() -> bool) {
        let give_up = Instant::now() + deadline;
        while !done() && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // The timer may fire a few milliseconds early or late; the shape is what is checked.
    const SLACK: Duration = Duration::from_millis(20);

    #[tokio::test]
    async fn the_first_run_comes_after_one_interval_then_every_interval() {
        let runs = Arc::new(Runs::default());
        let interval = Duration::from_millis(200);
        let started = Instant::now();
        let _schedule = spawn_schedule("test", interval, recording_job(&runs, Duration::ZERO));

        until(Duration::from_secs(5), || runs.count() >= 3).await;

        let starts = runs.starts.lock().unwrap().clone();
        assert!(starts.len() >= 3, "{} runs", starts.len());
        assert!(starts[0] - started + SLACK >= interval);
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] + SLACK >= interval);
        }
    }

    #[tokio::test]
    async fn a_run_longer_than_the_interval_never_overlaps_the_next() {
        let runs = Arc::new(Runs::default());
        let _schedule = spawn_schedule(
            "test",
            Duration::from_millis(50),
            recording_job(&runs, Duration::from_millis(150)),
        );

        until(Duration::from_secs(5), || runs.count() >= 4).await;

        assert!(runs.count() >= 4);
        assert_eq!(runs.overlaps.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_panicking_run_does_not_end_the_schedule() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let job: ScheduledJob = Arc::new(move || {
            let runs = Arc::clone(&counted);
            Box::pin(async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("the first run fails");
                }
            })
        });
        let _schedule = spawn_schedule("test", Duration::from_millis(50), job);

        until(Duration::from_secs(5), || runs.load(Ordering::SeqCst) >= 3).await;

        assert!(runs.load(Ordering::SeqCst) >= 3);
    }

    #[tokio::test]
    async fn stop_returns_promptly_between_runs() {
        let runs = Arc::new(Runs::default());
        let schedule = spawn_schedule(
            "test",
            Duration::from_secs(3600),
            recording_job(&runs, Duration::ZERO),
        );
        let started = Instant::now();

        schedule.stop(Duration::from_secs(5)).await;

        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(runs.count(), 0);
    }
}
