//! `GET /api/sale/user/{userId}`: whether a user holds a unit, and since when.

use super::AppState;
use crate::{
    domain::{rfc3339_ms, UserId},
    error::{ApiError, Result},
};
use actix_web::{web, HttpResponse};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserBody {
    user_id: String,
    has_purchased: bool,
    purchase_time: Option<String>,
    order_number: Option<i64>,
}

pub async fn user(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse> {
    let user = UserId::parse(path.into_inner()).map_err(ApiError::InvalidRequest)?;
    let record = state
        .store
        .get()
        .await?
        .user(&user)
        .await?
        .ok_or(ApiError::SaleNotFound)?;
    Ok(HttpResponse::Ok().json(UserBody {
        user_id: user.into_string(),
        has_purchased: record.purchase.is_some(),
        purchase_time: record.purchase.map(|p| rfc3339_ms(p.purchase_ms)),
        order_number: record.purchase.map(|p| p.order_number),
    }))
}
