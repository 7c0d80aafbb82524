//! A minimal Secrets Manager on the local AWS endpoint (awsJson1_1, `X-Amz-Target:
//! secretsmanager.<Op>`): `CreateSecret`, `PutSecretValue`, `GetSecretValue` and `DescribeSecret`,
//! with the `AWSCURRENT` / `AWSPREVIOUS` staging labels moved as Secrets Manager moves them, so
//! the functions read and rotate their secrets locally as they do in AWS. In memory: a restart
//! seeds the development secrets again.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use chrono::{DateTime, Utc};
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

use crate::LOCAL_ACCOUNT_ID;

/// The `X-Amz-Target` prefix of Secrets Manager's operations.
pub(super) const TARGET_PREFIX: &str = "secretsmanager.";

const CURRENT: &str = "AWSCURRENT";
const PREVIOUS: &str = "AWSPREVIOUS";

/// Content type of the awsJson1_1 protocol.
const JSON_1_1: &str = "application/x-amz-json-1.1";

/// The secrets, by name.
pub(super) struct SecretStore {
    region: String,
    secrets: Mutex<HashMap<String, Secret>>,
}

struct Secret {
    arn: String,
    created: DateTime<Utc>,
    /// In creation order.
    versions: Vec<Version>,
}

struct Version {
    id: String,
    value: String,
    created: DateTime<Utc>,
    stages: Vec<&'static str>,
}

/// An error answer: its `__type` and message.
struct Refusal(&'static str, String);

impl SecretStore {
    /// An empty store whose ARNs name `region` and the local account.
    pub(super) fn new(region: &str) -> Self {
        SecretStore {
            region: region.to_owned(),
            secrets: Mutex::new(HashMap::new()),
        }
    }

    /// Answers one request to `operation` with JSON `body`.
    pub(super) fn call(&self, operation: &str, body: &[u8]) -> Response<Body> {
        let request: Value = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(error) => {
                return refusal(Refusal(
                    "SerializationException",
                    format!("the request body is not JSON: {error}"),
                ));
            }
        };
        let answer = match operation {
            "CreateSecret" => self.create(&request),
            "PutSecretValue" => self.put(&request),
            "GetSecretValue" => self.get(&request),
            "DescribeSecret" => self.describe(&request),
            other => Err(Refusal(
                "UnknownOperationException",
                format!("the local Secrets Manager does not implement {other}"),
            )),
        };
        match answer {
            Ok(body) => json_answer(StatusCode::OK, &body),
            Err(refused) => refusal(refused),
        }
    }

    fn create(&self, request: &Value) -> Result<Value, Refusal> {
        let name = string(request, "Name")?;
        let value = string(request, "SecretString")?;
        let mut secrets = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        if secrets.contains_key(name) {
            return Err(Refusal(
                "ResourceExistsException",
                format!("The operation failed because the secret {name} already exists."),
            ));
        }
        let now = Utc::now();
        let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
        let arn = format!(
            "arn:aws:secretsmanager:{}:{LOCAL_ACCOUNT_ID}:secret:{name}-{suffix}",
            self.region
        );
        let version = Version {
            id: version_id(request),
            value: value.to_owned(),
            created: now,
            stages: vec![CURRENT],
        };
        let answer = json!({"ARN": arn, "Name": name, "VersionId": version.id});
        secrets.insert(
            name.to_owned(),
            Secret {
                arn,
                created: now,
                versions: vec![version],
            },
        );
        Ok(answer)
    }

    /// A new `AWSCURRENT` version; the old current becomes `AWSPREVIOUS`, and the old previous
    /// loses its label (and is dropped: nothing can name it by stage any more).
    fn put(&self, request: &Value) -> Result<Value, Refusal> {
        let value = string(request, "SecretString")?;
        let mut secrets = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        let (name, secret) = find(&mut secrets, string(request, "SecretId")?)?;
        secret.versions.retain(|v| !v.stages.contains(&PREVIOUS));
        for version in &mut secret.versions {
            if version.stages.contains(&CURRENT) {
                version.stages = vec![PREVIOUS];
            }
        }
        let version = Version {
            id: version_id(request),
            value: value.to_owned(),
            created: Utc::now(),
            stages: vec![CURRENT],
        };
        let answer = json!({
            "ARN": secret.arn, "Name": name, "VersionId": version.id, "VersionStages": [CURRENT],
        });
        secret.versions.push(version);
        Ok(answer)
    }

    fn get(&self, request: &Value) -> Result<Value, Refusal> {
        let mut secrets = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        let (name, secret) = find(&mut secrets, string(request, "SecretId")?)?;
        let by_id = request["VersionId"].as_str();
        let stage = request["VersionStage"].as_str();
        let version = secret
            .versions
            .iter()
            .find(|v| {
                by_id.is_none_or(|id| v.id == id)
                    && match (stage, by_id) {
                        (Some(stage), _) => v.stages.contains(&stage),
                        (None, Some(_)) => true,
                        (None, None) => v.stages.contains(&CURRENT),
                    }
            })
            .ok_or_else(|| {
                Refusal(
                    "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret value for staging label or \
                     version id."
                        .into(),
                )
            })?;
        Ok(json!({
            "ARN": secret.arn,
            "Name": name,
            "VersionId": version.id,
            "SecretString": version.value,
            "VersionStages": version.stages,
            "CreatedDate": epoch_seconds(version.created),
        }))
    }

    fn describe(&self, request: &Value) -> Result<Value, Refusal> {
        let mut secrets = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        let (name, secret) = find(&mut secrets, string(request, "SecretId")?)?;
        let stages: serde_json::Map<String, Value> = secret
            .versions
            .iter()
            .map(|v| (v.id.clone(), json!(v.stages)))
            .collect();
        Ok(json!({
            "ARN": secret.arn,
            "Name": name,
            "CreatedDate": epoch_seconds(secret.created),
            "VersionIdsToStages": stages,
        }))
    }
}

/// The secret a `SecretId` names: its name, or its ARN (whole, as Secrets Manager hands it out).
fn find<'s>(
    secrets: &'s mut HashMap<String, Secret>,
    id: &str,
) -> Result<(String, &'s mut Secret), Refusal> {
    secrets
        .iter_mut()
        .find(|(name, secret)| name.as_str() == id || secret.arn == id)
        .map(|(name, secret)| (name.clone(), secret))
        .ok_or_else(|| {
            Refusal(
                "ResourceNotFoundException",
                "Secrets Manager can't find the specified secret.".into(),
            )
        })
}

/// The request's `ClientRequestToken` (the SDK always sends one), or a fresh id.
fn version_id(request: &Value) -> String {
    request["ClientRequestToken"]
        .as_str()
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

fn string<'r>(request: &'r Value, field: &str) -> Result<&'r str, Refusal> {
    request[field].as_str().ok_or_else(|| {
        Refusal(
            "InvalidParameterException",
            format!("{field} is required and must be a string"),
        )
    })
}

/// A timestamp as the awsJson protocols write it: epoch seconds, with a fraction.
fn epoch_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_micros() as f64 / 1e6
}

fn json_answer(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_1_1),
    );
    response.headers_mut().insert(
        "x-amzn-requestid",
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("local")),
    );
    response
}

fn refusal(Refusal(kind, message): Refusal) -> Response<Body> {
    json_answer(
        StatusCode::BAD_REQUEST,
        &json!({"__type": kind, "Message": message}),
    )
}
