//! WebSocket connections in the in-memory store, by connection id (the TTL is ignored).

use std::time::Duration;

use super::InMemoryStore;
use crate::domain::UserId;
use crate::ports::{Connection, ConnectionStore, StoreError};

impl ConnectionStore for InMemoryStore {
    async fn save_connection(
        &self,
        connection: &Connection,
        _ttl: Duration,
    ) -> Result<(), StoreError> {
        self.tables()?
            .connections
            .insert(connection.connection_id.clone(), connection.user_id.clone());
        Ok(())
    }

    async fn delete_connection(&self, connection_id: &str) -> Result<(), StoreError> {
        self.tables()?.connections.remove(connection_id);
        Ok(())
    }

    async fn connections_of(&self, user_id: &UserId) -> Result<Vec<String>, StoreError> {
        let tables = self.tables()?;
        let mut ids: Vec<String> = tables
            .connections
            .iter()
            .filter(|(_, owner)| *owner == user_id)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }
}
