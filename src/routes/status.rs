//! `GET …/status`: the sale as a storefront shows it, served from the status cache.

use super::{
    openapi::codes,
    queue::{room_view, RoomView},
    AppState,
};
use crate::{
    domain::{rfc3339_ms, Code, SaleId, SaleSnapshot},
    error::{Answer, ApiError, Result},
};
use actix_web::{http::header, web, HttpResponse};
use serde::Serialize;

/// How long a CDN or browser may reuse a status answer: as old as the instance's own cache.
pub const STATUS_CACHE_CONTROL: &str = "public, max-age=1";

/// The status JSON, also the data of each `status` event of the event stream.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody<'a> {
    #[schema(value_type = crate::domain::SaleStatus)]
    status: &'static str,
    product_name: &'a str,
    total_stock: i64,
    remaining_stock: i64,
    /// Units in unpaid checkout holds: not in `remainingStock`, and some may come back
    /// (README, Checkout); 0 on a sale without holds.
    held_stock: i64,
    start_time: String,
    end_time: String,
    server_time: String,
    /// The waiting room, when the sale has one (README, Waiting room).
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_room: Option<RoomView>,
}

impl<'a> StatusBody<'a> {
    /// The sale as judged at `now_ms` on the Redis clock.
    pub fn new(snapshot: &'a SaleSnapshot, now_ms: i64) -> Self {
        Self {
            status: snapshot.status_at(now_ms).as_str(),
            product_name: &snapshot.product_name,
            total_stock: snapshot.total_stock,
            remaining_stock: snapshot.remaining_stock.max(0),
            held_stock: snapshot.held_stock.max(0),
            start_time: rfc3339_ms(snapshot.start_ms),
            end_time: rfc3339_ms(snapshot.end_ms),
            server_time: rfc3339_ms(now_ms),
            waiting_room: room_view(snapshot, now_ms),
        }
    }
}

#[utoipa::path(get, path = "/api/sales/{saleId}/status", tag = "sales", operation_id = "sale_status",
    params(("saleId" = String, Path, description = "1–64 of A–Z a–z 0–9 _ -", pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "The sale now", body = StatusBody,
            headers(("Cache-Control" = String), ("X-Request-Id" = String))),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
    ))]
pub async fn status(state: web::Data<AppState>, sale: SaleId) -> Result<HttpResponse> {
    let cached = state.status_cache.get(&state.store, &sale).await?;
    let (Some(snapshot), Some(now_ms)) = (&cached.snapshot, cached.redis_now_ms()) else {
        return Err(ApiError::SaleNotFound);
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, STATUS_CACHE_CONTROL))
        .json(StatusBody::new(snapshot, now_ms)))
}
