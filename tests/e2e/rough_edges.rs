//! Rough edges reported by users, through the real stack: ids that cannot exist, tampered
//! cursors, money as written, exact page boundaries, text that must be refused, and a property
//! test feeding arbitrary ids and cursors to every route that takes one (never a 5xx).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Reply, TestStack, spawn};

/// Every byte but the unreserved ones as `%XX`, so any string travels as one path segment.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn assert_refused(reply: &Reply, status: StatusCode, code: &str, what: &str) {
    assert_eq!(
        (reply.status, reply.code()),
        (status, code),
        "{what}: {}",
        reply.body
    );
}

/// A validation error that names `field` in its details.
fn assert_invalid(reply: &Reply, field: &str, what: &str) {
    assert_refused(
        reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_ERROR",
        what,
    );
    assert!(
        reply.body["details"][field].is_array(),
        "{what}: details name {field}: {}",
        reply.body
    );
}

/// A request to every route that takes an id in its path, with `id` there: as alice, or as the
/// admin where only an admin may ask (`update` is the PUT's body).
fn id_routes<'t>(
    id: &str,
    alice: &'t String,
    admin: &'t String,
    update: Value,
) -> [(&'static str, String, Option<&'t String>, Option<Value>); 6] {
    [
        ("GET", format!("/products/{id}"), None, None),
        ("PUT", format!("/products/{id}"), Some(admin), Some(update)),
        ("DELETE", format!("/products/{id}"), Some(admin), None),
        ("GET", format!("/orders/{id}"), Some(alice), None),
        ("POST", format!("/orders/{id}/cancel"), Some(alice), None),
        ("GET", format!("/holds/{id}"), Some(alice), None),
    ]
}

/// `POST /orders` as `token` with `key` in the `Idempotency-Key` header and `body` as given.
async fn order_with_key_header(stack: &TestStack, token: &str, key: &str, body: Value) -> Reply {
    let url = stack.stack.http_url();
    stack
        .reply(
            stack
                .client
                .post(format!("{url}/orders"))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&body),
        )
        .await
}

