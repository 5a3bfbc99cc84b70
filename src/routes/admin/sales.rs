//! `/api/admin/sales[/{saleId}[/restock]]`: list, create or replace, change, read, restock and
//! delete sales.

use super::{page_limit, stats_or_404};
use crate::{
    domain::{
        rfc3339_ms, CheckoutRules, Code, ProductName, SaleId, SaleSeed, SaleSnapshot, SaleWindow,
        WaitingRoom, MAX_TOTAL_STOCK,
    },
    error::{Answer, ApiError, Result},
    routes::{
        extract::{Admin, IdempotencyKey},
        openapi::codes,
        queue::RoomView,
        AppState,
    },
    store::admin::{PatchOutcome, PutOutcome, SalePatch, SaleStats},
};
use actix_web::{http::StatusCode, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The furthest a sales listing may start.
pub const MAX_OFFSET: u64 = 1_000_000_000;

/// `PUT` body: the whole sale.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaleBody {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    product_name: String,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    total_stock: i64,
    start_time: DateTime<Utc>,
    end_time: DateTime<Utc>,
    /// How long a unit is held for an unpaid order: 0 (the default) = no holds, an order is
    /// final when placed; otherwise 30–86400 (README, Checkout).
    #[schema(minimum = 0, maximum = 86_400)]
    hold_seconds: Option<i64>,
    /// The most units one buyer's order may take (default 1).
    #[schema(minimum = 1, maximum = 100)]
    max_per_buyer: Option<i64>,
    /// A waiting room (README, Waiting room); absent or `null`: none.
    waiting_room: Option<RoomBody>,
}

/// A waiting room's settings.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoomBody {
    /// How many buyers at the head of the queue are let in each second (and at the start).
    #[schema(minimum = 1, maximum = 100_000)]
    admit_per_second: i64,
    /// How long an admission lasts (default 120).
    #[schema(minimum = 10, maximum = 3600)]
    admission_seconds: Option<i64>,
    /// When joining opens, not after the start (default: 15 minutes before it). Joins before
    /// the start are ordered by the draw.
    opens_at: Option<DateTime<Utc>>,
}

impl RoomBody {
    /// The room of a sale starting at `start_ms`; refused when this instance cannot sign
    /// admissions (every instance needs `WAITING_ROOM_SECRET`).
    fn room(&self, state: &AppState, start_ms: i64) -> Result<WaitingRoom> {
        if state.rooms.signer().is_err() {
            return Err(ApiError::invalid(
                "waitingRoom needs WAITING_ROOM_SECRET on every instance; it is not set here.",
            ));
        }
        let opens_ms = self
            .opens_at
            .map_or(start_ms - WaitingRoom::DEFAULT_OPENS_BEFORE_MS, |opens| {
                opens.timestamp_millis()
            });
        let number = |value: i64| u64::try_from(value).unwrap_or(u64::MAX);
        WaitingRoom::new(
            number(self.admit_per_second),
            number(
                self.admission_seconds
                    .unwrap_or(WaitingRoom::DEFAULT_ADMISSION_SECONDS as i64),
            ),
            opens_ms,
            start_ms,
        )
        .map_err(|(field, rule)| ApiError::invalid(format!("waitingRoom.{field} {rule}.")))
    }
}

/// `Some(value)` for a field that is present, `null` included: PATCH tells "absent" (leave it)
/// from `null` (switch it off).
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
pub struct ForceQuery {
    #[serde(default)]
    force: bool,
}

/// `PATCH` body: any of name and window.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchBody {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    product_name: Option<String>,
    start_time: Option<DateTime<Utc>>,
    /// Now or earlier closes the sale, on Redis's clock; its start never changes.
    end_time: Option<DateTime<Utc>>,
    /// 0 = no holds, or 30–86400; holds already placed keep their expiry.
    #[schema(minimum = 0, maximum = 86_400)]
    hold_seconds: Option<i64>,
    /// 1–100; orders already placed keep their units.
    #[schema(minimum = 1, maximum = 100)]
    max_per_buyer: Option<i64>,
    /// A waiting room's settings, or `null` to switch it off; the queue and the draw stay.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<RoomBody>)]
    waiting_room: Option<Option<RoomBody>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestockBody {
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    units: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    offset: Option<u64>,
    limit: Option<u64>,
}

/// A sale as an operator sees it: config, counters, and whether the numbers add up.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SaleView {
    sale_id: String,
    product_name: String,
    status: &'static str,
    total_stock: i64,
    start_time: String,
    end_time: String,
    created_time: String,
    sold: i64,
    remaining: i64,
    buyers: i64,
    orders: i64,
    attempts_refused: i64,
    /// 0 = no holds (README, Checkout).
    hold_seconds: i64,
    max_per_buyer: i64,
    /// Units in unpaid holds, units confirmed, units released so far (expired or cancelled).
    held: i64,
    confirmed: i64,
    released: i64,
    /// remaining + held + confirmed = total (README, Guarantees); on a plain sale also one
    /// record and one order-stream entry per buyer.
    consistent: bool,
    /// The waiting room, when the sale has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_room: Option<RoomView>,
}

