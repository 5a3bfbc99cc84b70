//! Health endpoints.

use crate::helpers::{spawn_app, spawn_app_with, TestRedis};

#[tokio::test]
async fn health_reports_redis_uptime_and_version() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let reply = app.get("/health").await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "ok");
    assert_eq!(reply.body["redis"], "connected");
    assert!(reply.body["uptimeSeconds"].is_u64());
    assert_eq!(reply.body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(app.get("/health/live").await.status, 200);
    assert_eq!(app.get("/health/ready").await.status, 200);
}

#[tokio::test]
async fn without_redis_health_is_degraded_and_not_ready_but_live() {
    let mut redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    redis.stop().await;

    let health = app.get("/health").await;
    let ready = app.get("/health/ready").await;
    let live = app.get("/health/live").await;

    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "degraded");
    assert_eq!(health.body["redis"], "disconnected");
    ready.assert_error(503, "SERVICE_UNAVAILABLE");
    assert_eq!(live.status, 200);
}

#[tokio::test]
async fn metrics_port_serves_metrics_without_the_token_and_nothing_else() {
    // Fly.io's [metrics] scraper cannot send a bearer token: it scrapes a private port.
    let redis = TestRedis::start().await;
    let metrics_port = flashsale::store::local_server::free_port().unwrap();
    let app = spawn_app_with(
        &redis,
        &[
            ("METRICS_TOKEN", "a-metrics-token-for-tests"),
            ("METRICS_PORT", &metrics_port.to_string()),
        ],
    )
    .await;
    assert_eq!(app.purchase("counted").await.code(), "PURCHASED");

    let private = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    let text = private.text().await.unwrap();
    assert!(text.contains("flashsale_purchases_total"), "{text}");
    // The public listener still asks for the token; the private one serves nothing else.
    assert_eq!(app.get("/metrics").await.status, 401);
    let other = reqwest::get(format!("http://127.0.0.1:{metrics_port}/api/sale/status"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let body: serde_json::Value = other.json().await.unwrap();
    assert_eq!(body["code"], "NOT_FOUND");
}
