//! HTTP routes, one file per endpoint, and the state they share.

mod health;
mod purchase;
mod status;
mod user;

use crate::{
    config::UserAttemptLimit, error::ApiError, status_cache::StatusCache, store::WorkerStore,
};
use actix_web::{web, HttpResponse};
use std::sync::Arc;
use std::time::Instant;

pub use purchase::{PurchaseRequest, MAX_BODY_BYTES};

/// What every handler can reach: its worker's store, and this instance's cache and limits.
pub struct AppState {
    pub store: WorkerStore,
    pub status_cache: Arc<StatusCache>,
    pub user_attempts: UserAttemptLimit,
    pub started: Instant,
}

/// The `/api/sale` routes, which the per-IP rate limit wraps.
pub fn sale_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/status")
            .route(web::get().to(status::status))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/purchase")
            .app_data(purchase::json_config())
            .route(web::post().to(purchase::purchase))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/user/{userId}")
            .route(web::get().to(user::user))
            .default_service(web::to(method_not_allowed)),
    );
}

/// Health routes: never rate limited, so platform probes always get through.
pub fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/health")
            .route(web::get().to(health::health))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/health/live")
            .route(web::get().to(health::live))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/health/ready")
            .route(web::get().to(health::ready))
            .default_service(web::to(method_not_allowed)),
    );
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}
