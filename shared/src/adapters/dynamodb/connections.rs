//! Open WebSocket connections: one item per connection, found by user through `user-connections`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::index::USER_CONNECTIONS as USER_CONNECTIONS_INDEX;
use super::sdk_failure;
use super::{DynamoStore, items};
use crate::domain::UserId;
use crate::ports::{Connection, ConnectionStore, StoreError};

impl ConnectionStore for DynamoStore {
    async fn save_connection(
        &self,
        connection: &Connection,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let expires_at = connection.connected_at.timestamp()
            + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let item = HashMap::from([
            (
                "connection_id".to_owned(),
                items::string(&connection.connection_id),
            ),
            (
                "user_id".to_owned(),
                items::string(connection.user_id.as_str()),
            ),
            (
                "connected_at".to_owned(),
                items::timestamp(connection.connected_at),
            ),
            ("expires_at".to_owned(), items::number(expires_at)),
        ]);
        self.client
            .put_item()
            .table_name(&self.tables.connections)
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(())
    }

    async fn delete_connection(&self, connection_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.tables.connections)
            .key("connection_id", items::string(connection_id))
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(())
    }

    async fn connections_of(&self, user_id: &UserId) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.tables.connections)
                .index_name(USER_CONNECTIONS_INDEX)
                .key_condition_expression("user_id = :u")
                .expression_attribute_values(":u", items::string(user_id.as_str()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_failure)?;
            for item in output.items.unwrap_or_default() {
                match item.get("connection_id") {
                    Some(AttributeValue::S(id)) => ids.push(id.clone()),
                    _ => {
                        return Err(StoreError::Corrupt(
                            "connection item without connection_id".into(),
                        ));
                    }
                }
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(ids);
            }
        }
    }
}
