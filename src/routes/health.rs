//! Health endpoints: `/health` (a summary), `/health/live` (the process serves) and
//! `/health/ready` (Redis answers and the scripts are loaded).

use super::AppState;
use crate::error::{ApiError, Result};
use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::json;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthBody {
    status: &'static str,
    redis: &'static str,
    uptime_seconds: u64,
    version: &'static str,
}

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let connected = state.store.ping().await;
    HttpResponse::Ok().json(HealthBody {
        status: if connected { "ok" } else { "degraded" },
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
