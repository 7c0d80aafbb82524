//! The webhook and JWT secrets rotated in the local Secrets Manager, through the real stack: the
//! new secret is picked up within the refresh interval, the previous one is accepted during the
//! overlap window only, and a signature made with neither is always refused. The local store is
//! driven through `aws-sdk-secretsmanager`, so its wire shapes are the ones the SDK parses.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use chrono::Utc;
use localstack::{
    LOCAL_JWT_SECRET_NAME, LOCAL_WEBHOOK_SECRET_NAME, LocalSettings, Stack, StackOptions,
};
use serde_json::{Value, json};
use shared::secrets::{REFRESH_TIMEOUT, Rotation};

const OLD: &str = "whsec-rotation-old";
const NEW: &str = "whsec-rotation-new";
const NEITHER: &str = "whsec-rotation-never";

const JWT_OLD: &str = "jwt-rotation-old";
const JWT_NEW: &str = "jwt-rotation-new";
const JWT_NEITHER: &str = "jwt-rotation-never";

const REFRESH: Duration = Duration::from_secs(1);
const OVERLAP: Duration = Duration::from_secs(4);

async fn stack() -> Stack {
    let mut config = shared::Config {
        rate_limit_per_minute: 0,
        webhook_secret: Some(OLD.to_owned()),
        jwt_secret_overlap: OVERLAP,
        ..shared::Config::default()
    };
    config.auth.jwt_secret = Some(JWT_OLD.to_owned());
    config.secret_rotation = Rotation {
        refresh_every: REFRESH,
        overlap: OVERLAP,
    };
    Stack::start(StackOptions {
        config,
        local: LocalSettings::ephemeral(),
        seed_products: false,
        run_workers: false,
    })
    .await
    .expect("the local stack starts")
}

async fn secrets_client(stack: &Stack) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&shared::aws::sdk_config(stack.config()).await)
}

/// Delivers a fresh webhook (its own key, for an order that does not exist: stored, 202) signed
/// with `secret`: the status and the error code, if any.
async fn deliver(stack: &Stack, secret: &str) -> (u16, String) {
    let body = json!({
        "idempotency_key": uuid::Uuid::new_v4().to_string(),
        "order_id": uuid::Uuid::new_v4().to_string(),
        "status": "success",
    })
    .to_string();
    let signature =
        shared::domain::webhook::sign(secret.as_bytes(), Utc::now().timestamp(), body.as_bytes());
    let response = reqwest::Client::new()
        .post(format!("{}/payments/webhook", stack.http_url()))
        .header("Content-Type", "application/json")
        .header(shared::domain::webhook::SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .expect("the gateway answers");
    status_and_code(response).await
}

/// A response's status and its `error_code` (empty when it has none).
async fn status_and_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error_code"].as_str().unwrap_or("").to_owned())
}

fn accepted() -> (u16, String) {
    (202, String::new())
}

fn refused() -> (u16, String) {
    (401, "UNAUTHENTICATED".to_owned())
}

