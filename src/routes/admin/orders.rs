//! `/api/admin/sales/{saleId}/buyers` and `…/orders/dead[/redrive]`: a sale's buyers in
//! purchase order (JSON pages or a CSV stream), and the orders whose webhook died.

use super::{page_limit, stats_or_404, MAX_PAGE};
use crate::{
    domain::{rfc3339_ms, Code, SaleId},
    error::{Answer, ApiError, Result},
    routes::{extract::Admin, openapi::codes, AppState},
    store::{checkout::BuyerState, DeadOrder, OrderEntry},
};
use actix_web::{
    http::header::{self, HeaderValue},
    web, HttpRequest, HttpResponse,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyersQuery {
    cursor: Option<String>,
    limit: Option<u64>,
    state: Option<BuyerState>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedriveQuery {
    limit: Option<u64>,
}

/// A stream entry id, as a cursor: `<ms>-<seq>`. The largest id is refused: a page starts
/// after its cursor, and nothing comes after that one (Redis would refuse the range).
fn cursor(value: Option<&str>) -> Result<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let valid = value.split_once('-').is_some_and(|(ms, seq)| {
        match (ms.parse::<u64>(), seq.parse::<u64>()) {
            (Ok(ms), Ok(seq)) => (ms, seq) != (u64::MAX, u64::MAX),
            _ => false,
        }
    });
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

/// One buyer, in purchase order.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuyerRow {
    user_id: String,
    order_number: i64,
    purchase_time: String,
    /// Units in the order (1 unless the sale allows more per buyer).
    quantity: i64,
}

impl From<OrderEntry> for BuyerRow {
    fn from(order: OrderEntry) -> Self {
        Self {
            user_id: order.user_id,
            order_number: order.order_number,
            purchase_time: rfc3339_ms(order.purchase_ms),
            quantity: order.quantity,
        }
    }
}

/// A page of buyers.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuyerPage {
    buyers: Vec<BuyerRow>,
    /// The `cursor` of the next page; `null` after the last.
    next_cursor: Option<String>,
}

/// Buyers in purchase order, a page at a time; with `Accept: text/csv`, every buyer as CSV,
/// streamed a page at a time so memory stays bounded whatever the number of buyers.
#[utoipa::path(get, path = "/api/admin/sales/{saleId}/buyers", tag = "admin", operation_id = "admin_buyers", security(("bearer" = [])),
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("cursor" = Option<String>, Query, description = "nextCursor of the previous page", pattern = r"^[0-9]{1,19}-[0-9]{1,19}$"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000),
        ("state" = Option<String>, Query, description = "confirmed (default), held or released: a checkout sale's buyers in that state", pattern = "^(confirmed|held|released)$"),
    ),
    responses(
        (status = 200, description = "A page of buyers, or every buyer as CSV with Accept: text/csv. A page may hold fewer rows than limit (even none) while nextCursor is set: the order stream is read limit entries at a time and filtered by state", body = BuyerPage),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
    ))]
pub async fn buyers(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
    query: web::Query<BuyersQuery>,
) -> Result<HttpResponse> {
    stats_or_404(&state, &sale).await?;
    let after = cursor(query.cursor.as_deref())?;
    let wanted = query.state.unwrap_or(BuyerState::Confirmed);
    let wants_csv = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    if wants_csv {
        return Ok(csv_export(state, sale, after, wanted));
    }
    let limit = page_limit(query.limit, 100)?;
    let page = state
        .store
        .buyers_page(&sale, after.as_deref(), limit, wanted)
        .await?;
    let next_cursor = (page.read == limit).then_some(page.last_read).flatten();
    let buyers = page.rows.into_iter().map(BuyerRow::from).collect();
    Ok(HttpResponse::Ok().json(BuyerPage {
        buyers,
        next_cursor,
    }))
}

