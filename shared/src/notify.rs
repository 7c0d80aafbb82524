//! Order events to the owner's WebSocket connections: every connection of the user gets the
//! event; a connection that answers 410 Gone is forgotten on the spot.

use crate::domain::UserId;
use crate::messages::OrderEvent;
use crate::metrics::{self, BusinessMetric};
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
                    metrics::count(BusinessMetric::PushesSent);
                    tracing::debug!(%connection_id, event = ?event.event, "event pushed")
                }
                Ok(Delivery::Gone) => {
                    metrics::count(BusinessMetric::PushesGone);
                    tracing::info!(%connection_id, "connection gone; forgetting it");
                    if let Err(e) = self.connections.delete_connection(&connection_id).await {
                        tracing::warn!(%connection_id, error = %e, "cannot delete a gone connection; its TTL will");
                    }
                }
                Err(e) => {
                    metrics::count(BusinessMetric::PushesFailed);
                    tracing::warn!(%connection_id, error = %e, "push failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::Utc;
    use serde_json::Value;

    use super::*;
    use crate::adapters::in_memory::{InMemoryStore, RecordingPusher};
    use crate::domain::{OrderId, OrderStatus};
    use crate::messages::OrderEventKind;
    use crate::ports::{Connection, PushError, StoreError};

    /// Lets the test keep a handle on a fake the notifier owns.
    struct Shared<T>(Arc<T>);

    impl<T: ConnectionStore> ConnectionStore for Shared<T> {
        async fn save_connection(
            &self,
            connection: &Connection,
            ttl: Duration,
        ) -> Result<(), StoreError> {
            self.0.save_connection(connection, ttl).await
        }

        async fn delete_connection(&self, connection_id: &str) -> Result<(), StoreError> {
            self.0.delete_connection(connection_id).await
        }

        async fn connections_of(&self, user_id: &UserId) -> Result<Vec<String>, StoreError> {
            self.0.connections_of(user_id).await
        }
    }

    impl<T: ConnectionPusher> ConnectionPusher for Shared<T> {
        async fn push(&self, connection_id: &str, payload: &[u8]) -> Result<Delivery, PushError> {
            self.0.push(connection_id, payload).await
        }
    }

    async fn connect(store: &InMemoryStore, connection_id: &str, user: &str) {
        let connection = Connection {
            connection_id: connection_id.into(),
            user_id: UserId::new(user),
            connected_at: Utc::now(),
        };
        store
            .save_connection(&connection, Duration::from_secs(7_200))
            .await
            .unwrap();
    }

    fn cancelled(order_id: &str) -> OrderEvent {
        OrderEvent {
            event: OrderEventKind::OrderCancelled,
            order_id: OrderId::new(order_id),
            status: OrderStatus::Cancelled,
            version: OrderStatus::Cancelled.version(),
            total_amount: "10.00".into(),
            reason: None,
            trace_id: "trace-1".into(),
            timestamp: "2026-11-22T12:00:30.000Z".into(),
        }
    }

    #[tokio::test]
    async fn events_reach_only_the_owners_connections_and_a_gone_one_is_forgotten() {
        let store = Arc::new(InMemoryStore::default());
        let pusher = Arc::new(RecordingPusher::default());
        connect(&store, "alice-phone", "alice").await;
        connect(&store, "alice-laptop", "alice").await;
        connect(&store, "alice-stale", "alice").await;
        connect(&store, "bob-phone", "bob").await;
        pusher.mark_gone("alice-stale");
        let notifier = ConnectionNotifier::new(
            Shared(Arc::clone(&store)),
            Some(Shared(Arc::clone(&pusher))),
        );

        notifier
            .notify(&UserId::new("alice"), &cancelled("order-1"))
            .await;

        let pushed = pusher.pushed();
        let receivers: Vec<&str> = pushed.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(receivers, ["alice-laptop", "alice-phone"]);
        for (_, payload) in &pushed {
            let json: Value = serde_json::from_str(payload).unwrap();
            assert_eq!(json["event"], "OrderCancelled");
            assert_eq!(json["order_id"], "order-1");
            assert_eq!(json["status"], "CANCELLED");
            assert_eq!(json["version"], 3);
        }
        assert_eq!(
            store.connection_ids(),
            ["alice-laptop", "alice-phone", "bob-phone"],
            "the gone connection is deleted, every other one kept"
        );
    }

    #[tokio::test]
    async fn pushes_are_counted_sent_gone_and_failed() {
        let store = Arc::new(InMemoryStore::default());
        let pusher = Arc::new(RecordingPusher::default());
        connect(&store, "alice-phone", "alice").await;
        connect(&store, "alice-laptop", "alice").await;
        connect(&store, "alice-stale", "alice").await;
        connect(&store, "alice-tablet", "alice").await;
        pusher.mark_gone("alice-stale");
        pusher.mark_failing("alice-tablet");
        let notifier = ConnectionNotifier::new(
            Shared(Arc::clone(&store)),
            Some(Shared(Arc::clone(&pusher))),
        );

        let ((), tally) =
            crate::metrics::collect(notifier.notify(&UserId::new("alice"), &cancelled("order-1")))
                .await;

        assert_eq!(tally.count(BusinessMetric::PushesSent), 2);
        assert_eq!(tally.count(BusinessMetric::PushesGone), 1);
        assert_eq!(tally.count(BusinessMetric::PushesFailed), 1);
    }

    #[tokio::test]
    async fn without_a_pusher_nothing_is_sent_or_deleted() {
        let store = Arc::new(InMemoryStore::default());
        connect(&store, "alice-phone", "alice").await;
        let notifier =
            ConnectionNotifier::<_, RecordingPusher>::new(Shared(Arc::clone(&store)), None);

        notifier
            .notify(&UserId::new("alice"), &cancelled("order-1"))
            .await;

        assert_eq!(store.connection_ids(), ["alice-phone"]);
    }
}
