//! `token`: prints one signed bearer token for the API on stdout, signed with the key a deployed
//! stack verifies (the HS256 secret in Secrets Manager, or the RS256 private key), or with the
//! local stack's development secret. The claims are the ones `shared/src/auth/mod.rs` reads: `sub`,
//! `exp`, `role` (`"admin"`), and `iss` / `aud` when the stack sets `JwtIssuer` / `JwtAudience`.
//! `make token` runs it; docs/deploy.md ("Getting a token after deploying") has the routes.
//!
//! ```text
//! token --sub alice --role admin --secret-id order-processing/jwt-secret
//! token --sub alice --key-file private.pem --ttl 30m
//! token --sub alice --local
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use aws_config::{BehaviorVersion, Region};
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use shared::config::DEVELOPMENT_JWT_SECRET;
use shared::domain::UserId;

const USAGE: &str = "\
usage: token --sub USER [--role admin] [--ttl 1h] [--issuer URL] [--audience AUD] KEY

Prints one signed bearer token on stdout.

KEY, exactly one of:
  --secret-id NAME_OR_ARN  HS256 with the SecretString of this Secrets Manager secret (the
                           stack's JwtSecretName), read with GetSecretValue; AWS credentials,
                           region and endpoint come from the SDK's default chain (AWS_PROFILE,
                           AWS_REGION, AWS_ENDPOINT_URL, ...; SSO and credential_process
                           profiles excepted: export their credentials first, e.g. with
                           `aws configure export-credentials --format env`); an ARN also gives
                           the region
  --key-file PATH          RS256 with this PEM private key (PKCS#8 or PKCS#1): the pair of the
                           public key in the stack's JwtPublicKeyParameterName
  --local                  HS256 with the published development secret \"local-dev-secret\": for
                           the local stack (make run) only; deployed functions refuse it

  --sub USER      the user id (sub): 1 to 128 printable characters
  --role ROLE     the role claim; \"admin\" is the only role the API knows (product writes,
                  every user's orders); without it, a plain user
  --ttl DURATION  lifetime: 3600, 90s, 30m, 1h or 7d; at most a year (default 1h)
  --issuer URL    the iss claim: the stack's JwtIssuer, when it sets one
  --audience AUD  the aud claim: the stack's JwtAudience, when it sets one";

/// The key choices, for the error that asks for exactly one.
const KEY_CHOICES: &str = "give exactly one of --secret-id NAME_OR_ARN (HS256, the stack's \
     JwtSecretName in Secrets Manager), --key-file PATH (RS256, PEM private key) or --local (the \
     local stack's development secret)";

/// The lifetime without `--ttl`.
const DEFAULT_TTL: TimeDelta = TimeDelta::hours(1);

/// The longest `--ttl`: a token outliving a year is a credential nobody remembers to revoke.
const MAX_TTL: TimeDelta = TimeDelta::days(366);

/// Where the signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeySource {
    /// HS256 with a Secrets Manager secret's SecretString (name or ARN).
    SecretId(String),
    /// RS256 with a PEM private key file.
    KeyFile(PathBuf),
    /// HS256 with [`DEVELOPMENT_JWT_SECRET`].
    Local,
}

/// One token to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TokenRequest {
    sub: String,
    role: Option<String>,
    ttl: TimeDelta,
    issuer: Option<String>,
    audience: Option<String>,
    source: KeySource,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Mint(TokenRequest),
}

/// The claims signed: what `shared/src/auth/mod.rs` reads, plus `iat` for whoever inspects the token.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("token: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the arguments, fetches the key, prints the token.
async fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let request = match parse_args(args)? {
        Command::Help => {
            println!("{USAGE}");
            return Ok(());
        }
        Command::Mint(request) => request,
    };
    let (algorithm, key) = signing_key(&request.source).await?;
    let now = Utc::now();
    let token = mint(&request, algorithm, &key, now)?;
    println!("{token}");
    eprintln!(
        "token: {algorithm:?} for {}{}, expires {}",
        request.sub,
        request
            .role
            .as_deref()
            .map_or_else(String::new, |role| format!(" (role {role})")),
        (now + request.ttl).format("%Y-%m-%dT%H:%M:%SZ")
    );
    Ok(())
}

