//! The one place errors become HTTP: status, `error_code`, message and details (the `Error`
//! schema of `openapi.yaml`), for the HTTP layer's own refusals and for every [`AppError`] a use
//! case returns.

use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

use crate::application::AppError;
use crate::domain::FieldErrors;
use crate::ports::StoreError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Body not JSON, wrong content type, or too large.
    #[error("{0}")]
    Malformed(String),
    /// Missing, expired or badly signed token or webhook signature.
    #[error("authentication required: {reason}")]
    Unauthenticated {
        /// What was wrong, for the client.
        reason: &'static str,
        /// The `WWW-Authenticate` challenge (RFC 6750 for bearer tokens); none for webhooks.
        challenge: Option<&'static str>,
    },
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Unknown route or id found by the HTTP layer itself (a read).
    #[error("{what} not found")]
    NotFound {
        /// `product`, `order`, `hold`, `route`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// Field-level validation failures.
    #[error("the request is not valid")]
    Validation(FieldErrors),
    /// Over the limit for the last 60 seconds.
    #[error("too many requests")]
    RateLimited {
        /// Seconds until the same request would be allowed, rounded up.
        retry_after_secs: u64,
    },
    /// What a use case refused or failed with.
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidCursor => ApiError::Validation(FieldErrors::single(
                "cursor",
                "is not a cursor this API handed out",
            )),
            other => ApiError::App(other.into()),
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        ApiError::Validation(errors)
    }
}

impl ApiError {
    /// 401 for a refused bearer token: `WWW-Authenticate: Bearer` when none was sent, with
    /// `error="invalid_token"` when one was (RFC 6750 section 3).
    pub(crate) fn bearer(error: &crate::auth::AuthError) -> Self {
        let challenge = match error {
            crate::auth::AuthError::Missing => "Bearer",
            _ => "Bearer error=\"invalid_token\"",
        };
        ApiError::Unauthenticated {
            reason: error.client_reason(),
            challenge: Some(challenge),
        }
    }

    /// Status and `error_code`: the table.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::Malformed(_) => (S::BAD_REQUEST, "MALFORMED_REQUEST"),
            Self::Unauthenticated { .. } => (S::UNAUTHORIZED, "UNAUTHENTICATED"),
            Self::Forbidden(_) => (S::FORBIDDEN, "FORBIDDEN"),
            Self::NotFound { .. } | Self::App(AppError::NotFound { .. }) => {
                (S::NOT_FOUND, "NOT_FOUND")
            }
            Self::Validation(_) => (S::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            Self::RateLimited { .. } => (S::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            Self::App(error) => match error {
                AppError::NotFound { .. } => (S::NOT_FOUND, "NOT_FOUND"),
                AppError::InsufficientStock { .. } => (S::CONFLICT, "INSUFFICIENT_STOCK"),
                AppError::LockConflict { .. } => (S::CONFLICT, "LOCK_CONFLICT"),
                AppError::IdempotencyInProgress => (S::CONFLICT, "IDEMPOTENCY_IN_PROGRESS"),
                AppError::HoldNotActive { .. } => (S::CONFLICT, "HOLD_NOT_ACTIVE"),
                AppError::HoldLimitReached { .. } => (S::CONFLICT, "HOLD_LIMIT_REACHED"),
                AppError::IdempotencyKeyReused => {
                    (S::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED")
                }
                AppError::NotCancellable { .. } => {
                    (S::UNPROCESSABLE_ENTITY, "ORDER_NOT_CANCELLABLE")
                }
                AppError::Unavailable(_) => (S::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
                AppError::Internal(_) => (S::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
            },
        }
    }

    fn details(&self, trace_id: &str) -> Value {
        match self {
            Self::NotFound { what, id } | Self::App(AppError::NotFound { what, id }) => {
                json!({ "resource": what, "id": id })
            }
            Self::Validation(errors) => json!(errors),
            Self::RateLimited { retry_after_secs } => {
                json!({ "retry_after_seconds": retry_after_secs })
            }
            Self::App(AppError::InsufficientStock {
                product_id,
                requested,
                available,
            }) => {
                json!({ "product_id": product_id, "requested": requested, "available": available })
            }
            Self::App(AppError::LockConflict { product_id }) => json!({ "product_id": product_id }),
            Self::App(AppError::NotCancellable { status }) => json!({ "status": status }),
            Self::App(AppError::HoldNotActive { hold_id, status }) => {
                json!({ "hold_id": hold_id, "status": status })
            }
            Self::App(AppError::HoldLimitReached { product_id, limit }) => {
                json!({ "product_id": product_id, "limit": limit })
            }
            // The cause is in the log under this trace id; the client gets only the id.
            Self::App(AppError::Internal(_)) => json!({ "trace_id": trace_id }),
            _ => json!({}),
        }
    }

    /// Logs server-side failures with their cause chain; client errors at debug level.
    pub(crate) fn log(&self) {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            let mut chain = String::new();
            let mut source = std::error::Error::source(self);
            while let Some(cause) = source {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::error!(error_code = code, "{self}{chain}");
        } else {
            tracing::debug!(error_code = code, "{self}");
        }
    }

    /// The JSON error response; `trace_id` is the request's (shown for internal errors).
    pub fn into_response(self, trace_id: &str) -> Response<Body> {
        let (status, code) = self.status_and_code();
        let body = json!({
            "message": self.to_string(),
            "error_code": code,
            "details": self.details(trace_id),
        });
        let mut response = super::response::json(status, &body);
        match self {
            Self::RateLimited { retry_after_secs } => {
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from(retry_after_secs),
                );
            }
            Self::Unauthenticated {
                challenge: Some(challenge),
                ..
            } => {
                response.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static(challenge),
                );
            }
            _ => {}
        }
        response
    }
}
