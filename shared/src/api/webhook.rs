//! `POST /payments/webhook`: the signature over the raw body first (401 otherwise, before the body
//! is even parsed), then the notice to the use case.

use lambda_http::{Body, Request, Response};

use crate::application::ReceivePaymentWebhook;
use crate::domain::webhook::{self, PaymentNotice, SIGNATURE_HEADER};
use crate::ports::{Clock, Notifier, OrderReader, OrderSettler, WebhookStore};

use super::ApiError;
use super::outcome::IntoHttp;
use super::request::{body_bytes, header, json_body};

/// `POST /payments/webhook`, verified with `secret` (`WEBHOOK_SECRET`).
pub(crate) async fn receive<S, N, C>(
    receive: ReceivePaymentWebhook<'_, S, N, C>,
    secret: &str,
    request: &Request,
    trace_id: &str,
) -> Result<Response<Body>, ApiError>
where
    S: OrderReader + OrderSettler + WebhookStore,
    N: Notifier,
    C: Clock,
{
    webhook::verify(
        secret.as_bytes(),
        header(request, SIGNATURE_HEADER),
        body_bytes(request),
        receive.clock.now(),
    )
    .map_err(|error| {
        tracing::warn!(%error, "webhook refused");
        ApiError::Unauthenticated {
            reason: "missing, invalid or stale webhook signature",
            challenge: None,
        }
    })?;
    let notice = PaymentNotice::parse(&json_body(request)?)?;
    Ok(receive.run(&notice, trace_id).await?.into_http())
}
