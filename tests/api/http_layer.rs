//! What every response carries: request ids, CORS for browser clients.

use crate::helpers::{spawn_app, spawn_app_with, TestRedis};

#[tokio::test]
async fn every_response_echoes_a_request_id() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    for reply in [
        app.status().await,
        app.purchase("a").await,
        app.get("/nope").await,
        app.get("/health").await,
    ] {
        let id = reply.header("x-request-id").expect("x-request-id");
        assert_eq!(id.len(), 36, "a UUID: {id}");
    }
}

#[tokio::test]
async fn a_sensible_incoming_request_id_is_kept_and_a_hostile_one_replaced() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let with_id = |id: &str| {
        app.http
            .get(app.url("/api/sale/status"))
            .header("x-request-id", id)
            .send()
    };

    let kept = with_id("edge-7f3a.42:retry").await.unwrap();
    let long = "x".repeat(129);
    let replaced = with_id(&long).await.unwrap();
    let hostile = with_id("a b\"<script>").await.unwrap();

    assert_eq!(kept.headers()["x-request-id"], "edge-7f3a.42:retry");
    for reply in [replaced, hostile] {
        let id = reply.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "a fresh UUID: {id}");
    }
}

#[tokio::test]
async fn head_works_on_every_get_route_with_no_body() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    for path in [
        "/api/sale/status",
        "/api/sales/default/status",
        "/api/sale/user/alice",
        "/health",
        "/health/live",
        "/health/ready",
    ] {
        let reply = app.http.head(app.url(path)).send().await.unwrap();

        assert_eq!(reply.status(), 200, "{path}");
        assert_eq!(
            reply.headers()["content-type"],
            "application/json",
            "{path}"
        );
        assert!(reply.bytes().await.unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn an_allowed_origin_gets_cors_headers_and_preflight_passes() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[("CORS_ALLOWED_ORIGINS", "https://shop.example.com")],
    )
    .await;

    let simple = app.status_from_origin("https://shop.example.com").await;
    let preflight = app
        .preflight(
            "https://shop.example.com",
            Some("content-type, idempotency-key, flashsale-admission"),
        )
        .await;
    let cancel = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/sale/reservation"))
        .header("Origin", "https://shop.example.com")
        .header("Access-Control-Request-Method", "DELETE")
        .header("Access-Control-Request-Headers", "flashsale-reservation")
        .send()
        .await
        .unwrap();

    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("idempotency-key"), "{allowed}");
    assert!(allowed.contains("flashsale-admission"), "{allowed}");
    assert!(cancel.status().is_success(), "{}", cancel.status());
    let methods = cancel.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("DELETE"), "{methods}");
}

#[tokio::test]
async fn an_unknown_origin_gets_no_cors_headers_and_a_json_preflight_error() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[("CORS_ALLOWED_ORIGINS", "https://shop.example.com")],
    )
    .await;

    let simple = app.status_from_origin("https://evil.example").await;
    let preflight = app.preflight("https://evil.example", None).await;

    assert!(simple
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let cors: Vec<&str> = simple
        .headers()
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "no CORS header at all: {cors:?}");
    assert_eq!(preflight.status(), 400);
    assert_eq!(preflight.headers()["content-type"], "application/json");
    let body: serde_json::Value = preflight.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["code"], "INVALID_REQUEST");
}

#[tokio::test]
async fn without_cors_configuration_there_is_no_cross_origin_access() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let reply = app.status_from_origin("https://shop.example.com").await;

    assert!(reply.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_wildcard_allows_any_origin() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("CORS_ALLOWED_ORIGINS", "*")]).await;

    let reply = app.status_from_origin("https://anywhere.example").await;

    assert_eq!(reply.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_the_page_a_strict_policy() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let page = app.http.get(app.url("/")).send().await.unwrap();
    let script = app.http.get(app.url("/app.js")).send().await.unwrap();
    let api = app.status().await;
    let missing = app.get("/nope").await;

    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "nothing inline"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from other hosts"
    );
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    for headers in [&api.headers, &missing.headers] {
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }
    assert_eq!(api.header("cache-control"), Some("public, max-age=1"));
}
