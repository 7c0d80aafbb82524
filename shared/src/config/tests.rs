use super::*;
use crate::function::Function;
use std::collections::HashMap;

fn config(footprint: &Footprint, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(footprint, |k| map.get(k).cloned())
}

#[test]
fn a_rate_limit_above_what_the_template_allows_is_refused() {
    let everything = Footprint::everything();
    let read = config(&everything, &[("RATE_LIMIT_PER_MINUTE", "10000")]).unwrap();
    assert_eq!(read.rate_limit_per_minute, 10_000);
    let refused = config(&everything, &[("RATE_LIMIT_PER_MINUTE", "10001")]).unwrap_err();
    assert_eq!(refused.name, "RATE_LIMIT_PER_MINUTE");
    assert!(
        refused.reason.contains("the template allows"),
        "{}",
        refused.reason
    );
    assert_eq!(
        config(&everything, &[("RATE_LIMIT_PER_MINUTE", "0")])
            .unwrap()
            .rate_limit_per_minute,
        0
    );
}

#[test]
fn an_empty_environment_gives_the_defaults_but_no_key() {
    let read = config(&Footprint::everything(), &[]).unwrap();
    assert_eq!(
        read,
        Config {
            auth: AuthSettings::default(),
            webhook_secret: None,
            ..Config::default()
        }
    );
    assert_eq!(
        read.webhook_secret_setting().unwrap_err().name,
        "WEBHOOK_SECRET_ID"
    );
}

#[test]
fn the_development_webhook_secret_is_accepted_only_against_a_local_emulator() {
    let all = Footprint::everything();
    let local = config(
        &all,
        &[
            ("WEBHOOK_SECRET", DEVELOPMENT_WEBHOOK_SECRET),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ],
    )
    .unwrap();
    assert_eq!(
        local.webhook_secret_setting().unwrap(),
        SecretSetting::Literal(DEVELOPMENT_WEBHOOK_SECRET)
    );
    let deployed = config(&all, &[("WEBHOOK_SECRET", DEVELOPMENT_WEBHOOK_SECRET)]).unwrap();
    assert_eq!(
        deployed.webhook_secret_setting().unwrap_err().name,
        "WEBHOOK_SECRET"
    );
    let own = config(&all, &[("WEBHOOK_SECRET", "whsec_mine")]).unwrap();
    assert_eq!(
        own.webhook_secret_setting().unwrap(),
        SecretSetting::Literal("whsec_mine")
    );
    let rotating = config(
        &all,
        &[
            ("WEBHOOK_SECRET_ID", "orders/webhook"),
            ("SECRETS_REFRESH_SECONDS", "1"),
            ("WEBHOOK_SECRET_OVERLAP_SECONDS", "4"),
        ],
    )
    .unwrap();
    assert_eq!(
        rotating.webhook_secret_setting().unwrap(),
        SecretSetting::SecretId("orders/webhook")
    );
    assert_eq!(
        rotating.secret_rotation,
        Rotation {
            refresh_every: Duration::from_secs(1),
            overlap: Duration::from_secs(4),
        }
    );
    let both = config(
        &all,
        &[
            ("WEBHOOK_SECRET_ID", "orders/webhook"),
            ("WEBHOOK_SECRET", "x"),
        ],
    )
    .unwrap();
    assert_eq!(
        both.webhook_secret_setting().unwrap_err().name,
        "WEBHOOK_SECRET_ID"
    );
    let never = config(&all, &[("SECRETS_REFRESH_SECONDS", "0")]).unwrap_err();
    assert_eq!(never.name, "SECRETS_REFRESH_SECONDS");
    let ttl = config(&all, &[("HOLD_TTL_SECONDS", "0")]).unwrap_err();
    assert_eq!(ttl.name, "HOLD_TTL_SECONDS");
    let window = config(&all, &[("CANCEL_WINDOW_SECONDS", "901")]).unwrap_err();
    assert_eq!(window.name, "CANCEL_WINDOW_SECONDS");
    let window = config(&all, &[("CANCEL_WINDOW_SECONDS", "900")]).unwrap();
    assert_eq!(window.cancel_window, Duration::from_secs(900));
}

