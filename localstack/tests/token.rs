//! The `token` binary as `make token` runs it: a token signed with a private key file passes the
//! functions' check with the matching public key (and only that key), one signed with a Secrets
//! Manager secret read from moto's server (the project's `.venv`, as `make test` installs it)
//! passes with that secret, and a command line without exactly one key is refused.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use shared::auth::{AuthError, Authenticator};
use shared::config::AuthSettings;
use support::{MotoServer, REGION};

const TOKEN: &str = env!("CARGO_BIN_EXE_token");

/// Test-only key pair (generated with openssl for these tests, used nowhere else), the same
/// private key as PKCS#8 and as PKCS#1, and the public key of another pair.
const TEST_PUBLIC_KEY: &str = include_str!("fixtures/token-test-key-public.pem");
const OTHER_PUBLIC_KEY: &str = include_str!("fixtures/token-test-other-public.pem");

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// Runs `token` with `args` and none of the caller's AWS settings, plus `env`.
fn run_token(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(TOKEN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {TOKEN}: {e}"))
}

/// The token printed by a successful run.
fn printed_token(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "token failed: {stderr}");
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stdout: {stdout:?}");
    assert_eq!(lines[0].split('.').count(), 3, "a JWT: {stdout:?}");
    lines[0].to_owned()
}

fn authenticator(settings: AuthSettings) -> Authenticator {
    Authenticator::from_settings(&settings).unwrap()
}

fn rs256(public_key: &str, issuer: Option<&str>, audience: Option<&str>) -> AuthSettings {
    AuthSettings {
        jwt_public_key: Some(public_key.into()),
        jwt_issuer: issuer.map(Into::into),
        jwt_audience: audience.map(Into::into),
        ..AuthSettings::default()
    }
}

#[test]
fn a_key_file_token_passes_with_its_public_key_and_no_other() {
    for key_file in ["token-test-key-pkcs8.pem", "token-test-key-pkcs1.pem"] {
        let token = printed_token(&run_token(
            &[
                "--sub",
                "alice",
                "--role",
                "admin",
                "--issuer",
                "https://issuer.example",
                "--audience",
                "orders-api",
                "--key-file",
                &fixture(key_file),
            ],
            &[],
        ));

        let caller = authenticator(rs256(
            TEST_PUBLIC_KEY,
            Some("https://issuer.example"),
            Some("orders-api"),
        ))
        .verify(&token)
        .unwrap_or_else(|e| panic!("{key_file}: {e:?}"));
        assert_eq!(caller.user_id.as_str(), "alice");
        assert!(caller.is_admin);

        for (what, settings) in [
            ("another key", rs256(OTHER_PUBLIC_KEY, None, None)),
            (
                "another audience",
                rs256(TEST_PUBLIC_KEY, Some("https://issuer.example"), Some("x")),
            ),
            (
                "another issuer",
                rs256(TEST_PUBLIC_KEY, Some("https://other.example"), None),
            ),
            ("HS256 with the secret", AuthSettings::development()),
        ] {
            let verified = authenticator(settings).verify(&token);
            assert!(
                matches!(verified, Err(AuthError::Invalid(_))),
                "{key_file}, {what}: {verified:?}"
            );
        }
    }
}

#[test]
fn without_issuer_and_audience_a_token_passes_only_where_none_is_required() {
    let token = printed_token(&run_token(
        &[
            "--sub",
            "bob",
            "--key-file",
            &fixture("token-test-key-pkcs8.pem"),
        ],
        &[],
    ));

    let caller = authenticator(rs256(TEST_PUBLIC_KEY, None, None))
        .verify(&token)
        .unwrap();
    assert_eq!(caller.user_id.as_str(), "bob");
    assert!(!caller.is_admin);
    let required =
        authenticator(rs256(TEST_PUBLIC_KEY, Some("https://issuer.example"), None)).verify(&token);
    assert!(
        matches!(required, Err(AuthError::Invalid(_))),
        "{required:?}"
    );
}

#[test]
fn a_local_token_passes_the_development_secret() {
    let token = printed_token(&run_token(&["--sub", "carol", "--local"], &[]));

    let caller = authenticator(AuthSettings::development())
        .verify(&token)
        .unwrap();
    assert_eq!(caller.user_id.as_str(), "carol");
}

#[test]
fn without_exactly_one_key_nothing_is_printed_and_the_choices_are_named() {
    for args in [
        &["--sub", "alice"][..],
        &["--sub", "alice", "--local", "--secret-id", "s"][..],
        &["--sub", "alice", "--key-file", "k.pem", "--secret-id", "s"][..],
    ] {
        let output = run_token(args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);

        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
        for choice in ["--secret-id NAME_OR_ARN", "--key-file PATH", "--local"] {
            assert!(stderr.contains(choice), "{args:?}: {stderr}");
        }
    }
    let help = run_token(&["--help"], &[]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("only; deployed functions refuse it"));
}

/// A Secrets Manager client for moto's server.
fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_id_token_is_signed_with_the_secret_from_secrets_manager() {
    let moto = MotoServer::start().await;
    let secret = format!("test-secret/{}+=", uuid::Uuid::new_v4());
    let name = support::unique_name("order-processing-jwt-secret");
    let created = secrets_client(moto.endpoint())
        .create_secret()
        .name(&name)
        .secret_string(&secret)
        .send()
        .await
        .expect("CreateSecret");
    let arn = created.arn.expect("an ARN");
    let endpoint = moto.endpoint().to_owned();

    // The default credential chain, as a user's shell gives it; with the ARN, no AWS_REGION.
    let outputs = tokio::task::spawn_blocking(move || {
        let credentials = [
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ];
        let with_region = [&credentials[..], &[("AWS_REGION", REGION)]].concat();
        [
            run_token(
                &["--sub", "dave", "--role", "admin", "--secret-id", &name],
                &with_region,
            ),
            run_token(
                &["--sub", "dave", "--role", "admin", "--secret-id", &arn],
                &credentials,
            ),
            run_token(
                &["--sub", "dave", "--secret-id", "no-such-secret"],
                &with_region,
            ),
        ]
    })
    .await
    .unwrap();

    let with_the_secret = authenticator(AuthSettings {
        jwt_secret: Some(secret),
        ..AuthSettings::default()
    });
    for output in &outputs[..2] {
        let token = printed_token(output);
        let caller = with_the_secret.verify(&token).unwrap();
        assert_eq!(caller.user_id.as_str(), "dave");
        assert!(caller.is_admin);
        let development = authenticator(AuthSettings::development()).verify(&token);
        assert!(matches!(development, Err(AuthError::Invalid(_))));
    }
    let missing = &outputs[2];
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(missing.stdout.is_empty());
    assert!(
        stderr.contains("no-such-secret") && stderr.contains("ResourceNotFoundException"),
        "{stderr}"
    );
}
