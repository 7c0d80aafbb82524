//! The registry of open WebSocket connections: what the management API reaches by connection id,
//! and the channel through which it hands each connection's task a frame to send or a close.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use base64::Engine;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::event::Peer;

/// What the management API asks a connection's task to do.
pub(crate) enum Outbound {
    /// `PostToConnection`: send one data frame.
    Data(Bytes),
    /// `DeleteConnection`: close the connection.
    Close,
}

/// An upgraded (or upgrading) connection, as the management API sees it.
struct OpenConnection {
    peer: Arc<Peer>,
    outbound: mpsc::UnboundedSender<Outbound>,
    last_active_at: DateTime<Utc>,
}

/// `GetConnection`'s answer for one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionInfo {
    /// The handshake's peer (connect time, source IP, user agent).
    pub(crate) peer: Arc<Peer>,
    /// The last frame in either direction (or the handshake).
    pub(crate) last_active_at: DateTime<Utc>,
}

/// Open connections by id.
#[derive(Default)]
pub(crate) struct Connections {
    open: Mutex<HashMap<String, OpenConnection>>,
}

impl Connections {
    /// Makes a connection reachable by its id; `outbound` is what its task reads.
    pub(crate) fn register(&self, peer: Arc<Peer>, outbound: mpsc::UnboundedSender<Outbound>) {
        let connection = OpenConnection {
            last_active_at: peer.connected_at,
            peer,
            outbound,
        };
        self.open()
            .insert(connection.peer.connection_id.clone(), connection);
    }

    /// Removes a connection (if still open): the management API answers 410 for it from now on.
    pub(crate) fn unregister(&self, connection_id: &str) {
        self.open().remove(connection_id);
    }

    /// Records activity on a connection (a frame from the client).
    pub(crate) fn touch(&self, connection_id: &str) {
        if let Some(connection) = self.open().get_mut(connection_id) {
            connection.last_active_at = Utc::now();
        }
    }

    /// `PostToConnection`: queues one data frame; `false` if the connection is gone.
    pub(crate) fn post(&self, connection_id: &str, data: Bytes) -> bool {
        self.open()
            .get_mut(connection_id)
            .filter(|connection| connection.outbound.send(Outbound::Data(data)).is_ok())
            .map(|connection| connection.last_active_at = Utc::now())
            .is_some()
    }

    /// `GetConnection`: the connection's details, if it is open.
    pub(crate) fn describe(&self, connection_id: &str) -> Option<ConnectionInfo> {
        self.open()
            .get(connection_id)
            .map(|connection| ConnectionInfo {
                peer: Arc::clone(&connection.peer),
                last_active_at: connection.last_active_at,
            })
    }

    /// `DeleteConnection`: removes the connection and tells its task to close it; `false` if it
    /// was gone already.
    pub(crate) fn delete(&self, connection_id: &str) -> bool {
        match self.open().remove(connection_id) {
            Some(connection) => {
                let _ = connection.outbound.send(Outbound::Close);
                true
            }
            None => false,
        }
    }

    fn open(&self) -> MutexGuard<'_, HashMap<String, OpenConnection>> {
        self.open
            .lock()
            .expect("no code panics while holding the connection map")
    }
}

/// A fresh connection id: 12 random bytes in base64url without padding, so it needs no escaping
/// in the management API's path.
pub(crate) fn new_connection_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>())
}
