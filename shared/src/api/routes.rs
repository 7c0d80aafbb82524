//! One type per route: what each endpoint does once the shared pipeline ([`super::handle_route`])
//! has admitted the request. A Lambda binary names its one route type, so it compiles only that
//! route's code; the local gateway's [`super::handle`] names them all.

use std::future::Future;

use lambda_http::{Body, Request, Response};

use crate::app::{App, Store};
use crate::application::AppError;
use crate::auth::{AuthError, Caller};
use crate::function::Endpoint;
use crate::ports::{Clock, Notifier, OrderQueue, Reachable};

use super::{ApiError, holds, orders, products, request, system, webhook};

/// An admitted request: the request, its trace id and the result of checking its bearer token.
pub struct Call<'r> {
    /// The request.
    pub request: &'r Request,
    /// Its trace id.
    pub trace_id: &'r str,
    pub(super) caller: Result<Caller, AuthError>,
}

impl Call<'_> {
    /// The caller, or 401 saying what was wrong with the token.
    pub fn user(&self) -> Result<&Caller, ApiError> {
        request::require_user(&self.caller)
    }

    /// An admin caller, or 401/403.
    pub fn admin(&self) -> Result<&Caller, ApiError> {
        request::require_admin(&self.caller)
    }
}

/// One HTTP route: its endpoint, whether it skips the bearer token and the rate limit, and what
/// it does with an admitted request (parse, one use case or read, the outcome to a response).
pub trait Route {
    /// The endpoint it serves.
    const ENDPOINT: Endpoint;
    /// No bearer token and no rate limit (health, the signed payment webhook).
    const PUBLIC: bool = false;

    /// Serves an admitted request.
    fn serve<S, Q, N, C>(
        app: &App<S, Q, N, C>,
        call: &Call<'_>,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send
    where
        S: Store,
        Q: OrderQueue + Reachable,
        N: Notifier,
        C: Clock;
}

/// Declares the route type of endpoint `$name` (the [`Endpoint`] variant of that name: its route key
/// is written there, once).
macro_rules! route {
    ($name:ident $(, public = $public:literal)?, |$app:ident, $call:ident| $body:expr) => {
        #[doc = concat!("The route of [`Endpoint::", stringify!($name), "`].")]
        pub struct $name;

        impl Route for $name {
            const ENDPOINT: Endpoint = Endpoint::$name;
            $(const PUBLIC: bool = $public;)?

            #[allow(clippy::manual_async_fn)]
            fn serve<S, Q, N, C>(
                $app: &App<S, Q, N, C>,
                $call: &Call<'_>,
            ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send
            where
                S: Store,
                Q: OrderQueue + Reachable,
                N: Notifier,
                C: Clock,
            {
                async move { $body }
            }
        }
    };
}

route! {
    Health, public = true,
    |app, _call| Ok(system::health(&app.store, &app.queue).await)
}
route! {
    ListProducts,
    |app, call| products::list(&app.store, call.request).await
}
route! {
    GetProduct,
    |app, call| products::get(&app.store, call.request).await
}
route! {
    CreateProduct,
    |app, call| products::create(&app.store, &app.clock, call.admin()?, call.request).await
}
route! {
    UpdateProduct,
    |app, call| products::update(&app.store, &app.clock, call.admin()?, call.request).await
}
route! {
    DeleteProduct,
    |app, call| products::delete(&app.store, &app.clock, call.admin()?, call.request).await
}
route! {
    CreateOrder,
    |app, call| orders::create(app, call.user()?, call.request, call.trace_id).await
}
route! {
    GetOrder,
    |app, call| orders::get(&app.store, call.user()?, call.request).await
}
route! {
    ListOrders,
    |app, call| orders::list(&app.store, call.user()?, call.request).await
}
route! {
    CancelOrder,
    |app, call| {
        let caller = call.user()?;
        orders::cancel(app.cancel_order(), caller, call.request, call.trace_id).await
    }
}
route! {
    CreateHold,
    |app, call| {
        holds::create(app.place_hold(), call.user()?, call.request).await
    }
}
route! {
    GetHold,
    |app, call| holds::get(&app.store, call.user()?, call.request).await
}
route! {
    PaymentWebhook, public = true,
    |app, call| {
        let secret = app.webhook_secret.as_deref().ok_or_else(|| {
            ApiError::App(AppError::internal("the webhook secret is not configured".into()))
        })?;
        webhook::receive(app.receive_payment_webhook(), secret, call.request, call.trace_id).await
    }
}
