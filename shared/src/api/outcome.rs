//! Use-case outcomes to HTTP: the one table of which success answers with which status and body.
//! Refusals and faults go through [`super::ApiError`]'s table.

use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;

use crate::application::{Cancelled, Placed, WebhookAnswer};
use crate::domain::Hold;

use super::response;

/// A use case's outcome as an HTTP response.
pub(crate) trait IntoHttp {
    /// Status and body.
    fn into_http(self) -> Response<Body>;
}

impl IntoHttp for Placed {
    fn into_http(self) -> Response<Body> {
        match self {
            Placed::Created(order) => response::data(StatusCode::CREATED, &order),
            Placed::Replayed(order) => response::data(StatusCode::OK, &order),
        }
    }
}

impl IntoHttp for Cancelled {
    fn into_http(self) -> Response<Body> {
        match self {
            Cancelled::Now(order) | Cancelled::Already(order) => {
                response::data(StatusCode::OK, &order)
            }
        }
    }
}

/// A hold just placed.
pub(crate) struct NewHold(pub Hold);

impl IntoHttp for NewHold {
    fn into_http(self) -> Response<Body> {
        response::data(StatusCode::CREATED, &self.0)
    }
}

impl IntoHttp for WebhookAnswer {
    /// 200 with the order's status, or 202 when the order did not exist yet; a replay builds the
    /// same bytes from the same stored answer.
    fn into_http(self) -> Response<Body> {
        let status = match self.order_status {
            Some(_) => StatusCode::OK,
            None => StatusCode::ACCEPTED,
        };
        response::json(
            status,
            &json!({ "data": { "order_id": self.order_id, "order_status": self.order_status } }),
        )
    }
}
