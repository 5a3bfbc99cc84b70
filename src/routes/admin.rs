//! `/api/admin`: set up, change, restock, watch, export and delete sales. Mounted only when
//! `ADMIN_TOKEN` is set; every route needs `Authorization: Bearer $ADMIN_TOKEN`, compared in
//! constant time.

use super::{purchase::json_error, AppState};
use crate::{
    config::{AdminToken, MAX_TOTAL_STOCK},
    domain::{rfc3339_ms, RequestToken, SaleId, SaleSnapshot},
    error::{ApiError, Result},
    store::{
        admin::{Order, PatchOutcome, PutOutcome, SaleStats},
        webhooks::DeadOrder,
        SaleSeed,
    },
};
use actix_web::{
    dev::Payload,
    http::header::{self, HeaderValue},
    web, FromRequest, HttpRequest, HttpResponse,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::{ready, Ready};

/// The most buyers one page holds.
pub const MAX_PAGE: u64 = 1_000;
/// The furthest a sales listing may start.
pub const MAX_OFFSET: u64 = 1_000_000_000;
/// Admin bodies are small.
const MAX_BODY_BYTES: usize = 4 * 1024;

/// Proof that the request carries the admin token. First among a handler's extractors, so an
/// unauthorised request is refused before its body is read.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let expected = req.app_data::<web::Data<AdminToken>>();
        let given = super::bearer_token(req);
        let allowed = match (expected, given) {
            (Some(expected), Some(given)) => {
                constant_time_eq::constant_time_eq(expected.expose().as_bytes(), given.as_bytes())
            }
            _ => false,
        };
        ready(if allowed {
            Ok(Admin)
        } else {
            tracing::info!("admin request refused: missing or wrong token");
            crate::metrics::admin_refused();
            Err(ApiError::Unauthorized {
                invalid_token: given.is_some(),
            })
        })
    }
}

/// The admin routes, under `/api/admin`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| json_error(err).into());
    let query = web::QueryConfig::default()
        .error_handler(|err, _req| ApiError::invalid(format!("Invalid query: {err}.")).into());
    cfg.app_data(json)
        .app_data(query)
        .service(super::resource("/sales", super::READ).route(super::read().to(list)))
        .service(
            super::resource("/sales/{saleId}", "GET, HEAD, PUT, PATCH, DELETE")
                .route(super::read().to(get))
                .route(web::put().to(put))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        )
        .service(super::resource("/sales/{saleId}/restock", "POST").route(web::post().to(restock)))
        .service(
            super::resource("/sales/{saleId}/buyers", super::READ).route(super::read().to(buyers)),
        )
        .service(
            super::resource("/sales/{saleId}/orders/dead", super::READ)
                .route(super::read().to(dead_orders)),
        )
        .service(
            super::resource("/sales/{saleId}/orders/dead/redrive", "POST")
                .route(web::post().to(redrive)),
        );
}

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
    end_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestockBody {
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    units: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<u64>,
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
    /// remaining + buyers = total (SPEC invariant 3), and one order per buyer.
    consistent: bool,
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
            consistent: stats.remaining + stats.buyers == stats.total_stock
                && stats.orders == stats.buyers,
        }
    }
}

fn product_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "productName must be 1 to 200 characters, none of them control characters.",
        ));
    }
    Ok(name.to_owned())
}

fn units(value: i64, field: &str) -> Result<u64> {
    u64::try_from(value)
        .ok()
        .filter(|units| (1..=MAX_TOTAL_STOCK).contains(units))
        .ok_or_else(|| ApiError::invalid(format!("{field} must be 1 to {MAX_TOTAL_STOCK}.")))
}

async fn stats_or_404(state: &AppState, sale: &SaleId) -> Result<SaleStats> {
    state
        .store
        .sale_stats(sale)
        .await?
        .ok_or(ApiError::SaleNotFound)
}

