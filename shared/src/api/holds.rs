//! Hold endpoints: place one (a use case) and read one (owner or admin).

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::application::PlaceHold;
use crate::domain::{HoldId, HoldRequest};
use crate::ports::{Clock, HoldStore, ProductCatalog};

use super::outcome::{IntoHttp, NewHold};
use super::request::{invocation_budget, json_body, path_id};
use super::{ApiError, response};
use crate::auth::Caller;

/// `POST /holds`
pub(crate) async fn create<S: ProductCatalog + HoldStore>(
    place: PlaceHold<'_, S, impl Clock>,
    caller: &Caller,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let hold_request = HoldRequest::parse(&json_body(request)?)?;
    let place = PlaceHold {
        budget: invocation_budget(request),
        ..place
    };
    let hold = place.run(&caller.user_id, &hold_request).await?;
    Ok(NewHold(hold).into_http())
}

/// `GET /holds/{id}`: another user's hold is 404, so existence does not leak.
pub(crate) async fn get(
    holds: &impl HoldStore,
    caller: &Caller,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let id = path_id(request, "hold", HoldId::parse)?;
    match holds.get_hold(&id).await? {
        Some(hold) if caller.may_see(&hold.user_id) => Ok(response::data(StatusCode::OK, &hold)),
        _ => Err(ApiError::NotFound {
            what: "hold",
            id: id.to_string(),
        }),
    }
}
