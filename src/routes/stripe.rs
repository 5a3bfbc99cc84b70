//! `POST /api/payments/stripe/webhook`: Stripe's Checkout Session events confirm or cancel an
//! order (README, Checkout: Stripe). Mounted only when `STRIPE_WEBHOOK_SECRET` is set.
//!
//! The signature is checked over the raw body before it is parsed; an event is applied once
//! (its id is remembered with the order, atomically); an event it does not act on is `200`
//! with nothing written, since Stripe retries anything else for three days.

use super::{extract::request_id, openapi::codes, AppState};
use crate::{
    checkout::stripe::{verify, Event, Intent},
    config::StripeSecret,
    domain::Code,
    error::{Answer, ApiError, Result},
    store::{OrderAction, OrderChange, OrderRef},
};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

/// The largest event accepted: a Checkout Session event is a few kilobytes.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// What Stripe is told (it reads only the status; the body is for the shop's dashboard).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeReceipt {
    received: bool,
    /// Set when the event type is not one flashsale acts on.
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_number: Option<i64>,
    /// The order's state after the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    /// This event id was applied before; nothing changed.
    duplicate: bool,
}

#[utoipa::path(post, path = "/api/payments/stripe/webhook", tag = "payments", operation_id = "stripe_webhook",
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256>")),
    request_body(content = String, content_type = "application/json", description = "A Stripe event, exactly as Stripe sent it"),
    responses(
        (status = 200, description = "Applied, applied before, or not an event flashsale acts on", body = StripeReceipt),
        (status = 400, description = codes(&[Code::InvalidRequest]), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound, Code::OrderNotFound]), body = Answer),
    ))]
pub async fn webhook(
    state: web::Data<AppState>,
    secret: web::Data<StripeSecret>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let header = request
        .headers()
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    if let Err(err) = verify(secret.expose(), header, &body, now) {
        tracing::info!(reason = %err, "stripe: event refused");
        return Err(ApiError::invalid(format!(
            "Stripe-Signature refused: {err}."
        )));
    }
    let event: Event = serde_json::from_slice(&body)
        .map_err(|err| ApiError::invalid(format!("Not a Stripe event: {err}.")))?;
    let Some(intent) = event.intent() else {
        return Ok(HttpResponse::Ok().json(StripeReceipt {
            received: true,
            ignored: Some(event.kind),
            order_number: None,
            state: None,
            duplicate: false,
        }));
    };
    let (sale, number) = event.order().ok_or_else(|| {
        ApiError::invalid(
            "The session names no order: set metadata.saleId and metadata.orderNumber.",
        )
    })?;
    let action = match intent {
        Intent::Confirm => OrderAction::Confirm,
        Intent::Cancel => OrderAction::Cancel,
    };
    let change = state
        .store
        .order(
            &sale,
            action,
            OrderRef::Number(number),
            &request_id(&request),
            Some(&event.id),
        )
        .await?;
    tracing::info!(sale_id = %sale, order_number = number, event_id = %event.id, kind = %event.kind, "stripe: event applied");
    let duplicate = matches!(change, OrderChange::Duplicate(_));
    let record = match change {
        OrderChange::SaleNotFound => return Err(ApiError::SaleNotFound),
        OrderChange::OrderNotFound => return Err(ApiError::OrderNotFound),
        // A paid order that needs a refund, or one already confirmed, is news for the order
        // stream (order.refund_required), not a failed delivery: Stripe is told it arrived.
        OrderChange::Done(record)
        | OrderChange::Duplicate(record)
        | OrderChange::HoldExpired(record)
        | OrderChange::Confirmed(record) => record,
    };
    Ok(HttpResponse::Ok().json(StripeReceipt {
        received: true,
        ignored: None,
        order_number: Some(record.order_number),
        state: Some(record.state),
        duplicate,
    }))
}