pub async fn put(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    query: web::Query<ForceQuery>,
    body: web::Json<SaleBody>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let seed = SaleSeed {
        product_name: product_name(&body.product_name)?,
        total_stock: units(body.total_stock, "totalStock")?,
        start: body.start_time,
        end: body.end_time,
    };
    if seed.end <= seed.start {
        return Err(ApiError::invalid("endTime must be after startTime."));
    }
    let outcome = state.store.put_sale(&sale, &seed, query.force).await?;
    let status = match outcome {
        PutOutcome::HasBuyers => return Err(ApiError::SaleHasBuyers),
        PutOutcome::Created => actix_web::http::StatusCode::CREATED,
        PutOutcome::Same | PutOutcome::Replaced => actix_web::http::StatusCode::OK,
    };
    let view = SaleView::new(&sale, stats_or_404(&state, &sale).await?);
    Ok(HttpResponse::build(status).json(view))
}

pub async fn patch(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let name = body.product_name.as_deref().map(product_name).transpose()?;
    let close_now = body.end_time.is_some_and(|end| end <= Utc::now());
    let outcome = state
        .store
        .patch_sale(
            &sale,
            name.as_deref(),
            body.start_time.map(|t| t.timestamp_millis()),
            body.end_time.map(|t| t.timestamp_millis()),
            close_now,
        )
        .await?;
    match outcome {
        PatchOutcome::NotFound => Err(ApiError::SaleNotFound),
        PatchOutcome::BadWindow => Err(ApiError::invalid("endTime must be after startTime.")),
        PatchOutcome::Done => {
            Ok(HttpResponse::Ok().json(SaleView::new(&sale, stats_or_404(&state, &sale).await?)))
        }
    }
}

pub async fn restock(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
    body: web::Json<RestockBody>,
) -> Result<HttpResponse> {
    let units = units(body.units, "units")?;
    let token = match request.headers().get("idempotency-key") {
        Some(key) => {
            RequestToken::from_idempotency_key(key.as_bytes()).map_err(ApiError::invalid)?
        }
        None => RequestToken::generate(),
    };
    let (total, remaining) = state
        .store
        .restock(&sale, units, token.as_str())
        .await?
        .ok_or(ApiError::SaleNotFound)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "saleId": sale.as_str(), "totalStock": total, "remainingStock": remaining,
    })))
}

pub async fn get(_: Admin, state: web::Data<AppState>, sale: SaleId) -> Result<HttpResponse> {
    let view = SaleView::new(&sale, stats_or_404(&state, &sale).await?);
    Ok(HttpResponse::Ok().json(view))
}

pub async fn delete(_: Admin, state: web::Data<AppState>, sale: SaleId) -> Result<HttpResponse> {
    if state.store.delete_sale(&sale).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::SaleNotFound)
    }
}

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
    let next = (sales.len() as u64 == limit).then_some(offset + limit);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sales": sales, "nextOffset": next })))
}

/// The number of entries asked for: `limit`, else `default`; at most [`MAX_PAGE`].
fn page_limit(limit: Option<u64>, default: u64) -> Result<u64> {
    match limit.unwrap_or(default) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(ApiError::invalid(format!("limit must be 1 to {MAX_PAGE}."))),
    }
}

/// A stream entry id, as a cursor: `<ms>-<seq>`.
fn cursor(value: Option<&str>) -> Result<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let valid = value
        .split_once('-')
        .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok());
    if valid {
        Ok(Some(value.to_owned()))
    } else {
        Err(ApiError::invalid(
            "cursor must be a nextCursor from an earlier page.",
        ))
    }
}

/// The cursor of the page after a full one: the id of its last entry.
fn next_cursor<T>(page: &[T], limit: u64, id: impl Fn(&T) -> &String) -> Option<String> {
    (page.len() as u64 == limit)
        .then(|| page.last().map(|entry| id(entry).clone()))
        .flatten()
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuyerRow {
    user_id: String,
    order_number: i64,
    purchase_time: String,
}

impl From<Order> for BuyerRow {
    fn from(order: Order) -> Self {
        Self {
            user_id: order.user_id,
            order_number: order.order_number,
            purchase_time: rfc3339_ms(order.purchase_ms),
        }
    }
}

/// Buyers in purchase order, a page at a time; with `Accept: text/csv`, every buyer as CSV,
/// streamed a page at a time so memory stays bounded whatever the number of buyers.
pub async fn buyers(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    stats_or_404(&state, &sale).await?;
    let after = cursor(query.cursor.as_deref())?;
    let wants_csv = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    if wants_csv {
        return Ok(csv_export(state, sale, after));
    }
    let limit = page_limit(query.limit, 100)?;
    let page = state
        .store
        .orders_page(&sale, after.as_deref(), limit)
        .await?;
    let next = next_cursor(&page, limit, |order| &order.id);
    let rows: Vec<BuyerRow> = page.into_iter().map(BuyerRow::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "buyers": rows, "nextCursor": next })))
}

