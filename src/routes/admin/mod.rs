//! `/api/admin`: set up, change, restock, watch, export and delete sales. Mounted only when
//! `ADMIN_TOKEN` is set; every route takes the `Admin` extractor first, so a request without
//! the token is refused before its body is read.
//!
//! One file per resource: [`sales`] (a sale's config and stock), [`orders`] (its buyers and the
//! orders whose webhook died), [`checkout`] (one order), [`queue`] (the waiting room's draw).

pub mod checkout;
pub mod orders;
pub mod queue;
pub mod sales;

pub use orders::{BuyerPage, BuyerRow, DeadOrderPage, DeadOrderRow, Redriven};
pub use queue::{DrawPage, DrawRow};
pub use sales::{PatchBody, RestockAnswer, RestockBody, SaleBody, SaleList, SaleView};

use super::{extract::json_config, read, resource, AppState, READ};
use crate::{
    domain::SaleId,
    error::{ApiError, Result},
    store::admin::SaleStats,
};
use actix_web::web;

/// The most entries one page holds.
pub const MAX_PAGE: u64 = 1_000;

/// The admin routes, under `/api/admin`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let query = web::QueryConfig::default()
        .error_handler(|err, _req| ApiError::invalid(format!("Invalid query: {err}.")).into());
    cfg.app_data(json_config())
        .app_data(query)
        .service(resource("/sales", READ).route(read().to(sales::list)))
        .service(
            resource("/sales/{saleId}", "GET, HEAD, PUT, PATCH, DELETE")
                .route(read().to(sales::get))
                .route(web::put().to(sales::put))
                .route(web::patch().to(sales::patch))
                .route(web::delete().to(sales::delete)),
        )
        .service(resource("/sales/{saleId}/restock", "POST").route(web::post().to(sales::restock)))
        .service(resource("/sales/{saleId}/buyers", READ).route(read().to(orders::buyers)))
        .service(resource("/sales/{saleId}/draw", READ).route(read().to(queue::draw)))
        .service(
            resource("/sales/{saleId}/orders/dead", READ).route(read().to(orders::dead_orders)),
        )
        .service(
            resource("/sales/{saleId}/orders/dead/redrive", "POST")
                .route(web::post().to(orders::redrive)),
        )
        // After `orders/dead`, which the pattern would match too.
        .service(
            resource("/sales/{saleId}/orders/{orderNumber}", READ)
                .route(read().to(checkout::order)),
        )
        .service(
            resource("/sales/{saleId}/orders/{orderNumber}/confirm", "POST")
                .route(web::post().to(checkout::confirm)),
        )
        .service(
            resource("/sales/{saleId}/orders/{orderNumber}/cancel", "POST")
                .route(web::post().to(checkout::cancel)),
        );
}

/// The sale's config and counters, or 404.
async fn stats_or_404(state: &AppState, sale: &SaleId) -> Result<SaleStats> {
    state
        .store
        .sale_stats(sale)
        .await?
        .ok_or(ApiError::SaleNotFound)
}

/// The number of entries asked for: `limit`, else `default`; at most [`MAX_PAGE`].
fn page_limit(limit: Option<u64>, default: u64) -> Result<u64> {
    match limit.unwrap_or(default) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(ApiError::invalid(format!("limit must be 1 to {MAX_PAGE}."))),
    }
}