/// A product as served.
async fn product(stack: &TestStack, id: &str) -> Value {
    let reply = stack
        .send("GET", &format!("/products/{id}"), None, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["data"].clone()
}

async fn post_product_raw(stack: &TestStack, body: String) -> Reply {
    stack
        .reply(
            stack
                .client
                .post(format!("{}/products", stack.stack.http_url()))
                .bearer_auth(stack.admin_token())
                .header("content-type", "application/json")
                .body(body),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_cannot_exist_are_404_on_every_route_and_change_nothing() {
    let stack = spawn(true).await;
    let p = stack.product("3.00", 5).await;
    let placed = stack.order("alice", "k1", &[(p.as_str(), 2)]).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order_id = placed.body["data"]["id"].as_str().unwrap().to_owned();
    let alice = stack.token("alice");
    let admin = stack.admin_token();
    let product_before = product(&stack, &p).await;

    // 2049 characters is past DynamoDB's 2,048-byte key limit (it answered 503 before); 129 is
    // past ours; a newline and a bidi override are not printable.
    for id in [
        "x".repeat(2049),
        "é".repeat(1500),
        "x".repeat(129),
        "a\nb".to_owned(),
        "a\u{202E}b".to_owned(),
    ] {
        let id = percent_encode(&id);
        let cases = id_routes(&id, &alice, &admin, json!({"stock": 1000}));
        for (method, path, token, body) in cases {
            let reply = stack
                .send(method, &path, token.map(String::as_str), body)
                .await;
            let what = format!("{method} {}", &path[..path.len().min(40)]);
            assert_refused(&reply, StatusCode::NOT_FOUND, "NOT_FOUND", &what);
            let echoed = reply.body["details"]["id"].as_str().unwrap_or_default();
            assert!(
                echoed.chars().count() <= 129,
                "{what}: the echoed id is cut"
            );
        }
    }

    assert_eq!(product(&stack, &p).await, product_before);
    let order = stack
        .send("GET", &format!("/orders/{order_id}"), Some(&alice), None)
        .await;
    assert_eq!(order.body["data"]["status"], "PENDING");
    assert_eq!(stack.product_ids(50).await, vec![p]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_cursors_are_422_on_cursor_before_any_query() {
    let stack = spawn(true).await;
    let p = stack.product("1.00", 50).await;
    stack.product("1.00", 50).await;
    for i in 0..3 {
        let reply = stack
            .order("alice", &format!("k{i}"), &[(p.as_str(), 1)])
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let alice = stack.token("alice");
    let encode = |json: &Value| URL_SAFE_NO_PAD.encode(json.to_string());

    // Products: a reported cursor ({"id":{"N":"1"}}) and other keys DynamoDB would refuse.
    let long = "x".repeat(3000);
    for cursor in [
        "eyJpZCI6eyJOIjoiMSJ9fQ".to_owned(),
        encode(&json!({"id": {"S": long}})),
        encode(&json!({"id": {"S": ""}})),
        encode(&json!({"id": {"B": "AAAA"}})),
        encode(&json!({"id": {"S": "p"}, "stock": {"N": "1"}})),
        encode(&json!({"id": {"S": "a\nb"}})),
        "A".repeat(5000),
    ] {
        let reply = stack
            .send("GET", &format!("/products?cursor={cursor}"), None, None)
            .await;
        assert_invalid(
            &reply,
            "cursor",
            &format!("products cursor {}", &cursor[..cursor.len().min(40)]),
        );
    }

    // Orders: alice's own cursor, edited.
    let first = stack
        .send("GET", "/orders?limit=1", Some(&alice), None)
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let key: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(cursor).unwrap()).unwrap();
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut key = key.clone();
        edit(&mut key);
        encode(&key)
    };
    let user_created = key["user_created"]["S"].as_str().unwrap().to_owned();
    let cases = [
        (
            "user_created as a number",
            edited(&|k| k["user_created"] = json!({"N": "1"})),
        ),
        ("id as a number", edited(&|k| k["id"] = json!({"N": "1"}))),
        (
            "another user",
            edited(&|k| k["user_id"] = json!({"S": "bob"})),
        ),
        (
            "an id of 3000 chars",
            edited(&|k| k["id"] = json!({"S": long})),
        ),
        (
            "a sort key of 3000 chars",
            edited(&|k| k["user_created"] = json!({"S": format!("{user_created}{long}")})),
        ),
        (
            "a sort key that is not a time",
            edited(&|k| k["user_created"] = json!({"S": "x#y"})),
        ),
        (
            "no id",
            edited(&|k| {
                k.as_object_mut().unwrap().remove("id");
            }),
        ),
    ];
    for (what, cursor) in cases {
        let reply = stack
            .send(
                "GET",
                &format!("/orders?cursor={cursor}"),
                Some(&alice),
                None,
            )
            .await;
        assert_invalid(&reply, "cursor", what);
    }
    // The untouched cursor still works.
    let next = stack
        .send(
            "GET",
            &format!("/orders?limit=1&cursor={cursor}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
    assert_eq!(next.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_are_taken_exactly_as_written_or_refused() {
    let stack = spawn(true).await;
    let p = stack.product("4.00", 3).await;
    let before = product(&stack, &p).await;
    let body = |price: &str, stock: &str| {
        format!(r#"{{"name": "Lamp", "price": {price}, "stock": {stock}}}"#)
    };

    for (price, stock, field, out_of_range) in [
        ("1E2", "1", "price", false),
        ("12.345e1", "1", "price", false),
        ("1e0", "1", "price", false),
        (r#""1.990""#, "1", "price", false),
        (r#"" 2.00 ""#, "1", "price", false),
        (r#""2.00\n""#, "1", "price", false),
        ("1.999", "1", "price", false),
        (r#""1e3""#, "1", "price", false),
        ("-1", "1", "price", true),
        ("1e300", "1", "price", true),
        ("100000000", "1", "price", true),
        (r#""123456789012345678901234567890""#, "1", "price", true),
        ("1.00", "1e30", "stock", true),
        ("1.00", "4294967296", "stock", true),
        ("1.00", "-1", "stock", true),
        ("1.00", "1.5", "stock", false),
    ] {
        let reply = post_product_raw(&stack, body(price, stock)).await;
        let what = format!("price {price}, stock {stock}");
        assert_invalid(&reply, field, &what);
        let message = reply.body["details"][field][0].as_str().unwrap();
        assert_eq!(
            message.contains("out of range"),
            out_of_range,
            "{what}: {message}"
        );
    }
    // An order line's quantity too.
    let reply = stack
        .send(
            "POST",
            "/orders",
            Some(&stack.token("alice")),
            Some(json!({"idempotency_key": "q", "items": [{"product_id": p, "quantity": 1e30}]})),
        )
        .await;
    assert_invalid(&reply, "items[0].quantity", "quantity 1e30");
    assert!(
        reply.body["details"]["items[0].quantity"][0]
            .as_str()
            .unwrap()
            .contains("out of range")
    );
    assert_eq!(
        stack.product_ids(50).await,
        vec![p.clone()],
        "nothing created"
    );
    assert_eq!(product(&stack, &p).await, before, "nothing changed");

    // The accepted forms: a decimal string or a plain JSON number, up to two places.
    for (price, shown) in [
        ("9.99", "9.99"),
        (r#""12""#, "12.00"),
        ("0.5", "0.50"),
        (r#""07.10""#, "7.10"),
    ] {
        let reply = post_product_raw(&stack, body(price, "1")).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{price}: {}", reply.body);
        assert_eq!(reply.body["data"]["price"], shown, "{price}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_ends_at_the_last_item_has_no_next_cursor() {
    let stack = spawn(true).await;
    let mut products = vec![];
    for _ in 0..4 {
        products.push(stack.product("1.00", 100).await);
    }
    let alice = stack.token("alice");
    for i in 0..4 {
        let reply = stack
            .order("alice", &format!("k{i}"), &[(products[0].as_str(), 1)])
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }

    for listing in ["/products?", "/orders?", "/orders?status=PENDING&"] {
        let token = listing.starts_with("/orders").then_some(alice.as_str());
        // Exactly the whole listing on one page.
        let whole = stack
            .send("GET", &format!("{listing}limit=4"), token, None)
            .await;
        assert_eq!(whole.status, StatusCode::OK, "{}", whole.body);
        assert_eq!(whole.body["data"].as_array().unwrap().len(), 4, "{listing}");
        assert_eq!(whole.body["next_cursor"], Value::Null, "{listing} limit=4");
        // Two pages of two: the second ends at the last item.
        let first = stack
            .send("GET", &format!("{listing}limit=2"), token, None)
            .await;
        let cursor = first.body["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{listing}: a second page follows"));
        let second = stack
            .send(
                "GET",
                &format!("{listing}limit=2&cursor={cursor}"),
                token,
                None,
            )
            .await;
        assert_eq!(second.status, StatusCode::OK, "{}", second.body);
        assert_eq!(
            second.body["data"].as_array().unwrap().len(),
            2,
            "{listing}"
        );
        assert_eq!(
            second.body["next_cursor"],
            Value::Null,
            "{listing}: nothing follows"
        );
        let mut seen: Vec<&Value> = first.body["data"].as_array().unwrap().iter().collect();
        seen.extend(second.body["data"].as_array().unwrap());
        let mut ids: Vec<&str> = seen.iter().map(|v| v["id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4, "{listing}: no item twice, none skipped");
        // A page larger than the listing.
        let larger = stack
            .send("GET", &format!("{listing}limit=5"), token, None)
            .await;
        assert_eq!(larger.body["data"].as_array().unwrap().len(), 4);
        assert_eq!(larger.body["next_cursor"], Value::Null);
    }
    // A filter that matches nothing past the boundary: no cursor either.
    let none = stack
        .send("GET", "/orders?status=PAID&limit=2", Some(&alice), None)
        .await;
    assert_eq!(none.body["data"], json!([]));
    assert_eq!(none.body["next_cursor"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blank_keys_invisible_characters_and_unknown_fields_are_refused() {
    let stack = spawn(true).await;
    let p = stack.product("2.00", 10).await;
    let alice = stack.token("alice");
    let admin = stack.admin_token();

    for key in [
        "   ",
        "\t",
        "key\nline",
        "key\u{202E}yek",
        "key\u{200B}",
        "\u{FEFF}key",
    ] {
        let reply = stack.order("alice", key, &[(p.as_str(), 1)]).await;
        assert_invalid(&reply, "idempotency_key", &format!("body key {key:?}"));
    }
    // A header can only carry a blank key (HTTP forbids control characters in headers).
    let reply = order_with_key_header(
        &stack,
        &alice,
        "   ",
        json!({"items": [{"product_id": p, "quantity": 1}]}),
    )
    .await;
    assert_invalid(&reply, "idempotency_key", "blank header key");

    for name in [
        "Lamp\nShade",
        "Lamp\u{202E}pmaL",
        "\u{200B}",
        "Lamp\u{2066}",
        "Tab\tLamp",
    ] {
        let reply = stack
            .send(
                "POST",
                "/products",
                Some(&admin),
                Some(json!({"name": name, "price": "1.00", "stock": 1})),
            )
            .await;
        assert_invalid(&reply, "name", &format!("name {name:?}"));
        let reply = stack
            .send(
                "PUT",
                &format!("/products/{p}"),
                Some(&admin),
                Some(json!({"name": name})),
            )
            .await;
        assert_invalid(&reply, "name", &format!("renamed to {name:?}"));
    }
    for (field, value) in [
        ("id", json!("my-own-id")),
        ("created_at", json!("2020-01-01")),
        ("stock_shards", json!(65)),
        ("stock_shards", json!(0)),
    ] {
        let mut body = json!({"name": "Lamp", "price": "1.00", "stock": 1});
        body[field] = value.clone();
        let reply = stack
            .send("POST", "/products", Some(&admin), Some(body))
            .await;
        assert_invalid(&reply, field, &format!("unknown field {field}"));
        let reply = stack
            .send(
                "PUT",
                &format!("/products/{p}"),
                Some(&admin),
                Some(json!({"stock": 99, field: value})),
            )
            .await;
        assert_invalid(
            &reply,
            field,
            &format!("unknown field {field} in an update"),
        );
    }
    assert_eq!(
        stack.product_ids(50).await,
        vec![p.clone()],
        "nothing created"
    );
    assert_eq!(stack.stock(&p).await, 10, "nothing changed");
    assert_eq!(stack.all_orders("alice").await.len(), 0, "no order placed");

    // `"idempotency_key": null` with the header: the header's key is used.
    let reply = order_with_key_header(
        &stack,
        &alice,
        "from-the-header",
        json!({"idempotency_key": null, "items": [{"product_id": p, "quantity": 1}]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["data"]["idempotency_key"], "from-the-header");
    // Without the header, null is a missing key.
    let reply = stack
        .send(
            "POST",
            "/orders",
            Some(&alice),
            Some(json!({"idempotency_key": null, "items": [{"product_id": p, "quantity": 1}]})),
        )
        .await;
    assert_invalid(&reply, "idempotency_key", "null key, no header");
    // A key with inner and surrounding spaces is a key like any other.
    let reply = stack
        .order("alice", " spaced key ", &[(p.as_str(), 1)])
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(stack.stock(&p).await, 8);
}

/// Arbitrary text, short and long, with every kind of character (control, format, surrogate-free
/// Unicode), or a base64 cursor wrapping JSON that looks like a key.
fn arbitrary_text() -> impl Strategy<Value = String> {
    let chars = |max| proptest::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter);
    let key_like = (
        prop_oneof![Just("S"), Just("N"), Just("B"), Just("BOOL"), Just("NULL")],
        chars(64),
        prop_oneof![Just("id"), Just("user_id"), Just("user_created")],
    )
        .prop_map(|(kind, value, name)| {
            URL_SAFE_NO_PAD.encode(json!({ name: { kind: value } }).to_string())
        });
    prop_oneof![
        4 => chars(40),
        1 => chars(3000),
        2 => any::<String>(),
        2 => chars(200).prop_map(|text| URL_SAFE_NO_PAD.encode(text)),
        2 => key_like,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arbitrary_ids_and_cursors_never_answer_5xx() {
    let stack = Arc::new(spawn(true).await);
    let p = stack.product("1.00", 5).await;
    let stock_before = stack.stock(&p).await;
    let runtime = tokio::runtime::Handle::current();
    let checked = Arc::clone(&stack);
    // proptest's runner is synchronous: it runs on a blocking thread and drives each case's
    // requests on the test's runtime.
    let result = tokio::task::spawn_blocking(move || {
        let stack = checked;
        let alice = stack.token("alice");
        let admin = stack.admin_token();
        let mut runner = TestRunner::new(Config {
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        });
        runner.run(&arbitrary_text(), |text| {
            runtime.block_on(async {
                let id = percent_encode(&text);
                let cursor = percent_encode(&text);
                let cursors = [
                    ("GET", format!("/products?cursor={cursor}"), None, None),
                    (
                        "GET",
                        format!("/orders?cursor={cursor}"),
                        Some(&alice),
                        None,
                    ),
                ];
                let requests = id_routes(&id, &alice, &admin, json!({"name": "x"}))
                    .into_iter()
                    .chain(cursors);
                for (method, path, token, body) in requests {
                    let reply = stack
                        .send(method, &path, token.map(String::as_str), body)
                        .await;
                    if reply.status.is_server_error() {
                        let shown: String = path.chars().take(300).collect();
                        return Err(TestCaseError::fail(format!(
                            "{method} {shown} ({} chars of input) answered {}: {}",
                            text.chars().count(),
                            reply.status,
                            reply.body
                        )));
                    }
                }
                Ok(())
            })
        })
    })
    .await
    .unwrap();
    if let Err(failure) = result {
        panic!("{failure}");
    }
    assert_eq!(stack.stock(&p).await, stock_before);
    assert_eq!(stack.product_ids(50).await, vec![p]);
}
