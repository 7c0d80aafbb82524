//! Each function, wired exactly as its binary wires it (the settings of its footprint and nothing
//! else, only the clients the footprint names), serves its `events/<name>.json` against the real
//! emulators. A footprint that leaves out a table, the queue or the notifier a handler needs fails
//! here: the missing table has a name DynamoDB refuses and a missing port answers "not wired".

use std::collections::HashMap;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::sqs::SqsEvent;
use http::StatusCode;
use lambda_http::{Body, Request};
use localstack::{LocalSettings, Stack, StackOptions};
use serde_json::Value;
use shared::worker::{AwsWorker, consumer};
use shared::ws::{AwsWsApp, WsRoute};
use shared::{AwsApp, Config, Endpoint, Function};

/// What the template gives every function, for a stack on this machine.
fn environment(stack: &Stack) -> HashMap<&'static str, String> {
    let mut env = HashMap::from([
        ("AWS_ENDPOINT_URL", stack.aws_endpoint()),
        ("AWS_REGION", "us-east-1".to_owned()),
        // The sample events carry tokens signed with the development secret, which a function
        // accepts only because AWS_ENDPOINT_URL points at an emulator.
        (
            "JWT_SECRET",
            shared::config::DEVELOPMENT_JWT_SECRET.to_owned(),
        ),
        ("ORDER_QUEUE_URL", stack.order_queue_url().to_owned()),
        ("ORDER_DLQ_URL", stack.dlq_url().to_owned()),
        (
            "WS_MANAGEMENT_ENDPOINT",
            stack.config().ws_management_endpoint.clone().unwrap(),
        ),
        ("RATE_LIMIT_PER_MINUTE", "0".to_owned()),
        // Every unsettled order is the reconciler's at once.
        ("RECONCILE_AFTER_SECONDS", "0".to_owned()),
        ("PAYMENT_SUCCESS_RATE", "1".to_owned()),
        (
            "WEBHOOK_SECRET",
            shared::config::DEVELOPMENT_WEBHOOK_SECRET.to_owned(),
        ),
    ]);
    for table in shared::function::Table::ALL {
        env.insert(table.setting(), table.default_name().to_owned());
    }
    env
}

fn config_of(function: Function, env: &HashMap<&'static str, String>) -> Config {
    Config::from_lookup(&function.footprint(), |name| env.get(name).cloned()).unwrap()
}

fn event(name: &str) -> Value {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn serve_http(
    endpoint: Endpoint,
    env: &HashMap<&'static str, String>,
    event: Value,
) -> (StatusCode, Value) {
    let function = Function::Http(endpoint);
    let config = config_of(function, env);
    let app = AwsApp::connect(&config, &function.footprint())
        .await
        .unwrap();
    let request: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
    let response = shared::api::handle(&app, endpoint, Request::from(request)).await;
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        Body::Empty => Value::Null,
        Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap(),
        _ => Value::Null,
    };
    (response.status(), body)
}

/// The sample event of `endpoint` with `edit` applied (another order id, another key).
fn edited(endpoint: Endpoint, edit: impl FnOnce(&mut Value)) -> Value {
    let mut event = event(endpoint.function_name());
    edit(&mut event);
    event
}

