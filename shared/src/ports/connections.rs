//! WebSocket connections: the store of open ones by user, the push to one, and the notifier that
//! tells an order's owner what happened.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{NotWired, StoreError};
use crate::domain::UserId;
use crate::messages::OrderEvent;

/// A stored WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// API Gateway's connection id.
    pub connection_id: String,
    /// The authenticated user.
    pub user_id: UserId,
    /// When it connected.
    pub connected_at: DateTime<Utc>,
}

/// Open WebSocket connections by user.
pub trait ConnectionStore: Send + Sync {
    /// Stores a connection with a TTL (API Gateway closes connections after two hours).
    fn save_connection(
        &self,
        connection: &Connection,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets a connection (disconnect, or 410 Gone on send).
    fn delete_connection(
        &self,
        connection_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Ids of a user's open connections.
    fn connections_of(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// What happened to one pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The connection took it.
    Delivered,
    /// 410 Gone: the connection no longer exists.
    Gone,
}

/// A failure to push to a connection other than 410 Gone.
#[derive(Debug, thiserror::Error)]
#[error("pushing to the connection failed")]
pub struct PushError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Pushes bytes to one WebSocket connection (API Gateway's `PostToConnection`).
pub trait ConnectionPusher: Send + Sync {
    /// Sends one text frame.
    fn push(
        &self,
        connection_id: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<Delivery, PushError>> + Send;
}

/// Tells an order's owner what happened to it. Best effort: a notification never fails or
/// undoes the change it reports.
pub trait Notifier: Send + Sync {
    /// Pushes `event` to every open connection of `user_id`.
    fn notify(&self, user_id: &UserId, event: &OrderEvent) -> impl Future<Output = ()> + Send;
}

impl<N: Notifier> Notifier for Option<N> {
    async fn notify(&self, user_id: &UserId, event: &OrderEvent) {
        match self {
            Some(notifier) => notifier.notify(user_id, event).await,
            None => tracing::error!(
                order_id = %event.order_id,
                "{}; event not pushed",
                NotWired("the WebSocket notifier")
            ),
        }
    }
}

impl<C: ConnectionStore> ConnectionStore for Option<C> {
    async fn save_connection(
        &self,
        connection: &Connection,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Some(store) => store.save_connection(connection, ttl).await,
            None => Err(StoreError::unavailable(NotWired("the connections table"))),
        }
    }

    async fn delete_connection(&self, connection_id: &str) -> Result<(), StoreError> {
        match self {
            Some(store) => store.delete_connection(connection_id).await,
            None => Err(StoreError::unavailable(NotWired("the connections table"))),
        }
    }

    async fn connections_of(&self, user_id: &UserId) -> Result<Vec<String>, StoreError> {
        match self {
            Some(store) => store.connections_of(user_id).await,
            None => Err(StoreError::unavailable(NotWired("the connections table"))),
        }
    }
}
