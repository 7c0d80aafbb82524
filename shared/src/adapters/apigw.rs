//! Pushing to WebSocket connections through API Gateway's management API (`PostToConnection`).
//! Locally the gateway serves the same API on `WS_PORT`, so this client runs unchanged.

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::ports::{ConnectionPusher, Delivery, PushError};

/// `PostToConnection` with one client built at cold start.
#[derive(Debug, Clone)]
pub struct ApiGatewayPusher {
    client: Client,
}

impl ApiGatewayPusher {
    /// A client for the management endpoint (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`).
    pub fn new(sdk: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .build();
        Self {
            client: Client::from_conf(config),
        }
    }
}

impl ConnectionPusher for ApiGatewayPusher {
    async fn push(&self, connection_id: &str, payload: &[u8]) -> Result<Delivery, PushError> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(payload))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Delivery::Delivered),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PostToConnectionError::GoneException(_))
                ) =>
            {
                Ok(Delivery::Gone)
            }
            Err(e) => Err(PushError(Box::new(e))),
        }
    }
}
