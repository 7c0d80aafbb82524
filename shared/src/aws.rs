//! Building the AWS SDK configuration once per cold start, for AWS or a local endpoint.

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::Config;

/// SDK configuration for `config`: the default AWS chain, or the local endpoint with dummy
/// credentials when `AWS_ENDPOINT_URL` is set and no credentials were given.
pub async fn sdk_config(config: &Config) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.aws_region.clone()));
    if let Some(endpoint) = &config.aws_endpoint_url {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "local-stack",
            ));
        }
    }
    loader.load().await
}
