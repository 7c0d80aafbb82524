//! Background servers a stack owns: each runs in one task that is told to stop on shutdown and is
//! aborted when dropped, so nothing outlives the stack that started it.

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Resolves when the owner asks the server to stop (or is dropped).
pub(crate) type StopSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// A spawned server and the means to stop it.
pub(crate) struct ServerTask {
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerTask {
    /// Spawns `run`, handing it the signal it must watch to stop gracefully.
    pub(crate) fn spawn<F>(name: &'static str, run: impl FnOnce(StopSignal) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let signal: StopSignal = Box::pin(async move {
            // A dropped sender means the owner is gone: stop as well.
            let _ = stopped.await;
        });
        let task = tokio::spawn(run(signal));
        ServerTask {
            name,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Signals the server to stop and waits up to `grace` for it to finish; aborts it after that.
    pub(crate) async fn stop(mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                tracing::warn!(
                    server = self.name,
                    "did not stop within {grace:?}; aborting it"
                );
                task.abort();
            }
        }
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
