//! `GET /api/sale/status`: the sale as a storefront shows it, served from the status cache.

use super::AppState;
use crate::{
    domain::rfc3339_ms,
    error::{ApiError, Result},
};
use actix_web::{web, HttpResponse};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody<'a> {
    status: &'static str,
    product_name: &'a str,
    total_stock: i64,
    remaining_stock: i64,
    start_time: String,
    end_time: String,
    server_time: String,
}

pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse> {
    let cached = state.status_cache.get(state.store.get().await?).await?;
    let (Some(sale), Some(now_ms)) = (&cached.snapshot, cached.redis_now_ms()) else {
        return Err(ApiError::SaleNotFound);
    };
    Ok(HttpResponse::Ok().json(StatusBody {
        status: sale.status_at(now_ms).as_str(),
        product_name: &sale.product_name,
        total_stock: sale.total_stock,
        remaining_stock: sale.remaining_stock.max(0),
        start_time: rfc3339_ms(sale.start_ms),
        end_time: rfc3339_ms(sale.end_ms),
        server_time: rfc3339_ms(now_ms),
    }))
}
