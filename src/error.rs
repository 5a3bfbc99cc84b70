//! The one error path: [`ApiError`] → status, headers and JSON body, in one place, and
//! [`Answer`], the one JSON body every answer of the API is written with.
//!
//! Error bodies are `{"success":false,"code","message"}` (README, Errors); purchase answers add
//! `remainingStock` and, when the user holds a unit, `purchaseTime` and `orderNumber`. Internal
//! details go to the log (tracing-actix-web records the error's `Debug`, which prints the cause
//! chain), never to clients.

use crate::{
    domain::{rfc3339_ms, Code, Purchase, PurchaseOutcome},
    store::StoreError,
};
use actix_web::{
    http::{
        header::{self, HeaderValue},
        StatusCode,
    },
    HttpResponse, HttpResponseBuilder, ResponseError,
};
use serde::Serialize;
use std::{borrow::Cow, fmt, sync::OnceLock, time::Duration};

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// How long a client is told to wait after a 503: Redis reconnects within about this.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long a client is told to wait when every event-stream slot is taken.
pub const STREAMS_FULL_RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(thiserror::Error)]
pub enum ApiError {
    /// 400 `INVALID_REQUEST`: malformed JSON, a missing or invalid field, header or path part.
    #[error("{0}")]
    InvalidRequest(Cow<'static, str>),
    /// 401 `UNAUTHORIZED`, with `WWW-Authenticate: Bearer` (and `error="invalid_token"` when a
    /// token came but was refused; the reason is logged, never sent).
    #[error("{}", Code::Unauthorized.message())]
    Unauthorized { invalid_token: bool },
    /// 403 `FORBIDDEN`: a valid token, but for another user than the request names.
    #[error("{}", Code::Forbidden.message())]
    Forbidden,
    /// 413 `PAYLOAD_TOO_LARGE`.
    #[error("The request body is larger than {limit} bytes.")]
    PayloadTooLarge { limit: usize },
    /// 415 `UNSUPPORTED_MEDIA_TYPE`.
    #[error("{}", Code::UnsupportedMediaType.message())]
    UnsupportedMediaType,
    /// 404 `SALE_NOT_FOUND`: no sale under this id.
    #[error("{}", Code::SaleNotFound.message())]
    SaleNotFound,
    /// 409 `SALE_HAS_BUYERS`: replacing the sale would reset its buyers; `?force=true` does.
    #[error("{}", Code::SaleHasBuyers.message())]
    SaleHasBuyers,
    /// 404 `ORDER_NOT_FOUND`: no such order in this sale (or not the caller's to see).
    #[error("{}", Code::OrderNotFound.message())]
    OrderNotFound,
    /// 409 `HOLD_EXPIRED`: a confirm whose hold expired and whose units went to someone else.
    #[error("{}", Code::HoldExpired.message())]
    HoldExpired,
    /// 409 `ORDER_CONFIRMED`: a cancel of a paid order.
    #[error("{}", Code::OrderConfirmed.message())]
    OrderConfirmed,
    /// 403 `NOT_ADMITTED`: the sale has a waiting room and the purchase carries no admission
    /// this service signed for this sale and buyer (or an expired one).
    #[error("{0}")]
    NotAdmitted(&'static str),
    /// 403 `QUEUE_NOT_OPEN`: joining opens at `opens_ms` (Redis's clock).
    #[error("The waiting room opens at {}.", rfc3339_ms(*opens_ms))]
    QueueNotOpen { opens_ms: i64 },
    /// 410 `SALE_ENDED`: joining a queue after the sale's end.
    #[error("{}", Code::SaleEnded.message())]
    SaleEnded,
    /// 404 `NO_WAITING_ROOM`: the sale takes purchases without a queue.
    #[error("{}", Code::NoWaitingRoom.message())]
    NoWaitingRoom,
    /// 404 `NOT_IN_QUEUE`: the buyer never joined this sale's queue.
    #[error("{}", Code::NotInQueue.message())]
    NotInQueue,
    /// 404 `NOT_FOUND`: no such route.
    #[error("{}", Code::NotFound.message())]
    RouteNotFound,
    /// 405 `METHOD_NOT_ALLOWED`, with the `Allow` header listing the methods the route takes.
    #[error("{}", Code::MethodNotAllowed.message())]
    MethodNotAllowed { allow: HeaderValue },
    /// 429 `RATE_LIMITED` from the per-IP limit, with `Retry-After`. The request never reached
    /// Redis, so `remainingStock` is `null` (the per-user limit answers through the script).
    #[error("{}", Code::RateLimited.message())]
    RateLimited { retry_after: Duration },
    /// 503 `SERVICE_UNAVAILABLE`, with `Retry-After`: Redis is unreachable, timed out or said
    /// "not now", so the outcome is unknown to the server; a retry is safe (README, How a purchase stays atomic: retry safety).
    #[error("{}", Code::ServiceUnavailable.message())]
    Unavailable(#[source] StoreError),
    /// 503 `SERVICE_UNAVAILABLE`, with `Retry-After`: every event-stream slot of this instance
    /// is taken (`SSE_MAX_STREAMS`).
    #[error("Too many live streams on this instance; retry shortly.")]
    StreamsFull,
    /// 408 `REQUEST_TIMEOUT`: the body did not arrive within `CLIENT_TIMEOUT_MS`.
    #[error("{}", Code::RequestTimeout.message())]
    RequestTimeout,
    /// 500 `INTERNAL_ERROR`: a bug; the details are logged only.
    #[error("{}", Code::InternalError.message())]
    Internal(#[source] StoreError),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => {
                crate::metrics::redis_error("unavailable");
                ApiError::Unavailable(err)
            }
            StoreError::Unexpected(_) => {
                crate::metrics::redis_error("unexpected");
                ApiError::Internal(err)
            }
            // Logged and counted where it was found.
            StoreError::BadData { .. } => ApiError::Internal(err),
        }
    }
}

impl ApiError {
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::InvalidRequest(message.into())
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidRequest(_) => Code::InvalidRequest,
            ApiError::Unauthorized { .. } => Code::Unauthorized,
            ApiError::Forbidden => Code::Forbidden,
            ApiError::RequestTimeout => Code::RequestTimeout,
            ApiError::PayloadTooLarge { .. } => Code::PayloadTooLarge,
            ApiError::UnsupportedMediaType => Code::UnsupportedMediaType,
            ApiError::SaleNotFound => Code::SaleNotFound,
            ApiError::SaleHasBuyers => Code::SaleHasBuyers,
            ApiError::OrderNotFound => Code::OrderNotFound,
            ApiError::HoldExpired => Code::HoldExpired,
            ApiError::OrderConfirmed => Code::OrderConfirmed,
            ApiError::NotAdmitted(_) => Code::NotAdmitted,
            ApiError::QueueNotOpen { .. } => Code::QueueNotOpen,
            ApiError::NoWaitingRoom => Code::NoWaitingRoom,
            ApiError::SaleEnded => Code::SaleEnded,
            ApiError::NotInQueue => Code::NotInQueue,
            ApiError::RouteNotFound => Code::NotFound,
            ApiError::MethodNotAllowed { .. } => Code::MethodNotAllowed,
            ApiError::RateLimited { .. } => Code::RateLimited,
            ApiError::Unavailable(_) | ApiError::StreamsFull => Code::ServiceUnavailable,
            ApiError::Internal(_) => Code::InternalError,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after } => Some(*retry_after),
            ApiError::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER),
            ApiError::StreamsFull => Some(STREAMS_FULL_RETRY_AFTER),
            _ => None,
        }
    }

    /// The error for a status some layer other than our handlers produced (a CORS rejection,
    /// a guard): the envelope middleware answers with it, so those are JSON too.
    pub fn for_foreign_status(status: StatusCode, allow: Option<HeaderValue>) -> Self {
        match status {
            StatusCode::NOT_FOUND => ApiError::RouteNotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed {
                allow: allow.unwrap_or(HeaderValue::from_static("GET, HEAD")),
            },
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: 0 },
            StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited {
                retry_after: UNAVAILABLE_RETRY_AFTER,
            },
            StatusCode::SERVICE_UNAVAILABLE => {
                ApiError::Unavailable(StoreError::Unexpected(format!("{status} from a layer")))
            }
            status if status.is_client_error() => ApiError::invalid(Code::InvalidRequest.message()),
            status => ApiError::Internal(StoreError::Unexpected(format!("{status} from a layer"))),
        }
    }
}

