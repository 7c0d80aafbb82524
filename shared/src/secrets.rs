//! A rotating secret held in memory: read once at cold start, refreshed from its
//! [`SecretSource`] every refresh interval, and the previous version still accepted for an overlap
//! window that starts at the current version's creation (so every instance agrees on its end,
//! whenever it refreshed). A failed refresh keeps the cached versions: a Secrets Manager blip never
//! makes a function refuse every signature.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ports::{SecretError, SecretSource, SecretVersions};

/// The longest a request waits for a refresh; past it the request goes on with the cached
/// versions and the refresh is tried again later. One in-region `GetSecretValue` takes tens of
/// milliseconds, so this only cuts a stalled call short.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(1);

/// How soon a failed refresh is tried again: sooner than the refresh interval, so a blip does not
/// keep a rotation away for a whole interval, and not on every request.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// A secret's accepted values: fixed (a literal environment value, which never rotates) or read
/// from a [`SecretSource`] and refreshed.
pub struct RotatingSecret {
    kind: Kind,
}

enum Kind {
    Fixed(String),
    Rotating(Box<Rotating>),
}

struct Rotating {
    source: Arc<dyn SecretSource>,
    id: String,
    refresh_every: Duration,
    overlap: Duration,
    state: RwLock<Cached>,
    /// Held by the one request that refreshes; the others go on with the cached versions.
    refreshing: tokio::sync::Mutex<()>,
}

struct Cached {
    versions: SecretVersions,
    next_refresh: DateTime<Utc>,
}

/// How a source-backed secret is refreshed and how long its previous version lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// How often the versions are read again.
    pub refresh_every: Duration,
    /// How long after the current version's creation the previous one is still accepted.
    pub overlap: Duration,
}

impl RotatingSecret {
    /// A literal value (`WEBHOOK_SECRET`): accepted alone, never refreshed.
    pub fn fixed(value: impl Into<String>) -> Self {
        RotatingSecret {
            kind: Kind::Fixed(value.into()),
        }
    }

    /// Reads secret `id` from `source` at `now` (cold start): a failure here fails the start, as
    /// there is no cached value to fall back on.
    pub async fn load(
        source: Arc<dyn SecretSource>,
        id: impl Into<String>,
        rotation: Rotation,
        now: DateTime<Utc>,
    ) -> Result<Self, SecretError> {
        let id = id.into();
        let versions = source.versions(&id).await?;
        Ok(RotatingSecret {
            kind: Kind::Rotating(Box::new(Rotating {
                source,
                id,
                refresh_every: rotation.refresh_every,
                overlap: rotation.overlap,
                state: RwLock::new(Cached {
                    versions,
                    next_refresh: now + rotation.refresh_every,
                }),
                refreshing: tokio::sync::Mutex::new(()),
            })),
        })
    }

    /// The values accepted at `now`: the current one, then the previous one while `now` is
    /// inside the overlap window.
    pub fn accepted(&self, now: DateTime<Utc>) -> Vec<String> {
        let rotating = match &self.kind {
            Kind::Fixed(value) => return vec![value.clone()],
            Kind::Rotating(rotating) => rotating,
        };
        let cached = rotating.state.read().unwrap_or_else(|p| p.into_inner());
        let current = &cached.versions.current;
        let mut accepted = vec![current.value.clone()];
        if let Some(previous) = &cached.versions.previous
            && now < current.created + rotating.overlap
        {
            accepted.push(previous.value.clone());
        }
        accepted
    }

    /// Reads the versions again if the refresh interval has passed at `now`, waiting at most
    /// [`REFRESH_TIMEOUT`]. Only one caller refreshes at a time; a failure or a timeout keeps the
    /// cached versions (logged) and is retried shortly.
    pub async fn refresh_if_due(&self, now: DateTime<Utc>) {
        let Kind::Rotating(rotating) = &self.kind else {
            return;
        };
        let due = {
            let cached = rotating.state.read().unwrap_or_else(|p| p.into_inner());
            now >= cached.next_refresh
        };
        if !due {
            return;
        }
        let Ok(_refreshing) = rotating.refreshing.try_lock() else {
            return;
        };
        let read = tokio::time::timeout(REFRESH_TIMEOUT, rotating.source.versions(&rotating.id));
        let (fresh, next) = match read.await {
            Ok(Ok(versions)) => (Some(versions), now + rotating.refresh_every),
            Ok(Err(error)) => {
                tracing::warn!(secret = %rotating.id, error = %error_chain(&error),
                    "secret refresh failed; keeping the cached versions");
                (None, now + RETRY_AFTER_FAILURE.min(rotating.refresh_every))
            }
            Err(_) => {
                tracing::warn!(secret = %rotating.id, timeout = ?REFRESH_TIMEOUT,
                    "secret refresh timed out; keeping the cached versions");
                (None, now + RETRY_AFTER_FAILURE.min(rotating.refresh_every))
            }
        };
        let mut cached = rotating.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(versions) = fresh {
            if versions.current != cached.versions.current {
                tracing::info!(secret = %rotating.id, created = %versions.current.created,
                    "secret rotated");
            }
            cached.versions = versions;
        }
        cached.next_refresh = next;
    }
}

