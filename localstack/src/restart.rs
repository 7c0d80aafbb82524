//! A restart on kept tables (`LOCAL_DATA_DIR`) with fresh queues: the embedded SQS keeps its
//! messages in memory, so the messages of the orders still unsettled died with the last process.
//! In AWS the queue is durable and holds them; here the stack sends each such order's message again
//! before it serves, from a Scan of the orders table (docs/reliability.md, "Persistence of the
//! local stack"). A duplicate of a message that did survive is harmless: the consumer's
//! conditional writes make it a no-op.

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::Config;
use shared::adapters::sqs::SqsOrderQueue;
use shared::domain::{OrderId, OrderStatus, UserId};
use shared::messages::OrderPlaced;
use shared::ports::OrderQueue;

/// Sends the message of every PENDING or PROCESSING order to `queue_url`, delayed by the cancel
/// window (a PENDING order's buyer may still cancel it); returns how many.
pub(crate) async fn resend_unsettled(config: &Config, queue_url: &str) -> anyhow::Result<usize> {
    let sdk = shared::aws::sdk_config(config).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let queue = SqsOrderQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url.to_owned());
    let mut sent = 0;
    let mut start = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(&config.tables.orders)
            .set_exclusive_start_key(start.take())
            .filter_expression("#s IN (:pending, :processing)")
            .projection_expression("id, user_id")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(
                ":pending",
                AttributeValue::S(OrderStatus::Pending.as_str().into()),
            )
            .expression_attribute_values(
                ":processing",
                AttributeValue::S(OrderStatus::Processing.as_str().into()),
            )
            .send()
            .await
            .context("reading the unsettled orders")?;
        for item in page.items() {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
            let (Some(id), Some(user)) = (text("id"), text("user_id")) else {
                continue;
            };
            let message = OrderPlaced {
                order_id: OrderId::new(id.as_str()),
                user_id: UserId::new(user.as_str()),
                trace_id: format!("restart-{}", uuid::Uuid::new_v4()),
            };
            queue
                .enqueue(&message, config.cancel_window)
                .await
                .with_context(|| format!("sending order {id}'s message again"))?;
            sent += 1;
        }
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Ok(sent),
        }
    }
}
