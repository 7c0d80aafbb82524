//! What the integration tests share: SDK clients for a local endpoint (SQS, and DynamoDB with a
//! table's key parts), and the two SQS servers the SQS tests run against (the embedded
//! rustack-sqs, and moto's server as an independent reference).

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use localstack::testing::EmbeddedAws;

/// The region every test queue lives in.
pub const REGION: &str = "us-east-1";

/// An SQS client for `endpoint` with dummy credentials.
pub fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// A DynamoDB client for `endpoint` with dummy credentials and retries off, so that a test sees
/// every refusal.
pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A string attribute of a table's key.
pub fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

/// One part (`Hash` or `Range`) of a table's or an index's key.
pub fn key_part(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .unwrap()
}

/// A queue name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates a queue with `attributes`; its URL.
pub async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    attributes: &[(QueueAttributeName, String)],
) -> String {
    let mut create = sqs.create_queue().queue_name(unique_name(prefix));
    for (name, value) in attributes {
        create = create.attributes(name.clone(), value);
    }
    create
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("a queue URL")
}

/// A queue's ARN.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("a QueueArn")
}

/// A redrive policy with `maxReceiveCount` as a JSON number (rustack-sqs refuses a string).
pub fn redrive_policy(dlq_arn: &str, max_receive_count: u32) -> String {
    serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count })
        .to_string()
}

/// Which SQS implementation a test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// The embedded rustack-sqs of the local stack.
    Rustack,
    /// moto's server.
    Moto,
}

/// A running SQS server of either implementation; dropping it stops it.
pub enum SqsServer {
    /// rustack-sqs behind the local stack's AWS endpoint.
    Rustack(EmbeddedAws),
    /// moto's server in a child process.
    Moto(MotoServer),
}

impl SqsServer {
    /// Starts a fresh server of `implementation`.
    pub async fn start(implementation: Implementation) -> SqsServer {
        match implementation {
            Implementation::Rustack => SqsServer::Rustack(
                EmbeddedAws::start(REGION)
                    .await
                    .expect("the embedded AWS endpoint starts"),
            ),
            Implementation::Moto => SqsServer::Moto(MotoServer::start().await),
        }
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> &str {
        match self {
            SqsServer::Rustack(aws) => aws.endpoint(),
            SqsServer::Moto(moto) => &moto.endpoint,
        }
    }

    /// A client for it.
    pub fn client(&self) -> aws_sdk_sqs::Client {
        sqs_client(self.endpoint())
    }
}

/// moto's server, run by `tests/moto_server.py` with the project's `.venv` Python. The script exits
/// when its stdin closes, so it ends with the test process even if that one is killed; dropping
/// this kills it at once.
pub struct MotoServer {
    child: Child,
    endpoint: String,
}

impl MotoServer {
    /// How long moto may take to import and bind.
    const STARTUP: Duration = Duration::from_secs(60);

    /// Starts moto on a free port of 127.0.0.1. Fails (never skips) when the virtualenv is missing.
    pub async fn start() -> MotoServer {
        let started = tokio::task::spawn_blocking(Self::spawn);
        tokio::time::timeout(Self::STARTUP, started)
            .await
            .unwrap_or_else(|_| panic!("moto's server did not start within {:?}", Self::STARTUP))
            .expect("the moto launcher thread")
    }

    /// Its endpoint URL, where every service moto emulates answers (SQS, Secrets Manager, ...).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn spawn() -> MotoServer {
        let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let python = manifest_dir.join("../.venv/bin/python");
        let script = manifest_dir.join("tests/moto_server.py");
        assert!(
            python.exists(),
            "{} is missing: the queue-semantics tests run against moto's server from the project's \
             virtualenv. Run `make test` (it installs the pinned moto into .venv) and try again.",
            python.display()
        );
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", python.display()));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("moto's stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading moto's port");
        let Ok(port) = line.trim().parse::<u16>() else {
            let status = child.kill().and_then(|()| child.wait());
            panic!("moto's server printed {line:?} instead of its port ({status:?})");
        };
        MotoServer {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
