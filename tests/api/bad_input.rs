//! Malformed, oversized, missing and hostile input: the SPEC's JSON error, and Redis untouched.

use crate::helpers::{spawn_app, TestRedis};

const PURCHASE: &str = "/api/sale/purchase";
const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn invalid_user_ids_are_invalid_request_and_change_nothing() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let digest = redis.digest().await;
    let too_long = format!(r#"{{"userId":"{}"}}"#, "u".repeat(129));

    for body in [
        r#"{}"#,
        r#"{"userId":""}"#,
        r#"{"userId":null}"#,
        r#"{"userId":42}"#,
        r#"{"userId":["a"]}"#,
        r#"{"user_id":"a"}"#,
        r#"{"userId":"a b"}"#,
        r#"{"userId":"a{b}"}"#,
        r#"{"userId":"x\u0000y"}"#,
        r#"{"userId":"é"}"#,
        r#"{"userId":"a'; DROP TABLE"}"#,
        r#"{"userId":"x\"]) redis.call('FLUSHALL') --"}"#,
        r#"{"userId":"a","userId":"b"}"#,
        too_long.as_str(),
    ] {
        let reply = app.post_raw(PURCHASE, JSON, body.to_owned()).await;
        reply.assert_error(400, "INVALID_REQUEST");
    }
    assert_eq!(redis.digest().await, digest, "Redis untouched");
}

#[tokio::test]
async fn malformed_json_is_invalid_request() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let digest = redis.digest().await;

    for body in [
        "",
        "{",
        "not json",
        r#"{"userId":"a""#,
        "[]",
        "null",
        r#""a""#,
        "\u{feff}{}",
    ] {
        app.post_raw(PURCHASE, JSON, body.to_owned())
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    assert_eq!(redis.digest().await, digest);
}

#[tokio::test]
async fn a_one_megabyte_body_is_payload_too_large() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let digest = redis.digest().await;
    let huge = format!(r#"{{"userId":"a","pad":"{}"}}"#, "x".repeat(1024 * 1024));

    app.post_raw(PURCHASE, JSON, huge)
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    let just_over = format!(r#"{{"userId":"a","pad":"{}"}}"#, "x".repeat(4096));
    app.post_raw(PURCHASE, JSON, just_over)
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(redis.digest().await, digest);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_unsupported_media_type() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let digest = redis.digest().await;
    let body = r#"{"userId":"a"}"#;

    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        app.post_raw(PURCHASE, content_type, body)
            .await
            .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    }
    assert_eq!(redis.digest().await, digest);
}

#[tokio::test]
async fn json_with_a_charset_is_accepted() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let reply = app
        .post_raw(
            PURCHASE,
            Some("application/json; charset=utf-8"),
            r#"{"userId":"ok"}"#,
        )
        .await;

    assert_eq!(reply.code(), "PURCHASED");
}

#[tokio::test]
async fn a_bad_idempotency_key_is_invalid_request_and_changes_nothing() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let digest = redis.digest().await;

    for key in [" ".to_owned(), "k".repeat(256), "has space".to_owned()] {
        app.purchase_with_key("zed", &key)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    assert_eq!(redis.digest().await, digest);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_json_errors() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let digest = redis.digest().await;

    app.get("/nope").await.assert_error(404, "NOT_FOUND");
    app.get("/api/sale").await.assert_error(404, "NOT_FOUND");
    app.get("/api/sale/user/")
        .await
        .assert_error(404, "NOT_FOUND");
    let get_purchase = app.get(PURCHASE).await;
    get_purchase.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(get_purchase.header("allow"), Some("POST"));
    let post_status = app.post_raw("/api/sale/status", JSON, "{}").await;
    post_status.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(post_status.header("allow"), Some("GET, HEAD"));
    let delete = app
        .http
        .delete(app.url("/api/sale/user/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 405);
    assert_eq!(delete.headers()["allow"], "GET, HEAD");
    assert_eq!(redis.digest().await, digest);
}

#[tokio::test]
async fn error_messages_carry_no_parser_internals() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    for body in [r#"{"userId":""}"#, "{", r#"{"userId":42}"#, r#"{}"#] {
        let reply = app.post_raw(PURCHASE, JSON, body).await;

        reply.assert_error(400, "INVALID_REQUEST");
        let message = reply.body["message"].as_str().unwrap();
        assert!(
            !message.contains("line") && !message.contains("column"),
            "{body}: {message}"
        );
    }
}
