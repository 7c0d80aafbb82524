//! The one place errors become HTTP: status, `error_code`, message and details (SPEC section 3).

use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

use crate::domain::{FieldErrors, OrderStatus, ProductId};
use crate::ports::{PlaceOrderError, StoreError};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Body not JSON, wrong content type, or too large.
    #[error("{0}")]
    Malformed(String),
    /// Missing, expired or badly signed token.
    #[error("authentication required: {0}")]
    Unauthenticated(&'static str),
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Unknown id, or another user's resource.
    #[error("{what} not found")]
    NotFound {
        /// `order`, `product`, `route`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// Not enough units of a product.
    #[error("insufficient stock for product {product_id}")]
    InsufficientStock {
        /// The product.
        product_id: ProductId,
        /// Units asked for.
        requested: u32,
        /// Units available when checked.
        available: u32,
    },
    /// A product lock could not be taken within the retry budget.
    #[error("product {product_id} is busy; retry")]
    LockConflict {
        /// The contended product.
        product_id: ProductId,
    },
    /// The same key is being processed right now.
    #[error("a request with this idempotency key is in progress; retry")]
    IdempotencyInProgress,
    /// Field-level validation failures.
    #[error("the request is not valid")]
    Validation(FieldErrors),
    /// Same idempotency key, different payload.
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    /// Cancel of an order that left PENDING.
    #[error("order is {status} and can no longer be cancelled")]
    NotCancellable {
        /// Its current status.
        status: OrderStatus,
    },
    /// Over the per-minute budget.
    #[error("too many requests")]
    RateLimited {
        /// Seconds until the next window.
        retry_after_secs: u64,
    },
    /// A backing service failed; nothing was half-written.
    #[error("a backing service is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidCursor => ApiError::Validation(FieldErrors::single(
                "cursor",
                "is not a cursor this API handed out",
            )),
            other => ApiError::Unavailable(Box::new(other)),
        }
    }
}

impl From<PlaceOrderError> for ApiError {
    fn from(error: PlaceOrderError) -> Self {
        match error {
            PlaceOrderError::Store(e) => e.into(),
            other => ApiError::Unavailable(Box::new(other)),
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        ApiError::Validation(errors)
    }
}

impl ApiError {
    /// Status and `error_code`.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Malformed(_) => (StatusCode::BAD_REQUEST, "MALFORMED_REQUEST"),
            Self::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            Self::NotFound { .. } => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Self::InsufficientStock { .. } => (StatusCode::CONFLICT, "INSUFFICIENT_STOCK"),
            Self::LockConflict { .. } => (StatusCode::CONFLICT, "LOCK_CONFLICT"),
            Self::IdempotencyInProgress => (StatusCode::CONFLICT, "IDEMPOTENCY_IN_PROGRESS"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            Self::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED")
            }
            Self::NotCancellable { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "ORDER_NOT_CANCELLABLE")
            }
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::NotFound { what, id } => json!({ "resource": what, "id": id }),
            Self::InsufficientStock {
                product_id,
                requested,
                available,
            } => {
                json!({ "product_id": product_id, "requested": requested, "available": available })
            }
            Self::LockConflict { product_id } => json!({ "product_id": product_id }),
            Self::Validation(errors) => json!(errors),
            Self::NotCancellable { status } => json!({ "status": status }),
            Self::RateLimited { retry_after_secs } => {
                json!({ "retry_after_seconds": retry_after_secs })
            }
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

    /// The JSON error response.
    pub fn into_response(self) -> Response<Body> {
        let (status, code) = self.status_and_code();
        let body =
            json!({ "message": self.to_string(), "error_code": code, "details": self.details() });
        let mut response = super::response::json(status, &body);
        if let Self::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(retry_after_secs),
            );
        }
        response
    }
}