/// The request the arguments make; every mistake is an error that names the flag.
fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Command> {
    let (mut sub, mut role, mut ttl, mut issuer, mut audience) = (None, None, None, None, None);
    let mut sources = Vec::new();
    while let Some(arg) = args.next() {
        let flag = arg.as_str();
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--local" => sources.push((flag.to_owned(), KeySource::Local)),
            "--secret-id" => {
                let id = value(&mut args, flag)?;
                sources.push((flag.to_owned(), KeySource::SecretId(id)));
            }
            "--key-file" => {
                let path = value(&mut args, flag)?;
                sources.push((flag.to_owned(), KeySource::KeyFile(path.into())));
            }
            "--sub" => set_once(&mut sub, flag, value(&mut args, flag)?)?,
            "--role" => set_once(&mut role, flag, value(&mut args, flag)?)?,
            "--ttl" => set_once(&mut ttl, flag, value(&mut args, flag)?)?,
            "--issuer" => set_once(&mut issuer, flag, value(&mut args, flag)?)?,
            "--audience" => set_once(&mut audience, flag, value(&mut args, flag)?)?,
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    let source = match sources.len() {
        0 => bail!("no key: {KEY_CHOICES}"),
        1 => sources.remove(0).1,
        _ => {
            let given: Vec<&str> = sources.iter().map(|(flag, _)| flag.as_str()).collect();
            bail!("more than one key ({}): {KEY_CHOICES}", given.join(", "))
        }
    };
    let sub = sub.context("--sub USER is required: the user id the token names")?;
    UserId::parse(&sub).map_err(|reason| anyhow!("--sub {sub:?}: {reason}"))?;
    let ttl = match ttl {
        Some(text) => parse_ttl(&text)?,
        None => DEFAULT_TTL,
    };
    Ok(Command::Mint(TokenRequest {
        sub,
        role,
        ttl,
        issuer,
        audience,
        source,
    }))
}

/// The value after `flag`: present, not empty and not another flag.
fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> anyhow::Result<String> {
    match args.next() {
        Some(value) if !value.is_empty() && !value.starts_with("--") => Ok(value),
        _ => bail!("{flag} needs a value\n{USAGE}"),
    }
}

/// Stores a flag's value, refusing the flag twice.
fn set_once(slot: &mut Option<String>, flag: &str, value: String) -> anyhow::Result<()> {
    if slot.replace(value).is_some() {
        bail!("{flag} is given twice");
    }
    Ok(())
}

/// `3600`, `90s`, `30m`, `1h` or `7d`: positive, at most [`MAX_TTL`].
fn parse_ttl(text: &str) -> anyhow::Result<TimeDelta> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("--ttl {text:?}: unknown unit {unit:?} (s, m, h or d)"),
    };
    let ttl = number
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(unit_seconds))
        .and_then(TimeDelta::try_seconds)
        .with_context(|| {
            format!("--ttl {text:?} is not a positive duration like 3600, 90s, 30m, 1h or 7d")
        })?;
    if ttl > MAX_TTL {
        bail!("--ttl {text:?} is longer than a year: mint a fresh token when it runs out");
    }
    Ok(ttl)
}

/// The algorithm and key `source` gives.
async fn signing_key(source: &KeySource) -> anyhow::Result<(Algorithm, EncodingKey)> {
    match source {
        KeySource::Local => Ok((
            Algorithm::HS256,
            EncodingKey::from_secret(DEVELOPMENT_JWT_SECRET.as_bytes()),
        )),
        KeySource::SecretId(secret_id) => {
            let secret = secret_string(secret_id).await?;
            if secret == DEVELOPMENT_JWT_SECRET {
                eprintln!(
                    "token: warning: {secret_id:?} holds the published development secret; \
                     deployed functions refuse to start with it"
                );
            }
            Ok((
                Algorithm::HS256,
                EncodingKey::from_secret(secret.as_bytes()),
            ))
        }
        KeySource::KeyFile(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the private key {}", path.display()))?;
            if String::from_utf8_lossy(&pem).contains("PUBLIC KEY-----") {
                bail!(
                    "{} holds a public key: --key-file takes the private key (its public key is \
                     what JwtPublicKeyParameterName holds)",
                    path.display()
                );
            }
            let key = EncodingKey::from_rsa_pem(&pem).with_context(|| {
                format!(
                    "{} is not an RSA private key in PEM (PKCS#8 \"BEGIN PRIVATE KEY\" or PKCS#1 \
                     \"BEGIN RSA PRIVATE KEY\")",
                    path.display()
                )
            })?;
            Ok((Algorithm::RS256, key))
        }
    }
}

