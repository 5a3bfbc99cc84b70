//! What handlers take from a request, each rule in one place: the sale (path or `SALE_ID`), the
//! `Idempotency-Key`, the bearer roles (`ADMIN_TOKEN`, `METRICS_TOKEN`), the request id, and
//! the JSON body limit with its errors.

use crate::{
    client_ip::ClientIp,
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
    collections::HashMap,
    future::{ready, Ready},
    io::ErrorKind,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
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
pub fn request_id(request: &HttpRequest) -> Arc<str> {
    request
        .extensions()
        .get::<RequestId>()
        .map_or_else(|| Arc::from(""), RequestId::shared)
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

/// The address a request comes from ([`ClientIp`] from the app data); `None` when unknown.
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequest for ClientAddr {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

impl ClientAddr {
    fn of(req: &HttpRequest) -> Self {
        ClientAddr(match req.app_data::<web::Data<ClientIp>>() {
            Some(client_ip) => client_ip.of(req.headers(), req.peer_addr()),
            None => req.peer_addr().map(|peer| peer.ip()),
        })
    }
}

/// The `Idempotency-Key` of a request as its request token: a retry with the same key gets the
/// same answer; without one, every request is new.
pub struct IdempotencyKey(pub Option<RequestToken>);

impl IdempotencyKey {
    /// The request's token: its key's, or for a request without one a fresh token (made only
    /// where one is used: a purchase refused without Redis needs none).
    pub fn or_fresh(self) -> RequestToken {
        self.0.unwrap_or_else(RequestToken::generate)
    }
}

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.headers().get("idempotency-key") {
            Some(key) => RequestToken::from_idempotency_key(key.as_bytes())
                .map(|token| IdempotencyKey(Some(token)))
                .map_err(ApiError::invalid),
            None => Ok(IdempotencyKey(None)),
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

/// Failed bearer tokens per client address: an address that sent `TOKEN_FAILURES_PER_MINUTE`
/// wrong or missing tokens within [`TokenFailures::WINDOW`] is refused (429, `Retry-After`)
/// before any token of its is compared, until the window ends; so guessing a token costs a
/// minute per ten guesses (by default), and each address writes at most that many refusal
/// lines to the log a minute. Shared by every worker of the instance (app data).
pub struct TokenFailures {
    limit: u32,
    /// Address → (the window's start, failures in it).
    by_address: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl TokenFailures {
    pub const WINDOW: Duration = Duration::from_secs(60);

    /// At most `limit` failures per address and minute (at least one).
    pub fn new(limit: NonZeroU32) -> Self {
        Self {
            limit: limit.get(),
            by_address: Mutex::new(HashMap::new()),
        }
    }

    /// Addresses remembered at most; past it, those whose window is over are forgotten.
    const MAX_ADDRESSES: usize = 100_000;

    /// How long `ip` must still wait, if it is refused now.
    fn refused(&self, ip: IpAddr) -> Option<Duration> {
        let by_address = self.by_address.lock().ok()?;
        let (start, failures) = by_address.get(&ip)?;
        let left = Self::WINDOW.checked_sub(start.elapsed())?;
        (*failures >= self.limit).then_some(left)
    }

    /// Counts a failure of `ip`; returns the failures in its window.
    fn failed(&self, ip: IpAddr) -> u32 {
        let Ok(mut by_address) = self.by_address.lock() else {
            return self.limit;
        };
        if by_address.len() >= Self::MAX_ADDRESSES {
            by_address.retain(|_, (start, _)| start.elapsed() < Self::WINDOW);
        }
        let entry = by_address.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= Self::WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1
    }
}

/// Whether the request's bearer token is `expected`, compared in constant time: the one
/// comparison of a token of ours, behind the failed-token limit of its address. `role` names
/// the token in the log.
fn bearer_is(
    request: &HttpRequest,
    expected: Option<&AdminToken>,
    role: &'static str,
) -> Result<(), ApiError> {
    // The address is looked up only when the limit is on.
    let limited = request
        .app_data::<web::Data<TokenFailures>>()
        .and_then(|failures| Some((failures, ClientAddr::of(request).0?)));
    if let Some(retry_after) = limited.and_then(|(failures, ip)| failures.refused(ip)) {
        crate::metrics::rate_limited("token");
        return Err(ApiError::RateLimited { retry_after });
    }
    let given = bearer_token(request);
    let matches = expected.zip(given).is_some_and(|(expected, given)| {
        constant_time_eq::constant_time_eq(expected.expose().as_bytes(), given.as_bytes())
    });
    if matches {
        return Ok(());
    }
    let count = limited.map_or(1, |(failures, ip)| failures.failed(ip));
    // The reason is not logged: it would say which part of a guess was wrong.
    tracing::info!(
        token = role,
        failures_this_minute = count,
        "request refused: missing or wrong bearer token"
    );
    Err(ApiError::Unauthorized {
        invalid_token: given.is_some(),
    })
}

/// Proof that the request carries `ADMIN_TOKEN`. First among a handler's extractors, so an
/// unauthorised request is refused before its body is read.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let expected = req.app_data::<web::Data<AdminToken>>();
        let checked = bearer_is(req, expected.map(|token| token.get_ref()), "ADMIN_TOKEN");
        ready(checked.map(|()| Admin).inspect_err(|err| {
            if matches!(err, ApiError::Unauthorized { .. }) {
                crate::metrics::admin_refused();
            }
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
            Some(token) => bearer_is(req, Some(&token.0), "METRICS_TOKEN").map(|()| MetricsReader),
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