/// One secret's rotation, as a client sees it: `old` is accepted before; after `new` is put in the
/// local store, `new` is accepted within the refresh interval, `old` during the overlap window
/// only, and `neither` never. `answer` uses a value as a client would (a webhook signed with it, a
/// token signed with it) and gives the status and error code; `accepted` is the answer of a value
/// that is accepted, `what` names the value in the failure messages.
async fn rotation_is_picked_up_and_the_previous_value_lives_for_the_overlap_only<F, Fut>(
    stack: &Stack,
    name: &str,
    [old, new, neither]: [&'static str; 3],
    what: &str,
    accepted: (u16, String),
    answer: F,
) where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = (u16, String)>,
{
    assert_eq!(answer(old).await, accepted, "{what} before the rotation");
    assert_eq!(answer(neither).await, refused());

    secrets_client(stack)
        .await
        .put_secret_value()
        .secret_id(name)
        .secret_string(new)
        .send()
        .await
        .expect("the local store takes the new version");
    let rotated = Instant::now();

    // Picked up within the refresh interval (plus one refresh's timeout and a margin).
    let deadline = rotated + REFRESH + REFRESH_TIMEOUT + Duration::from_millis(500);
    loop {
        let answered = answer(new).await;
        if answered == accepted {
            break;
        }
        assert_eq!(
            answered,
            refused(),
            "{what} of the new secret before the refresh"
        );
        assert!(
            Instant::now() < deadline,
            "{what} of the new secret was still refused {:?} after the rotation (refresh every \
             {REFRESH:?})",
            rotated.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let picked_up = rotated.elapsed();
    assert_eq!(
        answer(old).await,
        accepted,
        "{what} of the previous secret {picked_up:?} after the rotation, inside the {OVERLAP:?} \
         overlap"
    );
    assert_eq!(answer(neither).await, refused());

    // The window ends OVERLAP after the new version's creation, which is before `rotated`.
    tokio::time::sleep(
        (rotated + OVERLAP + Duration::from_millis(300)).duration_since(Instant::now()),
    )
    .await;
    assert_eq!(
        answer(old).await,
        refused(),
        "{what} of the previous secret {:?} after the rotation, past the {OVERLAP:?} overlap",
        rotated.elapsed()
    );
    assert_eq!(answer(new).await, accepted);
    assert_eq!(answer(neither).await, refused());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_webhook_secret_is_picked_up_and_the_previous_one_lives_for_the_overlap_only() {
    let stack = stack().await;
    rotation_is_picked_up_and_the_previous_value_lives_for_the_overlap_only(
        &stack,
        LOCAL_WEBHOOK_SECRET_NAME,
        [OLD, NEW, NEITHER],
        "a webhook",
        accepted(),
        |secret| deliver(&stack, secret),
    )
    .await;
    stack.shutdown().await;
}

/// Lists the caller's orders (none: 200) with a token signed with `secret`: the status and the
/// error code, if any.
async fn list_orders(stack: &Stack, secret: &str) -> (u16, String) {
    let token = shared::auth::mint_hs256(
        secret,
        "rotation-tester",
        None,
        Utc::now() + chrono::Duration::hours(1),
    );
    let response = reqwest::Client::new()
        .get(format!("{}/orders", stack.http_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("the gateway answers");
    status_and_code(response).await
}

fn listed() -> (u16, String) {
    (200, String::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_jwt_secret_is_picked_up_and_the_previous_one_lives_for_the_overlap_only() {
    let stack = stack().await;
    assert_eq!(
        stack.config().auth.jwt_secret_id.as_deref(),
        Some(LOCAL_JWT_SECRET_NAME),
        "the functions read the JWT secret by name"
    );
    rotation_is_picked_up_and_the_previous_value_lives_for_the_overlap_only(
        &stack,
        LOCAL_JWT_SECRET_NAME,
        [JWT_OLD, JWT_NEW, JWT_NEITHER],
        "a token",
        listed(),
        |secret| list_orders(&stack, secret),
    )
    .await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_secret_store_answers_as_secrets_manager_through_the_sdk() {
    let stack = stack().await;
    let secrets = secrets_client(&stack).await;

    let created = secrets
        .create_secret()
        .name("orders/sdk-shapes")
        .secret_string("first")
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_owned();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:orders/sdk-shapes-"),
        "{arn}"
    );
    assert_eq!(
        arn.len(),
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:orders/sdk-shapes-".len() + 6
    );
    let put = secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("second")
        .send()
        .await
        .unwrap();
    assert_eq!(put.version_stages(), ["AWSCURRENT"]);

    let current = secrets
        .get_secret_value()
        .secret_id("orders/sdk-shapes")
        .send()
        .await
        .unwrap();
    assert_eq!(current.secret_string(), Some("second"));
    assert_eq!(current.name(), Some("orders/sdk-shapes"));
    assert_eq!(current.arn(), Some(arn.as_str()));
    assert_eq!(current.version_id(), put.version_id());
    assert_eq!(current.version_stages(), ["AWSCURRENT"]);
    let created_at = current.created_date().expect("CreatedDate").secs();
    assert!(
        (created_at - Utc::now().timestamp()).abs() < 5,
        "{created_at}"
    );

    let previous = secrets
        .get_secret_value()
        .secret_id(&arn)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(previous.secret_string(), Some("first"));
    assert_eq!(previous.version_id(), created.version_id());
    let by_id = secrets
        .get_secret_value()
        .secret_id(&arn)
        .version_id(created.version_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(by_id.secret_string(), Some("first"));

    let described = secrets
        .describe_secret()
        .secret_id("orders/sdk-shapes")
        .send()
        .await
        .unwrap();
    assert_eq!(described.version_ids_to_stages().map(|v| v.len()), Some(2));

    let missing = secrets
        .get_secret_value()
        .secret_id("orders/no-such-secret")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing.as_service_error(),
            Some(GetSecretValueError::ResourceNotFoundException(_))
        ),
        "{missing:?}"
    );
    stack.shutdown().await;
}

/// What reading the secret adds to a cold start: both versions through a new client (a new
/// connection, as in a fresh Lambda instance) from the local store. Prints the figure
/// docs/deploy.md quotes:
/// `cargo test -p order-localstack --test secret_rotation cold -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_reads_the_current_and_previous_versions_in_one_round_trip() {
    use shared::adapters::secretsmanager::SecretsManagerSource;
    use shared::ports::SecretSource;

    let stack = stack().await;
    secrets_client(&stack)
        .await
        .put_secret_value()
        .secret_id(LOCAL_WEBHOOK_SECRET_NAME)
        .secret_string(NEW)
        .send()
        .await
        .unwrap();
    let mut timings = Vec::new();
    for _ in 0..20 {
        let sdk = shared::aws::sdk_config(stack.config()).await;
        let started = Instant::now();
        let source = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk));
        let versions = source.versions(LOCAL_WEBHOOK_SECRET_NAME).await.unwrap();
        timings.push(started.elapsed());
        assert_eq!(versions.current.value, NEW);
        assert_eq!(versions.previous.map(|v| v.value).as_deref(), Some(OLD));
    }
    timings.sort();
    println!(
        "cold read of both versions from the local store: median {:?}, max {:?} (20 new clients)",
        timings[timings.len() / 2],
        timings[timings.len() - 1]
    );
    stack.shutdown().await;
}
