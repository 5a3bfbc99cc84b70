//! `POST /api/sale/purchase`: validate, run `lua/purchase.lua` once, answer (SPEC §3).

use super::AppState;
use crate::{
    domain::{rfc3339_ms, Purchase, PurchaseOutcome, RequestToken, UserId},
    error::{retry_after_secs, ApiError, Result},
};
use actix_web::{
    error::JsonPayloadError,
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use serde::{Deserialize, Serialize};

/// Bodies over this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseRequest {
    pub user_id: UserId,
}

/// Body limit and JSON errors mapped to the SPEC's codes (400, 413, 415).
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| {
            let api_error = match err {
                JsonPayloadError::Overflow { limit }
                | JsonPayloadError::OverflowKnownLength { limit, .. } => {
                    ApiError::PayloadTooLarge { limit }
                }
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
                JsonPayloadError::Deserialize(err) => {
                    ApiError::InvalidRequest(format!("invalid JSON body: {err}"))
                }
                other => ApiError::InvalidRequest(format!("could not read the body: {other}")),
            };
            api_error.into()
        })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PurchaseBody {
    success: bool,
    code: &'static str,
    message: &'static str,
    remaining_stock: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    purchase_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_number: Option<i64>,
}

pub async fn purchase(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<PurchaseRequest>,
) -> Result<HttpResponse> {
    let token = match request.headers().get(IDEMPOTENCY_KEY) {
        Some(key) => {
            RequestToken::from_idempotency_key(key.as_bytes()).map_err(ApiError::InvalidRequest)?
        }
        None => RequestToken::generate(),
    };
    let outcome = state
        .store
        .get()
        .await?
        .purchase(body.into_inner().user_id, token, state.user_attempts)
        .await?;
    answer(outcome)
}

fn answer(outcome: PurchaseOutcome) -> Result<HttpResponse> {
    let (status, code, message, remaining, purchase) = match outcome {
        PurchaseOutcome::Purchased {
            remaining,
            purchase,
        } => (
            StatusCode::OK,
            "PURCHASED",
            "You got one! Your unit is reserved.",
            remaining,
            Some(purchase),
        ),
        PurchaseOutcome::AlreadyPurchased {
            remaining,
            purchase,
        } => (
            StatusCode::CONFLICT,
            "ALREADY_PURCHASED",
            "You have already bought this item.",
            remaining,
            Some(purchase),
        ),
        PurchaseOutcome::SoldOut => (
            StatusCode::GONE,
            "SOLD_OUT",
            "Sold out: no units left.",
            0,
            None,
        ),
        PurchaseOutcome::NotStarted { remaining } => (
            StatusCode::FORBIDDEN,
            "SALE_NOT_STARTED",
            "The sale has not started yet.",
            remaining,
            None,
        ),
        PurchaseOutcome::Ended { remaining } => (
            StatusCode::GONE,
            "SALE_ENDED",
            "The sale has ended.",
            remaining,
            None,
        ),
        PurchaseOutcome::RateLimited {
            remaining,
            retry_after,
        } => {
            let body = body(
                false,
                "RATE_LIMITED",
                "Too many attempts; wait and retry.",
                remaining,
                None,
            );
            return Ok(HttpResponse::TooManyRequests()
                .insert_header((header::RETRY_AFTER, retry_after_secs(retry_after)))
                .json(body));
        }
        PurchaseOutcome::SaleNotFound => return Err(ApiError::SaleNotFound),
    };
    Ok(HttpResponse::build(status).json(body(
        status.is_success(),
        code,
        message,
        remaining,
        purchase,
    )))
}

fn body(
    success: bool,
    code: &'static str,
    message: &'static str,
    remaining: i64,
    purchase: Option<Purchase>,
) -> PurchaseBody {
    PurchaseBody {
        success,
        code,
        message,
        remaining_stock: remaining.max(0),
        purchase_time: purchase.map(|p| rfc3339_ms(p.purchase_ms)),
        order_number: purchase.map(|p| p.order_number),
    }
}
