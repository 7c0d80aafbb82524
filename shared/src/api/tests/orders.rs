//! Reading, listing and cancelling orders.

use super::*;

#[tokio::test]
async fn another_users_order_is_404_but_admins_see_it() {
    let app = app();
    let id = &placed(&app, "alice", "k", &[("cheap", 1)]).await;
    let (status, body, _) = call(Endpoint::GetOrder)
        .user("mallory")
        .id(id)
        .send(&app)
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (status, _, _) = call(Endpoint::CancelOrder)
        .user("mallory")
        .id(id)
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(Endpoint::GetOrder)
            .user("alice")
            .id(id)
            .send(&app)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(Endpoint::GetOrder).admin().id(id).send(&app).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cancel_restores_stock_exactly_once_and_repeats_with_200() {
    let app = app();
    let id = &placed(&app, "alice", "k", &[("dear", 2)]).await;
    for _ in 0..2 {
        let (status, body, _) = call(Endpoint::CancelOrder)
            .user("alice")
            .id(id)
            .send(&app)
            .await;
        assert_eq!(
            (status, body["data"]["status"].as_str()),
            (StatusCode::OK, Some("CANCELLED"))
        );
        assert!(body["data"]["cancelled_at"].is_string());
    }
    assert_eq!(app.store.stock("dear"), Some(5));
    let events = app.notifier.events();
    assert_eq!(
        events.len(),
        1,
        "only the cancel that changed the order announces it"
    );
    assert_eq!(
        (events[0].0.as_str(), events[0].1.event),
        ("alice", crate::messages::OrderEventKind::OrderCancelled)
    );
}

#[tokio::test]
async fn cancel_after_processing_is_422_and_keeps_stock() {
    let app = app();
    let id = &placed(&app, "alice", "k", &[("dear", 2)]).await;
    app.store
        .set_status(&OrderId::new(id), OrderStatus::Processing);
    let (status, body, _) = call(Endpoint::CancelOrder)
        .user("alice")
        .id(id)
        .send(&app)
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("ORDER_NOT_CANCELLABLE")
        )
    );
    assert_eq!(body["details"]["status"], "PROCESSING");
    assert_eq!(app.store.stock("dear"), Some(3));
}

#[tokio::test]
async fn list_orders_pages_newest_first_and_filters_by_status() {
    let app = app();
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(placed(&app, "alice", &format!("k{i}"), &[("cheap", 1)]).await);
        app.clock.advance(Duration::from_secs(1));
    }
    call(Endpoint::CancelOrder)
        .user("alice")
        .id(&ids[1])
        .send(&app)
        .await;
    call(Endpoint::CreateOrder)
        .user("bob")
        .json(order_body("k0", &[("cheap", 1)]))
        .send(&app)
        .await;

    let (_, first, _) = call(Endpoint::ListOrders)
        .user("alice")
        .query("limit", "2")
        .send(&app)
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second, _) = call(Endpoint::ListOrders)
        .user("alice")
        .query("limit", "3")
        .query("cursor", cursor)
        .send(&app)
        .await;
    let seen: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(seen, newest_first);
    assert!(second["next_cursor"].is_null());

    let (_, cancelled, _) = call(Endpoint::ListOrders)
        .user("alice")
        .query("status", "CANCELLED")
        .send(&app)
        .await;
    assert_eq!(cancelled["data"].as_array().unwrap().len(), 1);
    assert_eq!(cancelled["data"][0]["id"], ids[1].as_str());
}

#[tokio::test]
async fn list_orders_rejects_bad_parameters_and_foreign_user_ids() {
    let app = app();
    for (name, value) in [
        ("limit", "0"),
        ("limit", "51"),
        ("limit", "x"),
        ("status", "SHIPPED"),
        ("cursor", "bogus"),
    ] {
        let (status, body, _) = call(Endpoint::ListOrders)
            .user("alice")
            .query(name, value)
            .send(&app)
            .await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("VALIDATION_ERROR")),
            "{name}={value}"
        );
    }
    assert_eq!(
        call(Endpoint::ListOrders)
            .user("alice")
            .query("user_id", "bob")
            .send(&app)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Endpoint::ListOrders)
            .admin()
            .query("user_id", "bob")
            .send(&app)
            .await
            .0,
        StatusCode::OK
    );
}
