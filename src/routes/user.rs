//! `GET …/user/{userId}`: whether a user holds a unit, and since when.

use super::AppState;
use crate::{
    domain::{rfc3339_ms, SaleId, UserId},
    error::{ApiError, Result},
};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserBody {
    user_id: String,
    has_purchased: bool,
    purchase_time: Option<String>,
    order_number: Option<i64>,
}

pub async fn user(
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
) -> Result<HttpResponse> {
    let user = super::path_segment(&request, "userId")?;
    let user = UserId::parse(user).map_err(ApiError::invalid)?;
    let user = state.buyer(&request, Some(user)).await?;
    let record = state
        .store
        .user(&sale, &user)
        .await?
        .ok_or(ApiError::SaleNotFound)?;
    Ok(HttpResponse::Ok().json(UserBody {
        user_id: user.into_string(),
        has_purchased: record.purchase.is_some(),
        purchase_time: record.purchase.map(|p| rfc3339_ms(p.purchase_ms)),
        order_number: record.purchase.map(|p| p.order_number),
    }))
}
