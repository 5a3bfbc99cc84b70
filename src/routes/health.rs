//! Health and operations: `/health` (a summary), `/health/live` (the process serves),
//! `/health/ready` (Redis answers and the scripts are loaded) and `/metrics` (Prometheus).

use super::AppState;
use crate::{
    config::AdminToken,
    error::{ApiError, Result},
};
use actix_web::{web, HttpRequest, HttpResponse};
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

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let connected = state.store.ping().await;
    let reasons = state.redis_health.reasons();
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

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse> {
    state.store.ready().await.map_err(ApiError::Unavailable)?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}

/// `GET /metrics`: the Prometheus text format; with `METRICS_TOKEN` set, only for its bearer.
pub async fn metrics(
    request: HttpRequest,
    handle: Option<web::Data<PrometheusHandle>>,
    token: Option<web::Data<MetricsToken>>,
) -> Result<HttpResponse> {
    if let Some(token) = token {
        let given = super::bearer_token(&request).unwrap_or_default();
        if !constant_time_eq::constant_time_eq(token.0.expose().as_bytes(), given.as_bytes()) {
            return Err(ApiError::Unauthorized {
                invalid_token: !given.is_empty(),
            });
        }
    }
    let body = handle.map(|handle| handle.render()).unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}

/// `METRICS_TOKEN`, as app data.
pub struct MetricsToken(pub AdminToken);