fn for_order(endpoint: Endpoint, order_id: &str) -> Value {
    edited(endpoint, |event| {
        event["pathParameters"]["id"] = order_id.into();
        let path = event["rawPath"]
            .as_str()
            .unwrap()
            .replace("00000000-0000-4000-8000-000000000001", order_id);
        event["rawPath"] = path.into();
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_serves_its_sample_event_with_only_its_footprint() {
    let stack = Stack::start(StackOptions {
        config: Config::default(),
        local: LocalSettings::ephemeral(),
        seed_products: true,
        run_workers: false,
    })
    .await
    .unwrap();
    let env = environment(&stack);
    let mut served = Vec::new();

    // HTTP endpoints, in an order where each sample finds what it needs.
    for (endpoint, expected) in [
        (Endpoint::Health, StatusCode::OK),
        (Endpoint::ListProducts, StatusCode::OK),
        (Endpoint::GetProduct, StatusCode::OK),
        (Endpoint::CreateProduct, StatusCode::CREATED),
        (Endpoint::UpdateProduct, StatusCode::OK),
        (Endpoint::CreateOrder, StatusCode::CREATED),
        (Endpoint::ListOrders, StatusCode::OK),
    ] {
        let (status, body) = serve_http(endpoint, &env, event(endpoint.function_name())).await;
        assert_eq!(status, expected, "{}: {body}", endpoint.function_name());
        served.push(endpoint.function_name());
    }
    let (_, listed) = serve_http(Endpoint::ListOrders, &env, event("list-orders")).await;
    let first_order = listed["data"][0]["id"].as_str().unwrap().to_owned();

    let (status, body) = serve_http(
        Endpoint::GetOrder,
        &env,
        for_order(Endpoint::GetOrder, &first_order),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "PENDING");
    let (status, _) = serve_http(Endpoint::GetOrder, &env, event("get-order")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the sample's order does not exist"
    );
    served.push("get-order");

    // A second order to cancel: the cancel restores stock and pushes through the notifier.
    let second = edited(Endpoint::CreateOrder, |event| {
        let body = event["body"]
            .as_str()
            .unwrap()
            .replace("sample-order-1", "sample-order-2");
        event["body"] = body.into();
    });
    let (status, body) = serve_http(Endpoint::CreateOrder, &env, second).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second_order = body["data"]["id"].as_str().unwrap().to_owned();
    let (status, body) = serve_http(
        Endpoint::CancelOrder,
        &env,
        for_order(Endpoint::CancelOrder, &second_order),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "CANCELLED");
    served.push("cancel-order");

    // A hold from the sample, read back; then the sweeper finds nothing due yet.
    let (status, hold) = serve_http(Endpoint::CreateHold, &env, event("create-hold")).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    assert_eq!(hold["data"]["status"], "ACTIVE");
    let hold_id = hold["data"]["hold_id"].as_str().unwrap().to_owned();
    served.push("create-hold");
    let read = edited(Endpoint::GetHold, |event| {
        event["pathParameters"]["id"] = hold_id.as_str().into();
        event["rawPath"] = format!("/holds/{hold_id}").into();
    });
    let (status, body) = serve_http(Endpoint::GetHold, &env, read).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], hold["data"]);
    served.push("get-hold");
    let function = Function::HoldSweeper;
    let worker = AwsWorker::connect(&config_of(function, &env), &function.footprint())
        .await
        .unwrap();
    assert_eq!(
        worker.expire_holds().run().await.unwrap(),
        Default::default()
    );
    served.push("hold-sweeper");

    // Any other read (a GET endpoint not served above) needs only what the samples made so far:
    // its own sample answers 200, so a new read-only endpoint is covered without a line here.
    for endpoint in Endpoint::ALL {
        let name = endpoint.function_name();
        if endpoint.route_key().starts_with("GET ") && !served.contains(&name) {
            let (status, body) = serve_http(endpoint, &env, event(name)).await;
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
            served.push(name);
        }
    }

    // Last: the sample deletes the product the orders above bought.
    let (status, body) = serve_http(Endpoint::DeleteProduct, &env, event("delete-product")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    served.push("delete-product");

    // The WebSocket routes.
    for (route, expected) in [
        (WsRoute::Connect, 200),
        (WsRoute::Default, 200),
        (WsRoute::Disconnect, 200),
    ] {
        let function = Function::Ws(route);
        let app = AwsWsApp::connect(&config_of(function, &env), &function.footprint())
            .await
            .unwrap();
        let request: ApiGatewayWebsocketProxyRequest =
            serde_json::from_value(event(function.name())).unwrap();
        let response = shared::ws::handle(&app, route, request).await;
        assert_eq!(response.status_code, expected, "{}", function.name());
        served.push(function.name());
    }

    // The first order's message ran out of receives: the reconciler finds it in the dead-letter
    // queue and sends it back, the order being PENDING.
    let sqs = aws_sdk_sqs::Client::new(&shared::aws::sdk_config(stack.config()).await);
    let dead = serde_json::json!({"order_id": first_order, "user_id": "user-1", "trace_id": "t"});
    sqs.send_message()
        .queue_url(stack.dlq_url())
        .message_body(dead.to_string())
        .send()
        .await
        .unwrap();
    let function = Function::Reconciler;
    let worker = AwsWorker::connect(&config_of(function, &env), &function.footprint())
        .await
        .unwrap();
    let report = worker.reconcile().run().await.unwrap();
    assert_eq!(
        (report.redriven, report.dead_left, report.enqueue_failures),
        (1, 0, 0),
        "{report:?}"
    );
    served.push("reconciler");

    // The consumer settles the first order from the sample batch, pointed at it.
    let function = Function::OrderConsumer;
    let worker = AwsWorker::connect(&config_of(function, &env), &function.footprint())
        .await
        .unwrap();
    let mut batch = event("order-consumer");
    let message = batch["Records"][0]["body"]
        .as_str()
        .unwrap()
        .replace("00000000-0000-4000-8000-000000000001", &first_order);
    batch["Records"][0]["body"] = message.into();
    let batch: SqsEvent = serde_json::from_value(batch).unwrap();
    let response = consumer::handle(&worker, batch).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let (_, body) = serve_http(
        Endpoint::GetOrder,
        &env,
        for_order(Endpoint::GetOrder, &first_order),
    )
    .await;
    assert_eq!(body["data"]["status"], "PAID", "PAYMENT_SUCCESS_RATE=1");
    served.push("order-consumer");

    // The sample webhook names the first order (its id is derived from the sample's user and
    // key), which the consumer has paid: re-signed now, it answers with PAID and changes nothing.
    let webhook = edited(Endpoint::PaymentWebhook, |event| {
        let body = event["body"].as_str().unwrap().to_owned();
        let signature = shared::domain::webhook::sign(
            shared::config::DEVELOPMENT_WEBHOOK_SECRET.as_bytes(),
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        event["headers"]["x-webhook-signature"] = signature.into();
    });
    let (status, body) = serve_http(Endpoint::PaymentWebhook, &env, webhook).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["order_id"], first_order.as_str());
    assert_eq!(body["data"]["order_status"], "PAID");
    served.push("payment-webhook");

    served.sort_unstable();
    let mut all: Vec<_> = Function::all().iter().map(|f| f.name()).collect();
    all.sort_unstable();
    assert_eq!(served, all, "every function was served");
    stack.shutdown().await;
}