fn csv_export(state: web::Data<AppState>, sale: SaleId, after: Option<String>) -> HttpResponse {
    struct Export {
        state: web::Data<AppState>,
        sale: SaleId,
        after: Option<String>,
        started: bool,
        done: bool,
    }
    let export = Export {
        state,
        sale,
        after,
        started: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(export, |mut export| async move {
        if export.done {
            return None;
        }
        let mut chunk = String::new();
        if !export.started {
            export.started = true;
            chunk.push_str("userId,orderNumber,purchaseTime\n");
        }
        let page = export
            .state
            .store
            .orders_page(&export.sale, export.after.as_deref(), MAX_PAGE)
            .await;
        match page {
            Ok(page) => {
                export.done = (page.len() as u64) < MAX_PAGE;
                export.after = page.last().map(|order| order.id.clone());
                // userIds hold no comma, quote or newline (their character set), so no quoting.
                for order in page {
                    let row = BuyerRow::from(order);
                    chunk.push_str(&format!(
                        "{},{},{}\n",
                        row.user_id, row.order_number, row.purchase_time
                    ));
                }
                Some((Ok::<_, ApiError>(web::Bytes::from(chunk)), export))
            }
            // Headers are sent already: end the body early; the client sees a short file and
            // the error is logged.
            Err(err) => {
                tracing::warn!(error = %err, "CSV export stopped: Redis failed");
                export.done = true;
                Some((Err(ApiError::from(err)), export))
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"buyers.csv\""),
        ))
        .streaming(stream)
}

/// An order whose webhook failed every attempt: the delivery's body fields, and why it died.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadOrderRow {
    /// Its id in the dead-letter stream: the cursor of the next page.
    dead_id: String,
    /// When it was moved there (RFC 3339, ms).
    dead_time: String,
    event_id: String,
    sale_id: String,
    user_id: String,
    order_number: i64,
    purchase_time: String,
    request_id: String,
    attempts: i64,
    last_error: String,
}

impl DeadOrderRow {
    fn new(dead: DeadOrder) -> Self {
        let DeadOrder { id, mut fields } = dead;
        let mut text = |name: &str| fields.remove(name).unwrap_or_default();
        let (event_id, sale_id, user_id, request_id, last_error) = (
            text("eventId"),
            text("saleId"),
            text("userId"),
            text("requestId"),
            text("lastError"),
        );
        let number = |value: String| value.parse::<i64>().unwrap_or_default();
        let dead_ms = id
            .split_once('-')
            .map_or(0, |(ms, _)| ms.parse().unwrap_or_default());
        Self {
            dead_time: rfc3339_ms(dead_ms),
            dead_id: id,
            event_id,
            sale_id,
            user_id,
            order_number: number(text("orderNumber")),
            purchase_time: rfc3339_ms(number(text("purchaseTime"))),
            request_id,
            attempts: number(text("attempts")),
            last_error,
        }
    }
}

/// Dead orders, oldest first, a page at a time.
pub async fn dead_orders(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    stats_or_404(&state, &sale).await?;
    let after = cursor(query.cursor.as_deref())?;
    let limit = page_limit(query.limit, 100)?;
    let page = state
        .store
        .dead_page(&sale, after.as_deref(), limit)
        .await?;
    let next = next_cursor(&page, limit, |dead| &dead.id);
    let rows: Vec<DeadOrderRow> = page.into_iter().map(DeadOrderRow::new).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "orders": rows, "nextCursor": next })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedriveQuery {
    limit: Option<u64>,
}

/// Sends up to `limit` (default 1000) dead orders back for delivery, oldest first.
pub async fn redrive(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    query: web::Query<RedriveQuery>,
) -> Result<HttpResponse> {
    stats_or_404(&state, &sale).await?;
    let limit = page_limit(query.limit, MAX_PAGE)?;
    let (redriven, remaining) = state.store.redrive_dead(&sale, limit).await?;
    Ok(
        HttpResponse::Ok()
            .json(serde_json::json!({ "redriven": redriven, "remaining": remaining })),
    )
}