/// The SecretString of `secret_id`'s current version, whole: the functions given `JWT_SECRET_ID`
/// read the whole SecretString (`AWSCURRENT`, and `AWSPREVIOUS` during the overlap window).
async fn secret_string(secret_id: &str) -> anyhow::Result<String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    // A secret lives in one region, and its ARN names it.
    if let Some(region) = arn_region(secret_id) {
        loader = loader.region(Region::new(region.to_owned()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        bail!(
            "no AWS region for Secrets Manager: set AWS_REGION (or a region in your AWS profile), \
             or pass the secret's ARN"
        );
    }
    let output = aws_sdk_secretsmanager::Client::new(&config)
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| anyhow!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))
        .with_context(|| {
            format!(
                "reading the secret {secret_id:?} with secretsmanager:GetSecretValue (credentials \
                 from the AWS SDK's default chain; for an SSO or credential_process profile, \
                 export its credentials first: docs/deploy.md)"
            )
        })?;
    match output.secret_string {
        Some(secret) if !secret.is_empty() => Ok(secret),
        _ => bail!(
            "the secret {secret_id:?} has no SecretString (a binary secret?): the stack uses its \
             SecretString as the HS256 secret"
        ),
    }
}

/// The region of a Secrets Manager ARN (`arn:aws:secretsmanager:<region>:<account>:secret:<name>`).
fn arn_region(secret_id: &str) -> Option<&str> {
    let mut parts = secret_id.strip_prefix("arn:")?.split(':');
    let (_partition, service, region) = (parts.next()?, parts.next()?, parts.next()?);
    (service == "secretsmanager" && !region.is_empty()).then_some(region)
}