impl SaleView {
    fn new(sale: &SaleId, stats: SaleStats) -> Self {
        let snapshot = SaleSnapshot {
            product_name: stats.product_name.clone(),
            total_stock: stats.total_stock,
            remaining_stock: stats.remaining,
            start_ms: stats.start_ms,
            end_ms: stats.end_ms,
            redis_now_ms: stats.redis_now_ms,
            held_stock: stats.held,
            room: None,
        };
        let adds_up = stats.remaining + stats.held + stats.confirmed == stats.total_stock;
        let consistent = if stats.checkout {
            // Each active order has a buyer record and at least one unit.
            adds_up && stats.buyers <= stats.held + stats.confirmed
        } else {
            adds_up
                && stats.remaining + stats.buyers == stats.total_stock
                && stats.orders == stats.buyers
        };
        Self {
            sale_id: sale.to_string(),
            status: snapshot.status_at(stats.redis_now_ms).as_str(),
            product_name: stats.product_name,
            total_stock: stats.total_stock,
            start_time: rfc3339_ms(stats.start_ms),
            end_time: rfc3339_ms(stats.end_ms),
            created_time: rfc3339_ms(stats.created_ms),
            // The counter the purchase script keeps; `buyers` counts the records themselves.
            sold: stats.total_stock - stats.remaining,
            remaining: stats.remaining,
            buyers: stats.buyers,
            orders: stats.orders,
            attempts_refused: stats.refused,
            hold_seconds: stats.hold_seconds,
            max_per_buyer: stats.max_per_buyer,
            held: stats.held,
            confirmed: stats.confirmed,
            released: stats.released,
            consistent,
            waiting_room: stats
                .room
                .as_ref()
                .map(|room| RoomView::new(room, stats.start_ms, stats.redis_now_ms)),
        }
    }
}

/// A page of the sales that exist.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SaleList {
    /// Sale ids, oldest first.
    sales: Vec<String>,
    /// The `offset` of the next page; `null` after the last.
    next_offset: Option<u64>,
}

/// The totals after a restock.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestockAnswer {
    sale_id: String,
    total_stock: i64,
    remaining_stock: i64,
}

fn product_name(name: &str) -> Result<ProductName> {
    ProductName::parse(name).map_err(|rule| ApiError::invalid(format!("productName {rule}.")))
}

fn units(value: i64, field: &str) -> Result<u64> {
    u64::try_from(value)
        .ok()
        .filter(|units| (1..=MAX_TOTAL_STOCK).contains(units))
        .ok_or_else(|| ApiError::invalid(format!("{field} must be 1 to {MAX_TOTAL_STOCK}.")))
}

const NOT_AFTER_START: &str = "endTime must be after startTime.";

fn hold_seconds(value: i64) -> Result<u32> {
    u64::try_from(value)
        .map_err(|_| CheckoutRules::HOLD_RULE)
        .and_then(CheckoutRules::hold_seconds)
        .map_err(|rule| ApiError::invalid(format!("holdSeconds {rule}.")))
}

fn max_per_buyer(value: i64) -> Result<u32> {
    u64::try_from(value)
        .map_err(|_| CheckoutRules::MAX_PER_BUYER_RULE)
        .and_then(CheckoutRules::max_per_buyer)
        .map_err(|rule| ApiError::invalid(format!("maxPerBuyer {rule}.")))
}

#[utoipa::path(put, path = "/api/admin/sales/{saleId}", tag = "admin", operation_id = "admin_put", security(("bearer" = [])),
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("force" = Option<bool>, Query, description = "replace a sale that has buyers"),
    ),
    request_body = SaleBody,
    responses(
        (status = 200, description = "Identical, or replaced", body = SaleView),
        (status = 201, description = "Created", body = SaleView),
        (status = 409, description = codes(&[Code::SaleHasBuyers]), body = Answer),
    ))]
pub async fn put(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    query: web::Query<ForceQuery>,
    body: web::Json<SaleBody>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let start_ms = body.start_time.timestamp_millis();
    let waiting_room = body
        .waiting_room
        .as_ref()
        .map(|room| room.room(&state, start_ms))
        .transpose()?;
    let seed = SaleSeed {
        product_name: product_name(&body.product_name)?,
        total_stock: units(body.total_stock, "totalStock")?,
        window: SaleWindow::new(body.start_time, body.end_time)
            .ok_or_else(|| ApiError::invalid(NOT_AFTER_START))?,
        checkout: CheckoutRules::new(
            u64::from(hold_seconds(body.hold_seconds.unwrap_or(0))?),
            u64::from(max_per_buyer(body.max_per_buyer.unwrap_or(1))?),
        )
        .map_err(|(field, rule)| ApiError::invalid(format!("{field} {rule}.")))?,
        waiting_room,
    };
    let status = match state.store.put_sale(&sale, &seed, query.force).await? {
        PutOutcome::HasBuyers => return Err(ApiError::SaleHasBuyers),
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Same | PutOutcome::Replaced => StatusCode::OK,
    };
    let view = SaleView::new(&sale, stats_or_404(&state, &sale).await?);
    Ok(HttpResponse::build(status).json(view))
}

