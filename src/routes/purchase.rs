//! `POST …/purchase`: validate, run `lua/purchase.lua` once, answer (SPEC §3).

use super::{request_id, AppState};
use crate::{
    domain::{RequestToken, SaleId, UserId},
    error::{Answer, ApiError, Result},
};
use actix_web::{
    error::{JsonPayloadError, PayloadError},
    web, HttpRequest, HttpResponse,
};
use serde::Deserialize;
use std::io::ErrorKind;

/// Bodies over this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The purchase body. `userId` is required unless a bearer token names the buyer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseRequest {
    /// 1–128 of `A–Z a–z 0–9 . _ - @ + :`; required unless a bearer token names the buyer.
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9._@+:\-]{1,128}$")]
    pub user_id: Option<UserId>,
}

/// Body limit and JSON errors mapped to the SPEC's codes (400, 413, 415).
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| json_error(err).into())
}

/// The JSON error of a body that could not be read, in the SPEC's codes.
pub fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(err) if err.is_data() => {
            ApiError::invalid(format!("Invalid body: {}.", without_position(&err)))
        }
        JsonPayloadError::Deserialize(_) => ApiError::invalid("The body is not valid JSON."),
        JsonPayloadError::Payload(PayloadError::Io(err)) if err.kind() == ErrorKind::TimedOut => {
            ApiError::RequestTimeout
        }
        _ => ApiError::invalid("The body could not be read."),
    }
}

/// serde_json's message without its " at line 1 column 16" suffix: a person reads it.
fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    }
}

pub async fn purchase(
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
    body: web::Json<PurchaseRequest>,
) -> Result<HttpResponse> {
    let buyer = state.buyer(&request, body.into_inner().user_id).await?;
    let token = match request.headers().get(IDEMPOTENCY_KEY) {
        Some(key) => {
            RequestToken::from_idempotency_key(key.as_bytes()).map_err(ApiError::invalid)?
        }
        None => RequestToken::generate(),
    };
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
    if outcome.code == crate::domain::Code::RateLimited {
        crate::metrics::rate_limited("user");
    }
    Ok(
        Answer::purchase(outcome.code, Some(outcome.remaining), outcome.purchase)
            .respond(outcome.retry_after),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_no_parser_positions() {
        let err = serde_json::from_str::<PurchaseRequest>(r#"{"userId":""}"#).unwrap_err();
        let message = json_error(JsonPayloadError::Deserialize(err)).to_string();
        assert_eq!(message, "Invalid body: userId must not be empty.");
        let err = serde_json::from_str::<PurchaseRequest>("{").unwrap_err();
        let message = json_error(JsonPayloadError::Deserialize(err)).to_string();
        assert!(!message.contains("line"), "{message}");
    }
}
