//! Product management and reads.

use super::*;

#[tokio::test]
async fn products_are_managed_by_admins_only() {
    let app = app();
    let new = json!({"name": "Kettle", "price": "39.00", "stock": 4});
    let (status, body, _) = call(Endpoint::CreateProduct)
        .user("alice")
        .json(new.clone())
        .send(&app)
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::FORBIDDEN, Some("FORBIDDEN"))
    );
    assert_eq!(
        call(Endpoint::CreateProduct)
            .json(new.clone())
            .send(&app)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let (status, created, _) = call(Endpoint::CreateProduct)
        .admin()
        .json(new)
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["data"]["id"].as_str().unwrap();
    let (status, updated, _) = call(Endpoint::UpdateProduct)
        .admin()
        .id(id)
        .json(json!({"price": "35.50"}))
        .send(&app)
        .await;
    assert_eq!(
        (
            status,
            updated["data"]["price"].as_str(),
            updated["data"]["stock"].as_u64()
        ),
        (StatusCode::OK, Some("35.50"), Some(4))
    );
    let (status, body, _) = call(Endpoint::UpdateProduct)
        .admin()
        .id(id)
        .json(json!({"price": "1.999"}))
        .send(&app)
        .await;
    assert_eq!(
        (status, body["details"]["price"].is_array()),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
    assert_eq!(
        call(Endpoint::DeleteProduct)
            .admin()
            .id(id)
            .send(&app)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Endpoint::GetProduct).id(id).send(&app).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(Endpoint::DeleteProduct)
            .admin()
            .id(id)
            .send(&app)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn products_list_and_get_show_live_stock_to_anyone() {
    let app = app();
    call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k", &[("dear", 2)]))
        .send(&app)
        .await;
    let (status, body, _) = call(Endpoint::GetProduct).id("dear").send(&app).await;
    assert_eq!(
        (status, body["data"]["stock"].as_u64()),
        (StatusCode::OK, Some(3))
    );
    let (_, page1, _) = call(Endpoint::ListProducts)
        .query("limit", "2")
        .send(&app)
        .await;
    let (_, page2, _) = call(Endpoint::ListProducts)
        .query("cursor", page1["next_cursor"].as_str().unwrap())
        .send(&app)
        .await;
    assert_eq!(
        page1["data"].as_array().unwrap().len() + page2["data"].as_array().unwrap().len(),
        3
    );
}
