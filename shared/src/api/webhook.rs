//! `POST /payments/webhook`: the signature over the raw body first (401 otherwise, before the body
//! is even parsed), then the notice to the use case. The signature may be made with the current
//! secret, or with the previous one during the overlap window after a rotation.

use lambda_http::{Body, Request, Response};

use crate::application::ReceivePaymentWebhook;
use crate::domain::webhook::{self, PaymentNotice, SIGNATURE_HEADER};
use crate::ports::{Clock, Notifier, OrderReader, OrderSettler, WebhookStore};
use crate::secrets::RotatingSecret;

use super::ApiError;
use super::outcome::IntoHttp;
use super::request::{body_bytes, header, json_body};

/// `POST /payments/webhook`, verified with one of the values `secret` accepts now (refreshed first
/// when its interval has passed).
pub(crate) async fn receive<S, N, C>(
    receive: ReceivePaymentWebhook<'_, S, N, C>,
    secret: &RotatingSecret,
    request: &Request,
    trace_id: &str,
) -> Result<Response<Body>, ApiError>
where
    S: OrderReader + OrderSettler + WebhookStore,
    N: Notifier,
    C: Clock,
{
    let now = receive.clock.now();
    secret.refresh_if_due(now).await;
    let signature = header(request, SIGNATURE_HEADER);
    let body = body_bytes(request);
    // Never empty: the current value comes first, so the error kept is the last value's.
    let mut verified = Ok(());
    for value in secret.accepted(now) {
        verified = webhook::verify(value.as_bytes(), signature, body, now);
        if verified.is_ok() {
            break;
        }
    }
    verified.map_err(|error| {
        tracing::warn!(%error, "webhook refused");
        ApiError::Unauthenticated {
            reason: "missing, invalid or stale webhook signature",
            challenge: None,
        }
    })?;
    let notice = PaymentNotice::parse(&json_body(request)?)?;
    Ok(receive.run(&notice, trace_id).await?.into_http())
}
