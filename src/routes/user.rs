//! `GET …/user/{userId}`: whether a user holds a unit, and since when.

use super::{
    extract::path_segment,
    openapi::{codes, codes_and},
    AppState,
};
use crate::{
    domain::{rfc3339_ms, Code, SaleId, UserId},
    error::{Answer, ApiError, Result},
};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserBody {
    user_id: String,
    /// The user holds a paid unit (on a sale with holds, a held order is not purchased yet).
    has_purchased: bool,
    purchase_time: Option<String>,
    order_number: Option<i64>,
    /// Checkout sales (README, Checkout): the order's units.
    #[serde(skip_serializing_if = "Option::is_none")]
    quantity: Option<i64>,
    /// Checkout sales: `held` (waiting for payment until `holdExpiresAt`) or `confirmed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_expires_at: Option<String>,
}

#[utoipa::path(get, path = "/api/sales/{saleId}/user/{userId}", tag = "sales", operation_id = "sale_user",
    params(
        ("saleId" = String, Path, description = "1–64 of A–Z a–z 0–9 _ -", pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("userId" = String, Path, pattern = r"^[A-Za-z0-9._@+:|-]{1,128}$"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The user's unit, if any", body = UserBody),
        (status = 401, description = codes_and(&[Code::Unauthorized], "token verification on"), body = Answer),
        (status = 403, description = codes(&[Code::Forbidden]), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
    ))]
pub async fn user(
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
) -> Result<HttpResponse> {
    let user = path_segment(&request, "userId")?;
    let user = UserId::parse(user).map_err(ApiError::invalid)?;
    let user = state.buyer(&request, Some(user)).await?;
    let record = state
        .store
        .user(&sale, &user)
        .await?
        .ok_or(ApiError::SaleNotFound)?;
    let held_until = record.checkout.and_then(|order| order.hold_expires_ms);
    Ok(HttpResponse::Ok().json(UserBody {
        user_id: user.into_string(),
        has_purchased: record.purchase.is_some() && held_until.is_none(),
        purchase_time: record.purchase.map(|p| rfc3339_ms(p.purchase_ms)),
        order_number: record.purchase.map(|p| p.order_number),
        quantity: record.checkout.map(|order| order.quantity),
        state: record.checkout.map(|order| match order.hold_expires_ms {
            Some(_) => "held",
            None => "confirmed",
        }),
        hold_expires_at: held_until.map(rfc3339_ms),
    }))
}