/// An error and its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::TimeZone;

    use super::*;
    use crate::ports::{SecretFuture, SecretVersion};

    /// A secret store whose answers the test sets: the versions, or an outage.
    #[derive(Default)]
    struct FakeStore {
        versions: Mutex<Option<SecretVersions>>,
        calls: Mutex<u32>,
    }

    impl FakeStore {
        fn put(&self, value: &str, created: DateTime<Utc>) {
            let mut versions = self.versions.lock().unwrap();
            let previous = versions.take().map(|v| v.current);
            *versions = Some(SecretVersions {
                current: SecretVersion {
                    value: value.into(),
                    created,
                },
                previous,
            });
        }

        fn fail(&self) {
            *self.versions.lock().unwrap() = None;
        }
    }

    impl SecretSource for FakeStore {
        fn versions<'a>(&'a self, id: &'a str) -> SecretFuture<'a> {
            *self.calls.lock().unwrap() += 1;
            let answer =
                self.versions
                    .lock()
                    .unwrap()
                    .clone()
                    .ok_or_else(|| SecretError::Unavailable {
                        id: id.into(),
                        source: "the store is down".into(),
                    });
            Box::pin(async move { answer })
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    const ROTATION: Rotation = Rotation {
        refresh_every: Duration::from_secs(300),
        overlap: Duration::from_secs(3600),
    };

    async fn loaded(store: &Arc<FakeStore>, now: DateTime<Utc>) -> RotatingSecret {
        let source: Arc<dyn SecretSource> = store.clone();
        RotatingSecret::load(source, "webhook", ROTATION, now)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_rotation_is_picked_up_at_the_next_refresh_not_before() {
        let store = Arc::new(FakeStore::default());
        store.put("old", at(0));
        let secret = loaded(&store, at(0)).await;
        store.put("new", at(10));

        secret.refresh_if_due(at(299)).await;
        assert_eq!(secret.accepted(at(299)), ["old"]);

        secret.refresh_if_due(at(300)).await;
        assert_eq!(secret.accepted(at(300)), ["new", "old"]);
        assert_eq!(*store.calls.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn the_previous_version_is_accepted_until_the_overlap_after_the_current_was_created() {
        let store = Arc::new(FakeStore::default());
        store.put("old", at(0));
        store.put("new", at(100));
        // An instance that started long after the rotation agrees on the window's end.
        let secret = loaded(&store, at(2_000)).await;

        assert_eq!(secret.accepted(at(3_699)), ["new", "old"]);
        assert_eq!(secret.accepted(at(3_700)), ["new"]);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_cached_versions_and_retries_soon() {
        let store = Arc::new(FakeStore::default());
        store.put("old", at(0));
        let secret = loaded(&store, at(0)).await;
        store.fail();

        secret.refresh_if_due(at(300)).await;
        assert_eq!(secret.accepted(at(300)), ["old"]);

        store.put("new", at(305));
        secret.refresh_if_due(at(305)).await;
        assert_eq!(secret.accepted(at(305)), ["old"], "retried before its time");
        secret.refresh_if_due(at(310)).await;
        assert_eq!(secret.accepted(at(310))[0], "new");
    }

    #[tokio::test]
    async fn a_cold_start_without_the_secret_fails() {
        let store = Arc::new(FakeStore::default());
        let source: Arc<dyn SecretSource> = store;
        let loaded = RotatingSecret::load(source, "webhook", ROTATION, at(0)).await;
        assert!(matches!(loaded, Err(SecretError::Unavailable { .. })));
    }

    #[test]
    fn a_fixed_value_is_accepted_alone() {
        assert_eq!(RotatingSecret::fixed("lit").accepted(at(0)), ["lit"]);
    }
}
