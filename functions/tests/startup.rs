//! The real binaries at cold start: outside the local stack there is no default key, the
//! published development secret is refused unless the AWS endpoint is an emulator, and a function
//! that sends to the queue needs its URL. A binary whose settings pass goes on to the Lambda
//! runtime, which (outside Lambda) stops it for want of `AWS_LAMBDA_RUNTIME_API`.

use std::process::{Command, Output};

/// Runs a function's binary with exactly `env` (plus PATH) and returns what it printed.
fn start(binary: &str, env: &[(&str, &str)]) -> Output {
    Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

fn refusal(output: &Output) -> String {
    assert!(!output.status.success(), "{output:?}");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const GET_ORDER: &str = env!("CARGO_BIN_EXE_get-order");
const CREATE_ORDER: &str = env!("CARGO_BIN_EXE_create-order");
const WS_CONNECT: &str = env!("CARGO_BIN_EXE_ws-connect");
const HEALTH: &str = env!("CARGO_BIN_EXE_health");

#[test]
fn a_function_without_jwt_settings_refuses_to_start() {
    for binary in [GET_ORDER, WS_CONNECT] {
        let printed = refusal(&start(binary, &[("AWS_REGION", "us-east-1")]));
        assert!(
            printed.contains("cannot start")
                && printed.contains("none of JWT_SECRET_ID, JWT_SECRET and JWT_PUBLIC_KEY is set"),
            "{binary}: {printed}"
        );
    }
}

#[test]
fn a_function_with_the_development_secret_refuses_to_start_outside_an_emulator() {
    for endpoint in [None, Some("https://dynamodb-fips.us-east-1.amazonaws.com")] {
        let mut env = vec![
            ("AWS_REGION", "us-east-1"),
            ("JWT_SECRET", "local-dev-secret"),
        ];
        env.extend(endpoint.map(|url| ("AWS_ENDPOINT_URL", url)));
        let printed = refusal(&start(GET_ORDER, &env));
        assert!(
            printed.contains("cannot start") && printed.contains("published development secret"),
            "{endpoint:?}: {printed}"
        );
    }
}

#[test]
fn settings_that_pass_reach_the_lambda_runtime() {
    let cases: [(&str, &[(&str, &str)]); 4] = [
        (
            GET_ORDER,
            &[
                ("AWS_REGION", "us-east-1"),
                ("JWT_SECRET", "a-deployment-secret"),
            ],
        ),
        // Against an emulator the development secret is fine (cargo lambda watch, sam local).
        (
            GET_ORDER,
            &[
                ("AWS_REGION", "us-east-1"),
                ("JWT_SECRET", "local-dev-secret"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ],
        ),
        // Health verifies no token, so it reads no JWT setting.
        (
            HEALTH,
            &[
                ("AWS_REGION", "us-east-1"),
                ("ORDER_QUEUE_URL", "http://127.0.0.1:9/000000000000/orders"),
            ],
        ),
        (
            CREATE_ORDER,
            &[
                ("AWS_REGION", "us-east-1"),
                ("JWT_SECRET", "a-deployment-secret"),
                ("ORDER_QUEUE_URL", "http://127.0.0.1:9/000000000000/orders"),
            ],
        ),
    ];
    for (binary, env) in cases {
        let printed = refusal(&start(binary, env));
        assert!(!printed.contains("cannot start"), "{binary}: {printed}");
        assert!(
            printed.contains("AWS_LAMBDA"),
            "{binary} stops only for want of the Lambda runtime: {printed}"
        );
    }
}

#[test]
fn a_function_that_sends_to_the_queue_refuses_to_start_without_its_url() {
    let printed = refusal(&start(
        CREATE_ORDER,
        &[
            ("AWS_REGION", "us-east-1"),
            ("JWT_SECRET", "a-deployment-secret"),
        ],
    ));
    assert!(
        printed.contains("cannot start") && printed.contains("ORDER_QUEUE_URL"),
        "{printed}"
    );
}

#[test]
fn a_function_that_verifies_tokens_refuses_to_start_when_its_jwt_secret_cannot_be_read() {
    // Nothing listens on port 1: the cold start has no cached value to fall back on.
    for binary in [GET_ORDER, WS_CONNECT] {
        let printed = refusal(&start(
            binary,
            &[
                ("AWS_REGION", "us-east-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("JWT_SECRET_ID", "order-processing/jwt-secret"),
            ],
        ));
        assert!(
            printed.contains("cannot start")
                && printed.contains("reading JWT_SECRET_ID at cold start")
                && printed.contains("order-processing/jwt-secret"),
            "{binary}: {printed}"
        );
    }
}

#[test]
fn a_function_given_both_the_jwt_secret_and_its_id_refuses_to_start() {
    let printed = refusal(&start(
        GET_ORDER,
        &[
            ("AWS_REGION", "us-east-1"),
            ("JWT_SECRET", "a-deployment-secret"),
            ("JWT_SECRET_ID", "order-processing/jwt-secret"),
        ],
    ));
    assert!(
        printed.contains("cannot start")
            && printed.contains("JWT_SECRET_ID")
            && printed.contains("JWT_SECRET is set too"),
        "{printed}"
    );
}

#[test]
fn the_webhook_function_refuses_to_start_when_its_secret_cannot_be_read() {
    // Nothing listens on port 1: the cold start has no cached value to fall back on.
    let printed = refusal(&start(
        env!("CARGO_BIN_EXE_payment-webhook"),
        &[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("WEBHOOK_SECRET_ID", "order-processing/webhook-secret"),
        ],
    ));
    assert!(
        printed.contains("cannot start")
            && printed.contains("reading WEBHOOK_SECRET_ID at cold start")
            && printed.contains("order-processing/webhook-secret"),
        "{printed}"
    );
}
