//! HTTP only: one file per resource, the state handlers share, and the route table.
//!
//! The sale routes are mounted twice: under `/api/sales/{saleId}` for any sale, and under
//! `/api/sale` as the alias for `SALE_ID`. Every `GET` route also answers `HEAD`; every other
//! method gets 405 with an `Allow` header.

mod health;
mod purchase;
mod status;
mod user;

use crate::{
    domain::SaleId,
    error::ApiError,
    status_cache::StatusCache,
    store::{Store, UserAttemptLimit},
};
use actix_web::{
    dev::Payload, guard, http::header::HeaderValue, web, FromRequest, HttpRequest, HttpResponse,
    Resource, Route,
};
use std::{
    future::{ready, Ready},
    time::Instant,
};

pub use purchase::{PurchaseRequest, MAX_BODY_BYTES};

/// What every handler can reach: its worker's store, and this instance's cache and limits.
pub struct AppState {
    pub store: Store,
    pub status_cache: StatusCache,
    pub user_attempts: UserAttemptLimit,
    /// The sale `/api/sale/*` serves (`SALE_ID`).
    pub default_sale: SaleId,
    pub started: Instant,
}

/// The sale of a request: the `{saleId}` path segment, checked before any key is built, or
/// `SALE_ID` on the `/api/sale` alias. Recorded on the request span.
impl FromRequest for SaleId {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sale = match req.match_info().get("saleId") {
            Some(id) => SaleId::parse(id).map_err(|e| ApiError::invalid(format!("saleId {e}"))),
            None => req
                .app_data::<web::Data<AppState>>()
                .map(|state| state.default_sale.clone())
                .ok_or_else(|| ApiError::invalid("no sale on this route")),
        };
        if let Ok(sale) = &sale {
            tracing::Span::current().record("sale_id", sale.as_str());
        }
        ready(sale)
    }
}

/// The routes of one sale, mounted under both prefixes; the per-IP rate limit wraps them.
pub fn sale_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/status", READ).route(read().to(status::status)))
        .service(
            resource("/purchase", "POST")
                .app_data(purchase::json_config())
                .route(web::post().to(purchase::purchase)),
        )
        .service(resource("/user/{userId}", READ).route(read().to(user::user)));
}

/// Health routes: never rate limited, so platform probes always get through.
pub fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health", READ).route(read().to(health::health)))
        .service(resource("/health/live", READ).route(read().to(health::live)))
        .service(resource("/health/ready", READ).route(read().to(health::ready)));
}

/// The methods of a read-only route.
const READ: &str = "GET, HEAD";

/// `GET`, and `HEAD` with the same headers and no body (actix drops the body of a HEAD answer).
fn read() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A resource whose other methods answer 405 with `Allow: <allow>`.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
            allow: HeaderValue::from_static(allow),
        })
    }))
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}