/// `Retry-After` is in whole seconds; round up so a client never comes back too early.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

/// The JSON body of every answer: errors, purchase outcomes and both kinds of 429.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Answer<'a> {
    pub success: bool,
    pub code: Code,
    #[schema(value_type = String)]
    pub message: Cow<'a, str>,
    /// Absent from plain errors; `null` when the stock is unknown (a per-IP 429).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub remaining_stock: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_number: Option<i64>,
    /// Checkout sales (README, Checkout): the units of the buyer's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    /// When the hold ends unless the order is confirmed, on Redis's clock (RFC 3339, ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_expires_at: Option<String>,
    /// `RESERVED` only: the secret that cancels this hold (`Flashsale-Reservation` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub reservation_token: Option<Cow<'a, str>>,
    /// Checkout sales: units in unpaid holds, which may come back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_stock: Option<i64>,
}

/// Room for an answer's body: a purchase's is about 200 bytes.
const ANSWER_BYTES: usize = 384;

impl<'a> Answer<'a> {
    /// Status, `Retry-After` when there is a wait, and this body.
    pub fn respond(&self, retry_after: Option<Duration>) -> HttpResponse {
        match self.json() {
            Ok(body) => self.with_body(retry_after, body),
            Err(error) => {
                HttpResponse::from_error(actix_web::error::JsonPayloadError::Serialize(error))
            }
        }
    }

