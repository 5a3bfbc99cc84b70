//! HTTP only: one file per resource, the state handlers share, and the route table.
//!
//! The sale routes are mounted twice: under `/api/sales/{saleId}` for any sale, and under
//! `/api/sale` as the alias for `SALE_ID`. Every `GET` route also answers `HEAD`; every other
//! method gets 405 with an `Allow` header.

pub mod admin;
mod events;
mod health;
pub mod openapi;
mod page;
pub mod purchase;
mod status;
mod user;

use crate::{
    auth::Verifier,
    domain::{SaleId, UserId, UserIdCase},
    error::ApiError,
    live::Live,
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

pub use health::MetricsToken;
pub use purchase::{PurchaseRequest, MAX_BODY_BYTES};

/// What every handler can reach: its worker's store, and this instance's cache and limits.
pub struct AppState {
    pub store: Store,
    pub status_cache: StatusCache,
    pub user_attempts: UserAttemptLimit,
    /// The sale `/api/sale/*` serves (`SALE_ID`).
    pub default_sale: SaleId,
    /// JWT verification; `None` when off.
    pub verifier: Option<Verifier>,
    pub user_id_case: UserIdCase,
    /// The live-status hub: watchers and event-stream slots.
    pub live: Live,
    /// Why this instance is degraded, for `/health`.
    pub redis_health: crate::redis_health::RedisHealth,
    pub started: Instant,
}

impl AppState {
    /// The buyer of a request. With verification off, the user the request names (body or
    /// path), which it must name. With it on, the user the bearer token names; a user the
    /// request names as well must be the same one (403 otherwise, revealing nothing).
    pub async fn buyer(
        &self,
        request: &HttpRequest,
        named: Option<UserId>,
    ) -> Result<UserId, ApiError> {
        let named = named.map(|user| self.user_id_case.apply(user));
        let Some(verifier) = &self.verifier else {
            return named.ok_or_else(|| ApiError::invalid("Invalid body: missing field `userId`."));
        };
        let token = bearer_token(request).ok_or(ApiError::Unauthorized {
            invalid_token: false,
        })?;
        // Boxed: a JWKS fetch makes this future large, and it is not every deployment's path.
        let holder = match Box::pin(verifier.verify(token)).await {
            Ok(user) => self.user_id_case.apply(user),
            Err(err) => {
                // The reason helps whoever runs the shop's sign-in; the token itself never
                // reaches the log.
                tracing::info!(reason = %err, "bearer token refused");
                return Err(ApiError::Unauthorized {
                    invalid_token: true,
                });
            }
        };
        match named {
            Some(named) if named != holder => Err(ApiError::Forbidden),
            _ => Ok(holder),
        }
    }
}

/// A path segment, percent-decoded (`jane%2Bsale@example.com` is `jane+sale@example.com`; actix
/// leaves reserved characters encoded).
pub fn path_segment(request: &HttpRequest, name: &str) -> Result<String, ApiError> {
    let raw = request.match_info().get(name).unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| ApiError::invalid(format!("{name} is not valid UTF-8.")))
}

/// The request's id (as the span and the `x-request-id` header carry it).
pub fn request_id(request: &HttpRequest) -> String {
    use actix_web::HttpMessage;
    request
        .extensions()
        .get::<crate::telemetry::RequestId>()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default()
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The sale of a request: the `{saleId}` path segment, checked before any key is built, or
/// `SALE_ID` on the `/api/sale` alias. Recorded on the request span.
impl FromRequest for SaleId {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sale = match req.match_info().get("saleId") {
            Some(_) => path_segment(req, "saleId").and_then(|id| {
                SaleId::parse(&id).map_err(|e| ApiError::invalid(format!("saleId {e}")))
            }),
            None => req
                .app_data::<web::Data<AppState>>()
                .map(|state| state.default_sale.clone())
                .ok_or_else(|| ApiError::invalid("no sale on this route")),
        };
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
        .service(resource("/user/{userId}", READ).route(read().to(user::user)))
        .service(resource("/events", READ).route(read().to(events::events)));
}

/// The demo page and its two assets.
pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/", READ).route(read().to(page::index)))
        .service(resource("/app.js", READ).route(read().to(page::script)))
        .service(resource("/style.css", READ).route(read().to(page::style)));
}

/// Health routes: never rate limited, so platform probes always get through.
pub fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health", READ).route(read().to(health::health)))
        .service(resource("/health/live", READ).route(read().to(health::live)))
        .service(resource("/health/ready", READ).route(read().to(health::ready)))
        .service(resource("/metrics", READ).route(read().to(health::metrics)))
        .service(resource("/api/openapi.json", READ).route(read().to(openapi::document)));
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