/// Changes the name or the window. An `endTime` of now or earlier closes the sale: its end
/// becomes Redis's now and its start stays as it is, so closing a sale that has not started is
/// `400` like any other end not after the start (delete it, or move its start first).
#[utoipa::path(patch, path = "/api/admin/sales/{saleId}", tag = "admin", operation_id = "admin_patch", security(("bearer" = [])),
    params(("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "Changed", body = SaleView),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
    ))]
pub async fn patch(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let name = body.product_name.as_deref().map(product_name).transpose()?;
    let close_now = body.end_time.is_some_and(|end| end <= Utc::now());
    let patch = SalePatch {
        product_name: name.as_ref().map(ProductName::as_str),
        start_ms: body.start_time.map(|t| t.timestamp_millis()),
        end_ms: body.end_time.map(|t| t.timestamp_millis()),
        close_now,
        hold_ms: body
            .hold_seconds
            .map(hold_seconds)
            .transpose()?
            .map(|seconds| i64::from(seconds) * 1000),
        max_per_buyer: body
            .max_per_buyer
            .map(max_per_buyer)
            .transpose()?
            .map(i64::from),
        room: match &body.waiting_room {
            None => None,
            Some(None) => Some(None),
            Some(Some(room)) => {
                // The room's default opening and its rule follow the sale's start.
                let start_ms = match body.start_time {
                    Some(start) => start.timestamp_millis(),
                    None => stats_or_404(&state, &sale).await?.start_ms,
                };
                Some(Some(room.room(&state, start_ms)?))
            }
        },
    };
    match state.store.patch_sale(&sale, patch).await? {
        PatchOutcome::NotFound => Err(ApiError::SaleNotFound),
        PatchOutcome::BadWindow if close_now => Err(ApiError::invalid(
            "endTime must be after startTime: a sale that has not started cannot be closed \
             (DELETE it, or move its startTime first).",
        )),
        PatchOutcome::BadWindow => Err(ApiError::invalid(NOT_AFTER_START)),
        PatchOutcome::RoomAfterEnd => Err(ApiError::invalid(
            "waitingRoom.opensAt must be before the sale's end.",
        )),
        PatchOutcome::Done => {
            Ok(HttpResponse::Ok().json(SaleView::new(&sale, stats_or_404(&state, &sale).await?)))
        }
    }
}

#[utoipa::path(post, path = "/api/admin/sales/{saleId}/restock", tag = "admin", operation_id = "admin_restock", security(("bearer" = [])),
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$"),
    ),
    request_body = RestockBody,
    responses(
        (status = 200, description = "The totals after the restock", body = RestockAnswer),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
    ))]
pub async fn restock(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    key: IdempotencyKey,
    body: web::Json<RestockBody>,
) -> Result<HttpResponse> {
    let units = units(body.units, "units")?;
    let restocked = state
        .store
        .restock(&sale, units, key.or_fresh().as_str())
        .await?
        .ok_or(ApiError::SaleNotFound)?;
    Ok(HttpResponse::Ok().json(RestockAnswer {
        sale_id: sale.to_string(),
        total_stock: restocked.total_stock,
        remaining_stock: restocked.remaining_stock,
    }))
}

#[utoipa::path(get, path = "/api/admin/sales/{saleId}", tag = "admin", operation_id = "admin_get", security(("bearer" = [])),
    params(("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "Config and counters", body = SaleView),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
    ))]
pub async fn get(_: Admin, state: web::Data<AppState>, sale: SaleId) -> Result<HttpResponse> {
    let view = SaleView::new(&sale, stats_or_404(&state, &sale).await?);
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(delete, path = "/api/admin/sales/{saleId}", tag = "admin", operation_id = "admin_delete", security(("bearer" = [])),
    params(("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 204, description = "Every key of the sale removed"),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
    ))]
pub async fn delete(_: Admin, state: web::Data<AppState>, sale: SaleId) -> Result<HttpResponse> {
    if state.store.delete_sale(&sale).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::SaleNotFound)
    }
}

#[utoipa::path(get, path = "/api/admin/sales", tag = "admin", operation_id = "admin_list", security(("bearer" = [])),
    params(
        ("offset" = Option<u64>, Query, maximum = 1_000_000_000),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "The sales that exist, oldest first", body = SaleList),
    ))]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let offset = query.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::invalid(format!(
            "offset must be at most {MAX_OFFSET}."
        )));
    }
    let limit = page_limit(query.limit, 100)?;
    let sales = state.store.list_sales(offset, limit).await?;
    let next_offset = (sales.len() as u64 == limit).then_some(offset + limit);
    Ok(HttpResponse::Ok().json(SaleList { sales, next_offset }))
}
