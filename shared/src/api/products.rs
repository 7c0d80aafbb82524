//! Product endpoints: anyone reads (with live stock), admins create, update and delete.

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::domain::{NewProduct, ProductId, ProductPatch};
use crate::ports::{Clock, ProductCatalog};

use super::request::{json_body_as_written, page_limit, path_id, query_param};
use super::{ApiError, response};
use crate::auth::Caller;

fn not_found(id: &ProductId) -> ApiError {
    ApiError::NotFound {
        what: "product",
        id: id.to_string(),
    }
}

/// `GET /products`
pub(crate) async fn list(
    catalog: &impl ProductCatalog,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let page = catalog
        .list_products(page_limit(request)?, query_param(request, "cursor"))
        .await?;
    Ok(response::page(&page.items, page.next_cursor.as_deref()))
}

/// `GET /products/{id}`
pub(crate) async fn get(
    catalog: &impl ProductCatalog,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let id = path_id(request, "product", ProductId::parse)?;
    let product = catalog
        .get_product(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(response::data(StatusCode::OK, &product))
}

/// `POST /products`
pub(crate) async fn create(
    catalog: &impl ProductCatalog,
    clock: &impl Clock,
    _admin: &Caller,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let new = NewProduct::parse(&json_body_as_written(request)?)?;
    let product = catalog
        .create_product(ProductId::generate(), new, clock.now())
        .await?;
    tracing::info!(product_id = %product.id, "product created");
    Ok(response::data(StatusCode::CREATED, &product))
}

/// `PUT /products/{id}`
pub(crate) async fn update(
    catalog: &impl ProductCatalog,
    clock: &impl Clock,
    _admin: &Caller,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let id = path_id(request, "product", ProductId::parse)?;
    let patch = ProductPatch::parse(&json_body_as_written(request)?)?;
    let product = catalog
        .update_product(&id, &patch, clock.now())
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(response::data(StatusCode::OK, &product))
}

/// `DELETE /products/{id}`
pub(crate) async fn delete(
    catalog: &impl ProductCatalog,
    clock: &impl Clock,
    _admin: &Caller,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let id = path_id(request, "product", ProductId::parse)?;
    if catalog.delete_product(&id, clock.now()).await? {
        Ok(response::no_content())
    } else {
        Err(not_found(&id))
    }
}
