//! HTTP only: one file per resource, the extractors, the state handlers share, and the route
//! table.
//!
//! The sale routes are mounted twice: under `/api/sales/{saleId}` for any sale, and under
//! `/api/sale` as the alias for `SALE_ID`. Every `GET` route also answers `HEAD`; every other
//! method gets 405 with an `Allow` header.

pub mod admin;
pub mod checkout;
mod events;
pub mod extract;
pub(crate) mod health;
pub mod openapi;
mod page;
mod purchase;
pub mod queue;
mod state;
mod status;
mod stripe;
mod user;

use crate::{
    config::{AdminToken, StripeSecret},
    error::ApiError,
    middleware::IpGovernorConfig,
};
use actix_governor::Governor;
use actix_web::{guard, http::header::HeaderValue, web, HttpResponse, Resource, Route};

pub use extract::MetricsToken;
pub use purchase::PurchaseRequest;
pub use state::AppState;

/// What decides the shape of the route table.
pub struct Mounts<'a> {
    /// `ADMIN_TOKEN`: the admin API exists only when it is set (else its routes are plain 404s).
    pub admin_token: Option<&'a web::Data<AdminToken>>,
    /// The per-IP limit, on the sale routes only: health probes must always get through.
    pub ip_limit: Option<&'a IpGovernorConfig>,
    /// `STRIPE_WEBHOOK_SECRET`: Stripe's webhook route exists only when it is set.
    pub stripe_secret: Option<&'a web::Data<StripeSecret>>,
}

/// Every route of the service.
pub fn table(cfg: &mut web::ServiceConfig, mounts: Mounts<'_>) {
    if let Some(token) = mounts.admin_token {
        cfg.service(
            web::scope("/api/admin")
                .app_data(token.clone())
                .configure(admin::routes),
        );
    }
    if let Some(secret) = mounts.stripe_secret {
        cfg.service(
            resource("/api/payments/stripe/webhook", "POST")
                .app_data(secret.clone())
                .app_data(web::PayloadConfig::new(stripe::MAX_EVENT_BYTES))
                .route(web::post().to(stripe::webhook)),
        );
    }
    // The alias goes first: its prefix is static, so its requests never run the regex that
    // matches `{saleId}` (README, Benchmarks).
    let alias = web::scope(ALIAS_PREFIX).configure(sale_routes);
    let sales = web::scope(SALE_PREFIX).configure(sale_routes);
    match mounts.ip_limit {
        Some(config) => cfg
            .service(alias.wrap(Governor::new(config)))
            .service(sales.wrap(Governor::new(config))),
        None => cfg.service(alias).service(sales),
    };
    cfg.configure(health_routes)
        .configure(page_routes)
        .default_service(web::to(not_found));
}

/// Where the sale routes are mounted for any sale, and as the `SALE_ID` alias.
pub const SALE_PREFIX: &str = "/api/sales/{saleId}";
pub const ALIAS_PREFIX: &str = "/api/sale";

/// The routes of one sale, mounted under both prefixes; the per-IP rate limit wraps them.
pub fn sale_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/status", READ).route(read().to(status::status)))
        .service(
            resource("/purchase", "POST")
                .app_data(extract::json_config())
                .route(web::post().to(purchase::purchase)),
        )
        .service(
            resource("/reservation", "DELETE")
                .route(web::delete().to(checkout::cancel_reservation)),
        )
        .service(
            resource("/queue", "POST")
                .app_data(extract::json_config())
                .route(web::post().to(queue::join)),
        )
        .service(resource("/queue/me", READ).route(read().to(queue::me)))
        .service(resource("/queue/events", READ).route(read().to(queue::events)))
        .service(resource("/user/{userId}", READ).route(read().to(user::user)))
        .service(resource("/events", READ).route(read().to(events::events)));
}

/// The demo page and its two assets.
fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/", READ).route(read().to(page::index)))
        .service(resource("/app.js", READ).route(read().to(page::script)))
        .service(resource("/style.css", READ).route(read().to(page::style)));
}

/// Health routes: never rate limited, so platform probes always get through.
fn health_routes(cfg: &mut web::ServiceConfig) {
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

pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}
