//! `/api/admin/sales/{saleId}/orders/{orderNumber}[/confirm|/cancel]`: the shop's backend reads
//! an order, confirms it once paid, or cancels it (README, Checkout).

use crate::{
    domain::{Code, SaleId},
    error::{Answer, Result},
    routes::{
        checkout::{order_number, order_or_error, OrderView},
        extract::{path_segment, request_id, Admin},
        openapi::codes,
        AppState,
    },
    store::{OrderAction, OrderRef},
};
use actix_web::{web, HttpRequest, HttpResponse};

async fn change(
    state: &AppState,
    sale: &SaleId,
    request: &HttpRequest,
    action: OrderAction,
) -> Result<HttpResponse> {
    let number = order_number(&path_segment(request, "orderNumber")?)?;
    let change = state
        .store
        .order(
            sale,
            action,
            OrderRef::Number(number),
            &request_id(request),
            None,
        )
        .await?;
    Ok(HttpResponse::Ok().json(order_or_error(sale, change)?))
}

#[utoipa::path(get, path = "/api/admin/sales/{saleId}/orders/{orderNumber}", tag = "admin", operation_id = "admin_order", security(("bearer" = [])),
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("orderNumber" = u64, Path, minimum = 1),
    ),
    responses(
        (status = 200, description = "The order's state and history", body = OrderView),
        (status = 400, description = codes(&[Code::InvalidRequest]), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound, Code::OrderNotFound]), body = Answer),
    ))]
pub async fn order(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
) -> Result<HttpResponse> {
    change(&state, &sale, &request, OrderAction::Read).await
}

/// The order is paid: held units become confirmed. Idempotent. A payment after the hold
/// expired takes the units again if they are still free (`late: true`); if they were sold to
/// someone else it is `409 HOLD_EXPIRED` and the order stream says `order.refund_required`.
#[utoipa::path(post, path = "/api/admin/sales/{saleId}/orders/{orderNumber}/confirm", tag = "admin", operation_id = "admin_order_confirm", security(("bearer" = [])),
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("orderNumber" = u64, Path, minimum = 1),
    ),
    responses(
        (status = 200, description = "Confirmed (now, late, or already)", body = OrderView),
        (status = 400, description = codes(&[Code::InvalidRequest]), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound, Code::OrderNotFound]), body = Answer),
        (status = 409, description = codes(&[Code::HoldExpired]), body = Answer),
    ))]
pub async fn confirm(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
) -> Result<HttpResponse> {
    change(&state, &sale, &request, OrderAction::Confirm).await
}

/// The order is given up: held units return to stock at once. Idempotent; a paid order is
/// not cancelled here (`409 ORDER_CONFIRMED`).
#[utoipa::path(post, path = "/api/admin/sales/{saleId}/orders/{orderNumber}/cancel", tag = "admin", operation_id = "admin_order_cancel", security(("bearer" = [])),
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("orderNumber" = u64, Path, minimum = 1),
    ),
    responses(
        (status = 200, description = "Released (now or already)", body = OrderView),
        (status = 400, description = codes(&[Code::InvalidRequest]), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound, Code::OrderNotFound]), body = Answer),
        (status = 409, description = codes(&[Code::OrderConfirmed]), body = Answer),
    ))]
pub async fn cancel(
    _: Admin,
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
) -> Result<HttpResponse> {
    change(&state, &sale, &request, OrderAction::Cancel).await
}