fn csv_export(
    state: web::Data<AppState>,
    sale: SaleId,
    after: Option<String>,
    wanted: BuyerState,
) -> HttpResponse {
    struct Export {
        state: web::Data<AppState>,
        sale: SaleId,
        after: Option<String>,
        wanted: BuyerState,
        started: bool,
        done: bool,
    }
    let export = Export {
        state,
        sale,
        after,
        wanted,
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
            chunk.push_str("userId,orderNumber,purchaseTime,quantity\n");
        }
        let page = export
            .state
            .store
            .buyers_page(
                &export.sale,
                export.after.as_deref(),
                MAX_PAGE,
                export.wanted,
            )
            .await;
        match page {
            Ok(page) => {
                export.done = page.read < MAX_PAGE;
                export.after = page.last_read;
                // userIds hold no comma, quote or newline (their character set), so no quoting.
                for order in page.rows {
                    let row = BuyerRow::from(order);
                    chunk.push_str(&format!(
                        "{},{},{},{}\n",
                        csv_text(&row.user_id),
                        row.order_number,
                        row.purchase_time,
                        row.quantity
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

/// A text cell as spreadsheets may open it: one that begins with `=`, `+`, `-`, `@`, a tab or
/// a carriage return would be evaluated as a formula (CSV injection), so it gets a leading `'`,
/// as OWASP's guidance says. userIds may begin with `+`, `-` or `@`.
fn csv_text(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
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
    /// The event's type, as its delivery carries it (README, Checkout: the order stream).
    #[serde(rename = "type")]
    kind: String,
    sale_id: String,
    user_id: String,
    order_number: i64,
    quantity: i64,
    purchase_time: String,
    request_id: String,
    attempts: i64,
    last_error: String,
}

impl From<DeadOrder> for DeadOrderRow {
    fn from(dead: DeadOrder) -> Self {
        let order = dead.order;
        Self {
            dead_time: rfc3339_ms(dead.dead_ms),
            dead_id: dead.dead_id,
            event_id: order.event_id,
            kind: order.kind,
            sale_id: order.sale_id,
            user_id: order.user_id,
            order_number: order.order_number,
            quantity: order.quantity,
            purchase_time: rfc3339_ms(order.purchase_ms),
            request_id: order.request_id,
            attempts: dead.attempts,
            last_error: dead.last_error,
        }
    }
}

/// A page of dead orders.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadOrderPage {
    orders: Vec<DeadOrderRow>,
    /// The `cursor` of the next page; `null` after the last.
    next_cursor: Option<String>,
}

/// What a re-drive did.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redriven {
    /// Dead orders queued for delivery again, with their `eventId`.
    redriven: u64,
    /// Dead orders left.
    remaining: u64,
}

/// Dead orders, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/admin/sales/{saleId}/orders/dead", tag = "admin", operation_id = "admin_dead_orders", security(("bearer" = [])),
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("cursor" = Option<String>, Query, description = "nextCursor of the previous page", pattern = r"^[0-9]{1,19}-[0-9]{1,19}$"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "Orders whose webhook failed every attempt", body = DeadOrderPage),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
    ))]
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
    let next_cursor = next_cursor(&page, limit, |dead| &dead.dead_id);
    let orders = page.into_iter().map(DeadOrderRow::from).collect();
    Ok(HttpResponse::Ok().json(DeadOrderPage {
        orders,
        next_cursor,
    }))
}

/// Sends up to `limit` (default 1000) dead orders back for delivery, oldest first.
#[utoipa::path(post, path = "/api/admin/sales/{saleId}/orders/dead/redrive", tag = "admin", operation_id = "admin_redrive", security(("bearer" = [])),
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("limit" = Option<u64>, Query, description = "at most this many, oldest first (default 1000)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "Dead orders queued for delivery again", body = Redriven),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
    ))]
pub async fn redrive(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    query: web::Query<RedriveQuery>,
) -> Result<HttpResponse> {
    stats_or_404(&state, &sale).await?;
    let limit = page_limit(query.limit, MAX_PAGE)?;
    let (redriven, remaining) = state.store.redrive_dead(&sale, limit).await?;
    Ok(HttpResponse::Ok().json(Redriven {
        redriven,
        remaining,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_evaluate_are_quoted() {
        for (cell, shown) in [
            ("+4512345", "'+4512345"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("=1+1", "'=1+1"),
            ("ann@example.com", "ann@example.com"),
        ] {
            assert_eq!(csv_text(cell), shown);
        }
    }

    #[test]
    fn a_cursor_is_a_stream_id_other_than_the_last() {
        assert!(cursor(Some("1700000000000-0")).is_ok());
        assert!(cursor(Some("18446744073709551615-18446744073709551614")).is_ok());
        for bad in [
            "18446744073709551615-18446744073709551615",
            "18446744073709551616-0",
            "1-",
            "x-1",
        ] {
            assert!(cursor(Some(bad)).is_err(), "{bad}");
        }
    }
}
