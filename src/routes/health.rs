//! Health and operations: `/health` (a summary), `/health/live` (the process serves),
//! `/health/ready` (Redis answers and the scripts are loaded) and `/metrics` (Prometheus).

use super::{extract::MetricsReader, openapi::codes_and, AppState};
use crate::{
    domain::Code,
    error::{Answer, ApiError, Result},
    redis_health::RedisHealth,
};
use actix_web::{web, HttpResponse};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use serde_json::json;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthBody {
    /// `ok`, or `degraded` when Redis is unreachable or any reason below holds.
    status: &'static str,
    redis: &'static str,
    /// Why degraded: Redis near `maxmemory`, an eviction policy, purchases failing.
    reasons: Vec<String>,
    uptime_seconds: u64,
    version: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "operations", operation_id = "health",
    responses((status = 200, description = "ok or degraded", body = HealthBody)))]
pub async fn health(
    state: web::Data<AppState>,
    redis_health: web::Data<RedisHealth>,
) -> HttpResponse {
    let connected = state.store.ping().await;
    let reasons = redis_health.reasons();
    HttpResponse::Ok().json(HealthBody {
        status: if connected && reasons.is_empty() {
            "ok"
        } else {
            "degraded"
        },
        reasons,
        redis: if connected {
            "connected"
        } else {
            "disconnected"
        },
        uptime_seconds: state.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[utoipa::path(get, path = "/health/live", tag = "operations", operation_id = "live",
    responses((status = 200, description = "The process serves", body = serde_json::Value)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/health/ready", tag = "operations", operation_id = "ready",
    responses(
        (status = 200, description = "Redis answers and the scripts are loaded", body = serde_json::Value),
        (status = 503, description = codes_and(&[Code::ServiceUnavailable], "not ready"), body = Answer),
    ))]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse> {
    state.store.ready().await.map_err(ApiError::Unavailable)?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}

/// `GET /metrics`: the Prometheus text format; with `METRICS_TOKEN` set, only for its bearer.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = codes_and(&[Code::Unauthorized], "METRICS_TOKEN set and not given"), body = Answer),
        (status = 429, description = codes_and(&[Code::RateLimited], "too many wrong tokens from this address"), body = Answer, headers(("Retry-After" = u64))),
    ))]
pub async fn metrics(
    _: MetricsReader,
    handle: Option<web::Data<PrometheusHandle>>,
) -> HttpResponse {
    metrics_private(handle).await
}

/// The same on `METRICS_PORT`'s private listener, where no token is asked.
pub async fn metrics_private(handle: Option<web::Data<PrometheusHandle>>) -> HttpResponse {
    let body = handle.map(|handle| handle.render()).unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
