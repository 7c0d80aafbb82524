//! Order events to the owner's WebSocket connections: every connection of the user gets the
//! event; a connection that answers 410 Gone is forgotten on the spot.

use crate::domain::UserId;
use crate::messages::OrderEvent;
use crate::ports::{ConnectionPusher, ConnectionStore, Delivery, Notifier};

/// The [`Notifier`] over stored connections and a pusher (API Gateway's management API).
/// Without a pusher (no management endpoint configured) it only logs.
#[derive(Debug, Clone)]
pub struct ConnectionNotifier<C, P> {
    connections: C,
    pusher: Option<P>,
}

impl<C: ConnectionStore, P: ConnectionPusher> ConnectionNotifier<C, P> {
    /// Pushes through `pusher` to the connections in `connections`.
    pub fn new(connections: C, pusher: Option<P>) -> Self {
        Self {
            connections,
            pusher,
        }
    }
}

impl<C: ConnectionStore, P: ConnectionPusher> Notifier for ConnectionNotifier<C, P> {
    async fn notify(&self, user_id: &UserId, event: &OrderEvent) {
        let Some(pusher) = &self.pusher else {
            tracing::debug!(event = ?event.event, "no WebSocket management endpoint configured; event not pushed");
            return;
        };
        let connections = match self.connections.connections_of(user_id).await {
            Ok(connections) => connections,
            Err(e) => {
                tracing::warn!(error = %e, order_id = %event.order_id, "cannot list connections; event not pushed");
                return;
            }
        };
        let payload = serde_json::to_vec(event).expect("order events are plain data");
        for connection_id in connections {
            match pusher.push(&connection_id, &payload).await {
                Ok(Delivery::Delivered) => {
                    tracing::debug!(%connection_id, event = ?event.event, "event pushed")
                }
                Ok(Delivery::Gone) => {
                    tracing::info!(%connection_id, "connection gone; forgetting it");
                    if let Err(e) = self.connections.delete_connection(&connection_id).await {
                        tracing::warn!(%connection_id, error = %e, "cannot delete a gone connection; its TTL will");
                    }
                }
                Err(e) => tracing::warn!(%connection_id, error = %e, "push failed"),
            }
        }
    }
}
