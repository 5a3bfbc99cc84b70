//! `GET /api/admin/sales/{saleId}/draw`: the pre-queue in draw order, with the seed, so anyone
//! the shop gives it to can recompute the order (README, Waiting room: checking the draw).

use super::{page_limit, stats_or_404};
use crate::{
    domain::{Code, SaleId},
    error::{Answer, ApiError, Result},
    routes::{extract::Admin, openapi::codes, AppState},
};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrawQuery {
    offset: Option<u64>,
    limit: Option<u64>,
}

/// One pre-queue buyer and the place the draw gave them.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrawRow {
    position: u64,
    user_id: String,
}

/// A page of the draw.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrawPage {
    /// SHA-256 (hex) of the seed, published from the sale's creation.
    draw_commitment: String,
    /// The seed (hex); `null` before the start, when no row is shown either.
    draw_seed: Option<String>,
    /// Buyers who joined before the start.
    pre_queued: i64,
    /// Pre-queue buyers in draw order, from position `offset + 1`.
    rows: Vec<DrawRow>,
    /// The `offset` of the next page; `null` after the last.
    next_offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/admin/sales/{saleId}/draw", tag = "admin", operation_id = "admin_draw", security(("bearer" = [])),
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("offset" = Option<u64>, Query, maximum = 1_000_000_000),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "The pre-queue in draw order (rows only once the sale has started)", body = DrawPage),
        (status = 404, description = codes(&[Code::SaleNotFound, Code::NoWaitingRoom]), body = Answer),
    ))]
pub async fn draw(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    query: web::Query<DrawQuery>,
) -> Result<HttpResponse> {
    let offset = query.offset.unwrap_or(0);
    if offset > super::sales::MAX_OFFSET {
        return Err(ApiError::invalid(format!(
            "offset must be at most {}.",
            super::sales::MAX_OFFSET
        )));
    }
    let limit = page_limit(query.limit, 1000)?;
    let stats = stats_or_404(&state, &sale).await?;
    let room = stats.room.ok_or(ApiError::NoWaitingRoom)?;
    // The seed is in the reply only once the sale has started (on Redis's clock); before, the
    // order is still secret, so no row is shown either.
    let started = room.draw_seed.is_some();
    let users = if started {
        state.store.draw_page(&sale, offset, limit).await?
    } else {
        Vec::new()
    };
    let next_offset = (users.len() as u64 == limit).then_some(offset + limit);
    let rows = users
        .into_iter()
        .enumerate()
        .map(|(n, user_id)| DrawRow {
            position: offset + n as u64 + 1,
            user_id,
        })
        .collect();
    Ok(HttpResponse::Ok().json(DrawPage {
        draw_commitment: room.draw_commitment,
        draw_seed: room.draw_seed,
        pre_queued: room.pre_queued,
        rows,
        next_offset,
    }))
}
