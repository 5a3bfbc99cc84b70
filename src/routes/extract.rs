//! What handlers take from a request, each rule in one place: the sale (path or `SALE_ID`), the
//! `Idempotency-Key`, the bearer roles (`ADMIN_TOKEN`, `METRICS_TOKEN`), the request id, and
//! the JSON body limit with its errors.

use crate::{
    config::AdminToken,
    domain::{DefaultSale, RequestToken, SaleId},
    error::ApiError,
    request_id::RequestId,
};
use actix_web::{
    dev::Payload,
    error::{JsonPayloadError, PayloadError},
    http::header,
    web, FromRequest, HttpMessage, HttpRequest,
};
use std::{
    future::{ready, Ready},
    io::ErrorKind,
};

/// JSON bodies over this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// The body limit, and JSON errors in the API's codes (400, 413, 415, 408).
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| json_error(err).into())
}

/// The JSON error of a body that could not be read.
fn json_error(err: JsonPayloadError) -> ApiError {
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

/// A path segment, percent-decoded (`jane%2Bsale@example.com` is `jane+sale@example.com`; actix
/// leaves reserved characters encoded).
pub fn path_segment(request: &HttpRequest, name: &str) -> Result<String, ApiError> {
    let raw = request.match_info().get(name).unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| ApiError::invalid(format!("{name} is not valid UTF-8.")))
}

/// The request's id (as the span and the `x-request-id` header carry it).
pub fn request_id(request: &HttpRequest) -> String {
    request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default()
}

/// The sale of a request: the `{saleId}` path segment, checked before any key is built, or
/// `SALE_ID` on the `/api/sale` alias.
impl FromRequest for SaleId {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sale = match req.match_info().get("saleId") {
            Some(_) => path_segment(req, "saleId").and_then(|id| {
                SaleId::parse(&id).map_err(|e| ApiError::invalid(format!("saleId {e}")))
            }),
            None => req
                .app_data::<web::Data<DefaultSale>>()
                .map(|default| default.0.clone())
                .ok_or_else(|| ApiError::invalid("no sale on this route")),
        };
        ready(sale)
    }
}

/// The `Idempotency-Key` of a request as its request token: a retry with the same key gets the
/// same answer; without one, every request is new.
pub struct IdempotencyKey(pub RequestToken);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.headers().get("idempotency-key") {
            Some(key) => RequestToken::from_idempotency_key(key.as_bytes())
                .map(IdempotencyKey)
                .map_err(ApiError::invalid),
            None => Ok(IdempotencyKey(RequestToken::generate())),
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the request's bearer token is `expected`, compared in constant time: the one
/// comparison of a token of ours.
fn bearer_is(request: &HttpRequest, expected: &AdminToken) -> Result<(), ApiError> {
    let given = bearer_token(request);
    let matches = given.is_some_and(|given| {
        constant_time_eq::constant_time_eq(expected.expose().as_bytes(), given.as_bytes())
    });
    if matches {
        Ok(())
    } else {
        Err(ApiError::Unauthorized {
            invalid_token: given.is_some(),
        })
    }
}

/// Proof that the request carries `ADMIN_TOKEN`. First among a handler's extractors, so an
/// unauthorised request is refused before its body is read.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let checked = match req.app_data::<web::Data<AdminToken>>() {
            Some(expected) => bearer_is(req, expected),
            None => Err(ApiError::Unauthorized {
                invalid_token: bearer_token(req).is_some(),
            }),
        };
        ready(checked.map(|()| Admin).inspect_err(|_| {
            tracing::info!("admin request refused: missing or wrong token");
            crate::metrics::admin_refused();
        }))
    }
}

/// `METRICS_TOKEN`, as app data.
pub struct MetricsToken(pub AdminToken);

/// Proof that the request may read `/metrics`: anyone when `METRICS_TOKEN` is unset, else its
/// bearer.
pub struct MetricsReader;

impl FromRequest for MetricsReader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<MetricsToken>>() {
            Some(token) => bearer_is(req, &token.0).map(|()| MetricsReader),
            None => Ok(MetricsReader),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read by serde only
    struct Body {
        #[serde(rename = "userId")]
        user_id: crate::domain::UserId,
    }

    #[test]
    fn messages_carry_no_parser_positions() {
        let err = serde_json::from_str::<Body>(r#"{"userId":""}"#).unwrap_err();
        let message = json_error(JsonPayloadError::Deserialize(err)).to_string();
        assert_eq!(message, "Invalid body: userId must not be empty.");
        let err = serde_json::from_str::<Body>("{").unwrap_err();
        let message = json_error(JsonPayloadError::Deserialize(err)).to_string();
        assert!(!message.contains("line"), "{message}");
    }
}
