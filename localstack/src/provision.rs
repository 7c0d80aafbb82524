//! Creates what the stack needs before it serves a request, idempotently: the tables, the order
//! queue with its dead-letter queue, and (on request) a few demo products.

use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::Utc;
use shared::Config;
use shared::adapters::dynamodb::DynamoStore;
use shared::domain::{Money, NewProduct, ProductId};
use shared::ports::ProductCatalog;

use crate::settings::LocalSettings;

/// The demo products: (id, name, price, stock).
pub(crate) const DEMO_PRODUCTS: [(&str, &str, &str, u32); 3] = [
    ("espresso-beans", "Espresso beans, 1 kg", "14.90", 500),
    ("pour-over-kettle", "Pour-over kettle", "39.00", 40),
    ("flash-sale-sneaker", "Flash-sale sneaker", "120.00", 10),
];

/// The queues the stack provisioned.
#[derive(Debug, Clone)]
pub(crate) struct Queues {
    /// The order queue's URL.
    pub(crate) order_queue_url: String,
    /// The order queue's ARN, which the event source puts in every record.
    pub(crate) order_queue_arn: String,
    /// Its dead-letter queue.
    pub(crate) dlq_url: String,
}

/// Tables, queues and (when `seed_products`) demo products, against `config.aws_endpoint_url`.
pub(crate) async fn provision(
    config: &Config,
    local: &LocalSettings,
    seed_products: bool,
) -> anyhow::Result<Queues> {
    let sdk = shared::aws::sdk_config(config).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    shared::adapters::dynamodb::ensure_tables(&dynamodb, &config.tables)
        .await
        .context("creating the DynamoDB tables")?;
    let queues = ensure_queues(&aws_sdk_sqs::Client::new(&sdk), local).await?;
    if seed_products {
        seed_demo_products(&DynamoStore::new(dynamodb, config.tables.clone())).await?;
    }
    Ok(queues)
}

/// The dead-letter queue first, then the order queue whose redrive policy names it, with the
/// visibility timeout and `maxReceiveCount` of `local`.
async fn ensure_queues(sqs: &aws_sdk_sqs::Client, local: &LocalSettings) -> anyhow::Result<Queues> {
    let dlq_url = ensure_queue(sqs, &local.order_dlq_name, &[]).await?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let attributes = [
        (
            QueueAttributeName::RedrivePolicy,
            redrive_policy(&dlq_arn, local.max_receive_count),
        ),
        (
            QueueAttributeName::VisibilityTimeout,
            local.queue_visibility_timeout.as_secs().to_string(),
        ),
    ];
    let order_queue_url = ensure_queue(sqs, &local.order_queue_name, &attributes).await?;
    let order_queue_arn = queue_arn(sqs, &order_queue_url).await?;
    Ok(Queues {
        order_queue_url,
        order_queue_arn,
        dlq_url,
    })
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the ARN of queue {url}"))?
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .with_context(|| format!("queue {url} has no QueueArn attribute"))
}

/// The redrive policy of the order queue. `maxReceiveCount` is a JSON number: AWS accepts a number
/// or a string, rustack-sqs only a number.
pub(crate) fn redrive_policy(dlq_arn: &str, max_receive_count: u32) -> String {
    serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count })
        .to_string()
}

/// CreateQueue is idempotent for equal attributes; a queue that exists with other attributes (an
/// older run against a persistent endpoint) is brought to these with SetQueueAttributes.
async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> anyhow::Result<String> {
    let mut create = sqs.create_queue().queue_name(name);
    for (key, value) in attributes {
        create = create.attributes(key.clone(), value);
    }
    match create.send().await {
        Ok(output) => output
            .queue_url
            .with_context(|| format!("CreateQueue {name} returned no URL")),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_queue_name_exists()) =>
        {
            let url = sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .with_context(|| format!("looking up queue {name}"))?
                .queue_url
                .with_context(|| format!("GetQueueUrl {name} returned no URL"))?;
            let mut update = sqs.set_queue_attributes().queue_url(&url);
            for (key, value) in attributes {
                update = update.attributes(key.clone(), value);
            }
            update
                .send()
                .await
                .with_context(|| format!("updating the attributes of queue {name}"))?;
            Ok(url)
        }
        Err(error) => Err(error).with_context(|| format!("creating queue {name}")),
    }
}

/// Creates each demo product unless it exists. `create_product` is a conditional put that does not
/// say whether the item was already there, so existence is read first; a product deleted since keeps
/// its tombstone and is reported rather than recreated.
async fn seed_demo_products(store: &DynamoStore) -> anyhow::Result<()> {
    for (id, name, price, stock) in DEMO_PRODUCTS {
        let id = ProductId::new(id);
        if store
            .get_product(&id)
            .await
            .with_context(|| format!("reading product {id}"))?
            .is_some()
        {
            continue;
        }
        let product = NewProduct {
            name: name.to_owned(),
            price: Money::parse(price).context("demo price")?,
            stock,
            stock_shards: 1,
        };
        if let Err(error) = store.create_product(id.clone(), product, Utc::now()).await {
            // Another stack on the same tables may have won the race, or the product was deleted.
            if store.get_product(&id).await.ok().flatten().is_none() {
                tracing::warn!(product = id.as_str(), error = %error, "demo product not created");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policy_gives_max_receive_count_as_a_number() {
        let policy: serde_json::Value = serde_json::from_str(&redrive_policy(
            "arn:aws:sqs:us-east-1:000000000000:orders-dlq",
            5,
        ))
        .unwrap();

        assert_eq!(policy["maxReceiveCount"], serde_json::json!(5));
        assert_eq!(
            policy["deadLetterTargetArn"],
            "arn:aws:sqs:us-east-1:000000000000:orders-dlq"
        );
    }

    #[test]
    fn demo_prices_are_valid_money() {
        for (_, _, price, _) in DEMO_PRODUCTS {
            assert_eq!(Money::parse(price).unwrap().to_string(), price);
        }
    }
}
