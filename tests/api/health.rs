//! Health endpoints.

use crate::helpers::{spawn_app, TestRedis};

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
