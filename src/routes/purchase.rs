//! `POST …/purchase`: validate, run `lua/purchase.lua` once, answer (README, The API).

use super::{
    extract::{request_id, IdempotencyKey},
    openapi::{codes, codes_and},
    AppState,
};
use crate::{
    domain::{Code, SaleId, UserId},
    error::{Answer, Result},
};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// The purchase body. `userId` is required unless a bearer token names the buyer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseRequest {
    /// 1–128 of `A–Z a–z 0–9 . _ - @ + : |`; required unless a bearer token names the buyer.
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9._@+:|\-]{1,128}$")]
    pub user_id: Option<UserId>,
}

#[utoipa::path(post, path = "/api/sales/{saleId}/purchase", tag = "sales", operation_id = "sale_purchase",
    params(
        ("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII; a retry with the same key gets the same answer", pattern = r"^[!-~]{1,255}$"),
    ),
    request_body = PurchaseRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = codes(&[Code::Purchased]), body = Answer),
        (status = 401, description = codes_and(&[Code::Unauthorized], "token verification on"), body = Answer),
        (status = 403, description = codes_and(&[Code::SaleNotStarted, Code::Forbidden], "not started, or a token for another user"), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
        (status = 409, description = codes(&[Code::AlreadyPurchased]), body = Answer),
        (status = 410, description = codes(&[Code::SoldOut, Code::SaleEnded]), body = Answer),
        (status = 503, description = codes_and(&[Code::ServiceUnavailable], "retry with the same Idempotency-Key"), body = Answer, headers(("Retry-After" = u64))),
    ))]
pub async fn purchase(
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
    IdempotencyKey(token): IdempotencyKey,
    body: web::Json<PurchaseRequest>,
) -> Result<HttpResponse> {
    let buyer = state.buyer(&request, body.into_inner().user_id).await?;
    let outcome = state
        .store
        .purchase(
            &sale,
            buyer,
            token,
            state.user_attempts,
            &request_id(&request),
        )
        .await?;
    crate::metrics::purchase(sale.as_str(), outcome.code.as_str());
    if outcome.code == Code::RateLimited {
        crate::metrics::rate_limited("user");
    }
    Ok(
        Answer::purchase(outcome.code, Some(outcome.remaining), outcome.purchase)
            .respond(outcome.retry_after),
    )
}