/// The signed token, issued at `now`.
fn mint(
    request: &TokenRequest,
    algorithm: Algorithm,
    key: &EncodingKey,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let claims = Claims {
        sub: &request.sub,
        iat: now.timestamp(),
        exp: (now + request.ttl).timestamp(),
        role: request.role.as_deref(),
        iss: request.issuer.as_deref(),
        aud: request.audience.as_deref(),
    };
    jsonwebtoken::encode(&Header::new(algorithm), &claims, key)
        .with_context(|| format!("signing the token ({algorithm:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::auth::Authenticator;
    use shared::config::AuthSettings;

    fn parse(args: &[&str]) -> anyhow::Result<Command> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    fn error(args: &[&str]) -> String {
        format!("{:#}", parse(args).unwrap_err())
    }

    #[test]
    fn a_full_command_line_becomes_one_request() {
        let command = parse(&[
            "--sub",
            "alice",
            "--role",
            "admin",
            "--ttl",
            "30m",
            "--issuer",
            "https://issuer.example",
            "--audience",
            "orders",
            "--secret-id",
            "order-processing/jwt-secret",
        ])
        .unwrap();

        assert_eq!(
            command,
            Command::Mint(TokenRequest {
                sub: "alice".into(),
                role: Some("admin".into()),
                ttl: TimeDelta::minutes(30),
                issuer: Some("https://issuer.example".into()),
                audience: Some("orders".into()),
                source: KeySource::SecretId("order-processing/jwt-secret".into()),
            })
        );
        assert_eq!(parse(&["--sub", "a", "--help"]).unwrap(), Command::Help);
    }

    #[test]
    fn without_a_key_or_with_two_the_error_lists_the_choices() {
        for message in [
            error(&["--sub", "alice"]),
            error(&["--sub", "alice", "--local", "--key-file", "k.pem"]),
            error(&["--sub", "alice", "--secret-id", "s", "--secret-id", "t"]),
        ] {
            for choice in ["--secret-id NAME_OR_ARN", "--key-file PATH", "--local"] {
                assert!(message.contains(choice), "{message}");
            }
        }
        assert!(error(&["--sub", "alice"]).starts_with("no key"));
        assert!(
            error(&["--sub", "alice", "--local", "--key-file", "k.pem"])
                .starts_with("more than one key (--local, --key-file)")
        );
    }

    #[test]
    fn missing_repeated_and_unknown_arguments_are_named() {
        assert!(error(&["--local"]).contains("--sub USER is required"));
        assert!(error(&["--sub"]).starts_with("--sub needs a value"));
        assert!(error(&["--sub", "--local"]).starts_with("--sub needs a value"));
        assert!(error(&["--sub", "", "--local"]).starts_with("--sub needs a value"));
        assert!(error(&["--sub", "a", "--sub", "b", "--local"]).contains("--sub is given twice"));
        assert!(error(&["--sub", "a", "--local", "--bogus"]).contains("unexpected argument"));
        assert!(error(&["--sub", "bad\u{7}id", "--local"]).starts_with("--sub \"bad\\u{7}id\""));
    }

    #[test]
    fn ttls_take_seconds_minutes_hours_and_days_up_to_a_year() {
        assert_eq!(parse_ttl("3600").unwrap(), TimeDelta::hours(1));
        assert_eq!(parse_ttl("90s").unwrap(), TimeDelta::seconds(90));
        assert_eq!(parse_ttl("30m").unwrap(), TimeDelta::minutes(30));
        assert_eq!(parse_ttl("2h").unwrap(), TimeDelta::hours(2));
        assert_eq!(parse_ttl("7d").unwrap(), TimeDelta::days(7));
        for bad in [
            "",
            "0",
            "0h",
            "-5",
            "1.5h",
            "1w",
            "h",
            "99999999999999999999d",
            "400d",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secret_arns_name_their_region_and_names_do_not() {
        assert_eq!(
            arn_region("arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt-AbCdEf"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("order-processing/jwt-secret"), None);
        assert_eq!(
            arn_region("arn:aws:ssm:eu-west-1:123456789012:parameter/x"),
            None
        );
    }

    #[tokio::test]
    async fn a_local_token_passes_the_local_stacks_check_with_its_claims() {
        let Command::Mint(request) = parse(&[
            "--sub",
            "alice",
            "--role",
            "admin",
            "--issuer",
            "https://issuer.example",
            "--audience",
            "orders",
            "--local",
        ])
        .unwrap() else {
            panic!("not a mint command");
        };
        let (algorithm, key) = signing_key(&request.source).await.unwrap();

        let token = mint(&request, algorithm, &key, Utc::now()).unwrap();

        let settings = AuthSettings {
            jwt_issuer: Some("https://issuer.example".into()),
            jwt_audience: Some("orders".into()),
            ..AuthSettings::development()
        };
        let caller = Authenticator::from_settings(&settings)
            .unwrap()
            .verify(&token)
            .unwrap();
        assert_eq!(caller.user_id.as_str(), "alice");
        assert!(caller.is_admin);
    }

    #[tokio::test]
    async fn a_token_past_its_ttl_is_refused() {
        let Command::Mint(request) = parse(&["--sub", "bob", "--ttl", "60", "--local"]).unwrap()
        else {
            panic!("not a mint command");
        };
        let (algorithm, key) = signing_key(&request.source).await.unwrap();
        let authenticator = Authenticator::from_settings(&AuthSettings::development()).unwrap();

        let fresh = mint(&request, algorithm, &key, Utc::now()).unwrap();
        let stale = mint(&request, algorithm, &key, Utc::now() - TimeDelta::hours(1)).unwrap();

        assert!(!authenticator.verify(&fresh).unwrap().is_admin);
        assert!(authenticator.verify(&stale).is_err());
    }
}
