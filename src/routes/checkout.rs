//! Orders of checkout sales (README, Checkout): an order as JSON ([`OrderView`]), what an order
//! change answers, and the buyer's `DELETE …/reservation`.

use super::{extract::request_id, openapi::codes, AppState};
use crate::{
    domain::{rfc3339_ms, Code, SaleId},
    error::{Answer, ApiError, Result},
    store::{OrderAction, OrderChange, OrderRecord, OrderRef},
};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

/// The header that carries a hold's `reservationToken` (never the URL: URLs end up in logs).
pub const RESERVATION_HEADER: &str = "flashsale-reservation";

/// One step of an order's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderStepView {
    /// `held`, `confirmed`, `released` or `refund_required`.
    state: String,
    /// On Redis's clock (RFC 3339, ms).
    time: String,
    /// `expired` or `cancelled` for `released`; `resold` or `reordered` for `refund_required`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// An order of a checkout sale and its history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    sale_id: String,
    order_number: i64,
    user_id: String,
    quantity: i64,
    /// `held` (waiting for payment), `confirmed` (paid), `released` (expired or cancelled: its
    /// units went back to stock) or `refund_required` (paid after its units were sold again).
    state: String,
    /// Confirmed after its hold had expired.
    late: bool,
    created_time: String,
    /// When an unpaid hold ends; absent on an order that never had a hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_expires_at: Option<String>,
    history: Vec<OrderStepView>,
}

impl OrderView {
    pub fn new(sale: &SaleId, record: OrderRecord) -> Self {
        Self {
            sale_id: sale.to_string(),
            order_number: record.order_number,
            user_id: record.user_id,
            quantity: record.quantity,
            state: record.state,
            late: record.late,
            created_time: rfc3339_ms(record.created_ms),
            hold_expires_at: (record.hold_expires_ms > 0)
                .then(|| rfc3339_ms(record.hold_expires_ms)),
            history: record
                .history
                .into_iter()
                .map(|step| OrderStepView {
                    state: step.state,
                    time: rfc3339_ms(step.at),
                    reason: step.reason,
                })
                .collect(),
        }
    }
}

/// The order after a change, or the error its outcome is (one mapping for every caller).
pub fn order_or_error(sale: &SaleId, change: OrderChange) -> Result<OrderView> {
    match change {
        OrderChange::SaleNotFound => Err(ApiError::SaleNotFound),
        OrderChange::OrderNotFound => Err(ApiError::OrderNotFound),
        OrderChange::Done(record) | OrderChange::Duplicate(record) => {
            Ok(OrderView::new(sale, record))
        }
        OrderChange::HoldExpired(_) => Err(ApiError::HoldExpired),
        OrderChange::Confirmed(_) => Err(ApiError::OrderConfirmed),
    }
}

/// An order number from the path: 1 or more.
pub fn order_number(text: &str) -> Result<u64> {
    text.parse::<u64>()
        .ok()
        .filter(|n| (1..=i64::MAX as u64).contains(n))
        .ok_or_else(|| ApiError::invalid("orderNumber must be a whole number from 1."))
}

/// A `reservationToken` from its header: `<orderNumber>.<32 hex digits>`.
fn reservation_token(request: &HttpRequest) -> Result<Option<(u64, &str)>> {
    let Some(value) = request.headers().get(RESERVATION_HEADER) else {
        return Ok(None);
    };
    let malformed = || {
        ApiError::invalid(
            "Flashsale-Reservation must be the reservationToken of a RESERVED answer.",
        )
    };
    let token = value.to_str().map_err(|_| malformed())?;
    let (order, secret) = token.split_once('.').ok_or_else(malformed)?;
    let order = order_number(order).map_err(|_| malformed())?;
    if secret.len() != 32 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed());
    }
    Ok(Some((order, token)))
}

/// The buyer gives their hold back: its units return to stock at once. The buyer is the one
/// the bearer token names when Trusted buyers is on; otherwise whoever holds the hold's
/// `reservationToken`. Repeating it answers the released order again (with the token).
#[utoipa::path(delete, path = "/api/sales/{saleId}/reservation", tag = "sales", operation_id = "sale_cancel_reservation",
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("Flashsale-Reservation" = Option<String>, Header, description = "the reservationToken of the RESERVED answer; required unless a bearer token names the buyer", pattern = r"^[0-9]{1,19}\.[0-9a-fA-F]{32}$"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The order, released (or as it already was)", body = OrderView),
        (status = 400, description = codes(&[Code::InvalidRequest]), body = Answer),
        (status = 401, description = codes(&[Code::Unauthorized]), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound, Code::OrderNotFound]), body = Answer),
        (status = 409, description = codes(&[Code::OrderConfirmed]), body = Answer),
    ))]
pub async fn cancel_reservation(
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
) -> Result<HttpResponse> {
    let token = reservation_token(&request)?;
    let buyer = match &state.verifier {
        Some(_) => Some(state.buyer(&request, None).await?),
        None => None,
    };
    let order =
        match (&buyer, token) {
            (Some(user), Some((order_number, token))) => OrderRef::BuyerToken {
                user: user.as_str(),
                order_number,
                token,
            },
            (Some(user), None) => OrderRef::Buyer(user.as_str()),
            (None, Some((order_number, token))) => OrderRef::Token {
                order_number,
                token,
            },
            (None, None) => return Err(ApiError::invalid(
                "Flashsale-Reservation is required: the reservationToken of the RESERVED answer.",
            )),
        };
    let change = state
        .store
        .order(
            &sale,
            OrderAction::Cancel,
            order,
            &request_id(&request),
            None,
        )
        .await?;
    Ok(HttpResponse::Ok().json(order_or_error(&sale, change)?))
}