#[test]
fn the_jwt_secret_is_a_secret_id_or_a_literal_not_both() {
    let all = Footprint::everything();
    let rotating = config(
        &all,
        &[
            ("JWT_SECRET_ID", "orders/jwt"),
            ("SECRETS_REFRESH_SECONDS", "2"),
            ("JWT_SECRET_OVERLAP_SECONDS", "5"),
        ],
    )
    .unwrap();
    assert_eq!(
        rotating.jwt_secret_setting().unwrap(),
        Some(SecretSetting::SecretId("orders/jwt"))
    );
    assert_eq!(
        rotating.jwt_secret_rotation(),
        Rotation {
            refresh_every: Duration::from_secs(2),
            overlap: Duration::from_secs(5),
        }
    );
    assert_eq!(
        config(&all, &[]).unwrap().jwt_secret_rotation().overlap,
        DEFAULT_JWT_SECRET_OVERLAP
    );
    let literal = config(&all, &[("JWT_SECRET", "mine")]).unwrap();
    assert_eq!(
        literal.jwt_secret_setting().unwrap(),
        Some(SecretSetting::Literal("mine"))
    );
    let both = config(
        &all,
        &[("JWT_SECRET_ID", "orders/jwt"), ("JWT_SECRET", "x")],
    )
    .unwrap();
    assert_eq!(both.jwt_secret_setting().unwrap_err().name, "JWT_SECRET_ID");
    // RS256 alone: the secret is not read (and a cold start makes no Secrets Manager call).
    let public = config(
        &all,
        &[("JWT_SECRET_ID", "orders/jwt"), ("JWT_PUBLIC_KEY", "pem")],
    )
    .unwrap();
    assert_eq!(public.jwt_secret_setting().unwrap(), None);
    // A function that verifies tokens reads the refresh interval; one that does not, not.
    let health = Config::settings_read(&Function::Http(crate::Endpoint::Health).footprint());
    assert!(!health.contains("SECRETS_REFRESH_SECONDS"));
    let get_order = Config::settings_read(&Function::Http(crate::Endpoint::GetOrder).footprint());
    for setting in [
        "JWT_SECRET_ID",
        "SECRETS_REFRESH_SECONDS",
        "JWT_SECRET_OVERLAP_SECONDS",
    ] {
        assert!(get_order.contains(setting), "{setting}");
    }
    assert!(!get_order.contains("WEBHOOK_SECRET_OVERLAP_SECONDS"));
}

#[test]
fn stock_locks_off_and_bad_values_are_reported() {
    let all = Footprint::everything();
    assert!(
        !config(&all, &[("STOCK_LOCKS", "off")])
            .unwrap()
            .locks
            .enabled
    );
    assert!(config(&all, &[("STOCK_LOCKS", "maybe")]).is_err());
    assert!(config(&all, &[("LOCK_ATTEMPTS", "x")]).is_err());
    assert!(config(&all, &[("PAYMENT_SUCCESS_RATE", "1.5")]).is_err());
}

#[test]
fn a_function_reads_only_the_settings_of_its_footprint() {
    let footprint = Function::Http(crate::Endpoint::GetProduct).footprint();
    let read = Config::settings_read(&footprint);
    assert!(read.contains("PRODUCTS_TABLE"));
    assert!(read.contains("JWT_SECRET"));
    assert!(!read.contains("ORDERS_TABLE"));
    assert!(!read.contains("ORDER_QUEUE_URL"));
    assert!(!read.contains("PAYMENT_SUCCESS_RATE"));

    let config = config(&footprint, &[("ORDERS_TABLE", "elsewhere")]).unwrap();
    assert!(
        config.tables.orders.starts_with('<'),
        "a table outside the footprint keeps a name DynamoDB refuses: {}",
        config.tables.orders
    );
}

#[test]
fn the_development_secret_is_refused_unless_the_endpoint_is_on_this_machine() {
    let development = AuthSettings::development();
    assert!(development.refuse_development_secret(None).is_err());
    for local in [
        "http://127.0.0.1:4566",
        "http://localhost:4566/",
        "http://[::1]:4566",
        "http://host.docker.internal:4566",
    ] {
        assert!(
            development.refuse_development_secret(Some(local)).is_ok(),
            "{local}"
        );
    }
    for remote in [
        "https://dynamodb-fips.us-east-1.amazonaws.com",
        "https://vpce-0123.dynamodb.us-east-1.vpce.amazonaws.com",
        "http://localhost.attacker.example",
        "http://10.0.0.5:4566",
        "127.0.0.1:4566",
    ] {
        assert!(
            development.refuse_development_secret(Some(remote)).is_err(),
            "{remote}"
        );
    }
    let own = AuthSettings {
        jwt_secret: Some("a-secret-of-our-own".into()),
        ..AuthSettings::default()
    };
    assert!(own.refuse_development_secret(None).is_ok());
}
