//! Products, listings, health and the gateway's own behaviour through the real stack.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::spawn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_ok_with_both_services_and_echoes_the_trace_id() {
    let stack = spawn(true).await;
    let reply = stack
        .reply(
            stack
                .client
                .get(format!("{}/health", stack.stack.http_url()))
                .header("x-trace-id", "trace-e2e-1"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"status": "ok", "services": {"dynamodb": "ok", "sqs": "ok"}})
    );
    assert_eq!(reply.headers["x-trace-id"], "trace-e2e-1");
    let fresh = stack.send("GET", "/health", None, None).await;
    let fresh = fresh.headers["x-trace-id"].to_str().unwrap();
    assert!(
        shared::xray::TraceHeader::parse(&format!("Root={fresh}")).is_some(),
        "the root of the X-Ray trace the gateway started when the client sends none: {fresh}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_products_and_everyone_reads_live_stock() {
    let stack = spawn(true).await;
    let admin = stack.admin_token();
    let id = stack.product("12.00", 5).await;

    let updated = stack
        .send(
            "PUT",
            &format!("/products/{id}"),
            Some(&admin),
            Some(json!({"name": "Renamed", "stock": 9})),
        )
        .await;
    assert_eq!(
        (
            updated.status,
            updated.body["data"]["name"].as_str(),
            updated.body["data"]["price"].as_str()
        ),
        (StatusCode::OK, Some("Renamed"), Some("12.00"))
    );
    stack.order("alice", "k", &[(id.as_str(), 4)]).await;
    assert_eq!(stack.stock(&id).await, 5);

    let mut ids = vec![id.clone()];
    for _ in 0..4 {
        ids.push(stack.product("1.00", 1).await);
    }
    let mut listed = stack.product_ids(2).await;
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);

    assert_eq!(
        stack
            .send("DELETE", &format!("/products/{id}"), Some(&admin), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        stack
            .send("GET", &format!("/products/{id}"), None, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let refused = stack.order("alice", "k2", &[(id.as_str(), 1)]).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_list_newest_first_with_status_filter_and_cursor() {
    let stack = spawn(true).await;
    let product = stack.product("1.00", 100).await;
    let mut ids = vec![];
    for i in 0..7 {
        let reply = stack
            .order("alice", &format!("k{i}"), &[(product.as_str(), 1)])
            .await;
        ids.push(reply.body["data"]["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    stack.order("bob", "k0", &[(product.as_str(), 1)]).await;
    let token = stack.token("alice");
    for id in [&ids[2], &ids[5]] {
        assert_eq!(
            stack
                .send("POST", &format!("/orders/{id}/cancel"), Some(&token), None)
                .await
                .status,
            StatusCode::OK
        );
    }

    let mut seen = vec![];
    let mut path = "/orders?limit=3".to_owned();
    loop {
        let page = stack.send("GET", &path, Some(&token), None).await;
        assert!(page.body["data"].as_array().unwrap().len() <= 3);
        seen.extend(
            page.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/orders?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let cancelled = stack
        .send(
            "GET",
            "/orders?status=CANCELLED&limit=50",
            Some(&token),
            None,
        )
        .await;
    let cancelled: Vec<&str> = cancelled.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(cancelled, vec![ids[5].as_str(), ids[2].as_str()]);

    let as_admin = stack
        .send(
            "GET",
            "/orders?user_id=bob",
            Some(&stack.admin_token()),
            None,
        )
        .await;
    assert_eq!(as_admin.body["data"].as_array().unwrap().len(), 1);
    let first_page = stack
        .send("GET", "/orders?limit=1", Some(&token), None)
        .await;
    let alices_cursor = first_page.body["next_cursor"].as_str().unwrap();
    let stolen = stack
        .send(
            "GET",
            &format!("/orders?cursor={alices_cursor}"),
            Some(&stack.token("bob")),
            None,
        )
        .await;
    assert_eq!(
        (stolen.status, stolen.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        "a cursor is bound to its user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_answer_like_api_gateway() {
    let stack = spawn(true).await;
    let reply = stack.send("GET", "/nowhere", None, None).await;
    assert_eq!(
        (reply.status, reply.body["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("Not Found"))
    );
    assert_eq!(
        stack.send("PATCH", "/orders", None, None).await.status,
        StatusCode::NOT_FOUND
    );
}
