//! Implementations of the ports: DynamoDB, SQS and Secrets Manager through the AWS SDK, and
//! in-memory fakes for unit tests of the handlers.

pub mod apigw;
pub mod dynamodb;
#[cfg(any(test, feature = "fakes"))]
pub mod in_memory;
pub mod payments;
pub mod secretsmanager;
pub mod sqs;