    /// As [`Answer::respond`] without a wait, for an answer that is the same every time: its
    /// body is serialised once, into `once`, and shared by every answer after.
    pub fn respond_same(&self, once: &'static OnceLock<actix_web::web::Bytes>) -> HttpResponse {
        let body = match once.get() {
            Some(body) => body,
            None => match self.json() {
                Ok(body) => once.get_or_init(|| body.into()),
                Err(_) => return self.respond(None),
            },
        };
        self.with_body(None, body.clone())
    }

    /// This answer as JSON. As `HttpResponseBuilder::json`, less its costs on every answer: the
    /// body written into room for it, not grown from empty.
    fn json(&self) -> serde_json::Result<Vec<u8>> {
        let mut body = Vec::with_capacity(ANSWER_BYTES);
        serde_json::to_writer(&mut body, self).map(|()| body)
    }

    /// The response carrying `body` (this answer's JSON): its status, `Retry-After` when there
    /// is a wait, and a static content type (not parsed again on every answer).
    fn with_body(
        &self,
        retry_after: Option<Duration>,
        body: impl actix_web::body::MessageBody + 'static,
    ) -> HttpResponse {
        let mut response = HttpResponseBuilder::new(self.code.status());
        if let Some(wait) = retry_after {
            response.insert_header((header::RETRY_AFTER, retry_after_secs(wait)));
        }
        response
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ))
            .body(body)
    }

    /// An answer with only a code and a message.
    pub fn bare(code: Code, message: Cow<'static, str>) -> Self {
        Answer {
            success: false,
            code,
            message,
            remaining_stock: None,
            purchase_time: None,
            order_number: None,
            quantity: None,
            hold_expires_at: None,
            reservation_token: None,
            held_stock: None,
        }
    }

    /// A purchase answer: the code's own message, the stock, and the unit the user holds.
    pub fn purchase(code: Code, remaining: Option<i64>, purchase: Option<Purchase>) -> Self {
        Answer {
            success: matches!(code, Code::Purchased | Code::Reserved),
            remaining_stock: Some(remaining),
            purchase_time: purchase.map(|p| rfc3339_ms(p.purchase_ms)),
            order_number: purchase.map(|p| p.order_number),
            ..Self::bare(code, Cow::Borrowed(code.message()))
        }
    }

    /// The answer to a purchase, from the script's outcome: a checkout sale's adds the order's
    /// units, its hold and the units in checkouts.
    pub fn outcome(outcome: &'a PurchaseOutcome) -> Self {
        let mut answer = Self::purchase(outcome.code, Some(outcome.remaining), outcome.purchase);
        if outcome.code == Code::InvalidRequest {
            let most = outcome.checkout.as_ref().map_or(1, |part| part.quantity);
            answer.message = Cow::Owned(format!("quantity must be 1 to {most} for this sale."));
            answer.remaining_stock = None;
            return answer;
        }
        if let Some(part) = &outcome.checkout {
            answer.quantity = outcome.purchase.map(|_| part.quantity);
            answer.hold_expires_at = part.hold_expires_ms.map(rfc3339_ms);
            answer.reservation_token = part.reservation_token.as_deref().map(Cow::Borrowed);
            answer.held_stock = Some(part.held_stock);
        }
        answer
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        let answer = match self {
            // Both kinds of 429 have the purchase answer's shape (README, Errors).
            ApiError::RateLimited { .. } => Answer::purchase(Code::RateLimited, None, None),
            _ => Answer::bare(self.code(), Cow::Owned(self.to_string())),
        };
        let mut response = answer.respond(self.retry_after());
        match self {
            ApiError::MethodNotAllowed { allow } => {
                response.headers_mut().insert(header::ALLOW, allow.clone());
            }
            // The rest of the body may never come: close rather than wait to drain it.
            ApiError::RequestTimeout => {
                response
                    .head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
            }
            ApiError::Unauthorized { invalid_token } => {
                let challenge = if *invalid_token {
                    r#"Bearer error="invalid_token""#
                } else {
                    "Bearer"
                };
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            _ => {}
        }
        response
    }
}

impl fmt::Debug for ApiError {
    // The cause chain, for the log line tracing-actix-web writes when a request fails.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn internal_details_stay_out_of_the_body() {
        let err = ApiError::Internal(StoreError::Unexpected("secret detail".into()));
        assert_eq!(err.to_string(), Code::InternalError.message());
        assert!(format!("{err:?}").contains("secret detail"));
    }

    #[test]
    fn every_error_status_comes_from_its_code() {
        let errors = [
            ApiError::invalid("x"),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType,
            ApiError::SaleNotFound,
            ApiError::RouteNotFound,
            ApiError::MethodNotAllowed {
                allow: HeaderValue::from_static("GET"),
            },
            ApiError::RateLimited {
                retry_after: Duration::from_secs(1),
            },
        ];
        for err in errors {
            assert_eq!(err.status_code(), err.code().status());
        }
    }
}
