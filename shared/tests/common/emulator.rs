//! Dynoxide, the embedded DynamoDB emulator, in-process on a port-0 listener with a fresh
//! in-memory database, reached through the real AWS SDK over HTTP. Shared by the test targets
//! `dynamodb_adapter` and `store_contract` (each includes it with `#[path]`).

use anyhow::Context;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use shared::adapters::dynamodb::ensure_tables;
use shared::config::TableNames;

/// A client for an endpoint on `port` of this machine, with dummy credentials.
pub fn client_for(port: u16) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(Credentials::new("x", "x", None, None, "test"))
        .build();
    Client::from_conf(config)
}

/// A fresh Dynoxide with no tables, and a client for it.
pub async fn empty_endpoint() -> anyhow::Result<Client> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let database = dynoxide::Database::memory().context("opening the in-memory database")?;
    tokio::spawn(dynoxide::server::serve_on(listener, database));
    Ok(client_for(port))
}

/// A fresh Dynoxide with the tables created, a client for it and the tables' names.
pub async fn provisioned() -> anyhow::Result<(Client, TableNames)> {
    let client = empty_endpoint().await?;
    let tables = table_names();
    ensure_tables(&client, &tables)
        .await
        .context("ensure_tables")?;
    Ok((client, tables))
}

/// The tables' names in a test database (each test has its own database, so they never clash).
fn table_names() -> TableNames {
    TableNames {
        products: "t-products".into(),
        orders: "t-orders".into(),
        idempotency: "t-idempotency".into(),
        locks: "t-stock-locks".into(),
        rate_limits: "t-rate-limits".into(),
        connections: "t-connections".into(),
        holds: "t-holds".into(),
        webhooks: "t-webhooks".into(),
    }
}
