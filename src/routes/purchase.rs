//! `POST …/purchase`: validate, run `lua/purchase.lua` once, answer (README, The API).

use super::{
    extract::{request_id, IdempotencyKey},
    openapi::{codes, codes_and},
    AppState,
};
use crate::{
    domain::{CheckoutRules, Code, PurchaseOutcome, SaleId, UserId},
    error::{Answer, ApiError, Result},
    store::Ask,
};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::sync::OnceLock;

/// The purchase body. `userId` is required unless a bearer token names the buyer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseRequest {
    /// 1–128 of `A–Z a–z 0–9 . _ - @ + : |`; required unless a bearer token names the buyer.
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9._@+:|\-]{1,128}$")]
    pub user_id: Option<UserId>,
    /// Units for this one order (default 1); at most the sale's `maxPerBuyer` (README, Checkout).
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: Option<i64>,
}

/// The units a purchase asks for: 1 to [`CheckoutRules::MAX_PER_BUYER`], checked before Redis
/// (the sale's own `maxPerBuyer` is checked by the script).
fn quantity(value: Option<i64>) -> Result<u32> {
    let most = CheckoutRules::MAX_PER_BUYER;
    match value {
        None => Ok(1),
        Some(units) => u64::try_from(units)
            .ok()
            .filter(|units| (1..=most).contains(units))
            .map(|units| units as u32)
            .ok_or_else(|| ApiError::invalid(format!("quantity must be 1 to {most}."))),
    }
}

#[utoipa::path(post, path = "/api/sales/{saleId}/purchase", tag = "sales", operation_id = "sale_purchase",
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII; a retry with the same key gets the same answer", pattern = r"^[!-~]{1,255}$"),
        ("Flashsale-Admission" = Option<String>, Header, description = "With the waiting room on: the admission of the queue's answer"),
    ),
    request_body = PurchaseRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = codes_and(&[Code::Purchased, Code::Reserved], "RESERVED on a sale with holds"), body = Answer),
        (status = 400, description = codes_and(&[Code::InvalidRequest], "a malformed body, or a quantity over the sale's maxPerBuyer"), body = Answer),
        (status = 401, description = codes_and(&[Code::Unauthorized], "token verification on"), body = Answer),
        (status = 403, description = codes_and(&[Code::SaleNotStarted, Code::Forbidden, Code::NotAdmitted], "not started, a token for another user, or (waiting room on) no valid admission"), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
        (status = 409, description = codes(&[Code::AlreadyPurchased, Code::AlreadyReserved]), body = Answer),
        (status = 410, description = codes(&[Code::SoldOut, Code::SaleEnded]), body = Answer),
        (status = 503, description = codes_and(&[Code::ServiceUnavailable], "retry with the same Idempotency-Key"), body = Answer, headers(("Retry-After" = u64))),
    ))]
pub async fn purchase(
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
    key: IdempotencyKey,
    body: web::Json<PurchaseRequest>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let quantity = quantity(body.quantity)?;
    let buyer = state.buyer(&request, body.user_id).await?;
    let admission_expires_ms = super::queue::admission(&state, &request, &sale, &buyer).await?;
    let outcome = state
        .store
        .purchase(
            &sale,
            buyer,
            key.0,
            state.user_attempts,
            &request_id(&request),
            Ask {
                quantity,
                admission_expires_ms,
            },
        )
        .await?;
    if outcome.code == Code::NotAdmitted {
        // The room was switched on after this instance last read it.
        state.rooms.forget(&sale).await;
    } else if admission_expires_ms > 0 && outcome.is_success() {
        crate::metrics::queue_admission_used(sale.as_str());
    }
    crate::metrics::purchase(sale.as_str(), outcome.code.as_str());
    if outcome.code == Code::RateLimited {
        crate::metrics::rate_limited("user");
    }
    if outcome == SOLD_OUT_AT_ZERO {
        // Most of what a sold-out flood is answered, refused without Redis: the same body each
        // time (README, Benchmarks: after sell-out).
        static BODY: OnceLock<web::Bytes> = OnceLock::new();
        return Ok(Answer::outcome(&outcome).respond_same(&BODY));
    }
    Ok(Answer::outcome(&outcome).respond(outcome.retry_after))
}

/// A plain sale's SOLD_OUT with nothing left.
const SOLD_OUT_AT_ZERO: PurchaseOutcome = PurchaseOutcome {
    code: Code::SoldOut,
    remaining: 0,
    purchase: None,
    retry_after: None,
    checkout: None,
};
