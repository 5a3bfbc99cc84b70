//! The one error type of the HTTP layer, mapped to status, code and JSON body in one place.
//!
//! Bodies are `{"success":false,"code","message"}` (SPEC §3). Internal details go to the log
//! (tracing-actix-web records the error's `Debug`, which prints the cause chain), never to clients.

use crate::store::StoreError;
use actix_web::{
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use serde::Serialize;
use std::{fmt, time::Duration};

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// How long a client is told to wait after a 503: Redis reconnects within about this.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(thiserror::Error)]
pub enum ApiError {
    /// 400 `INVALID_REQUEST`: malformed JSON, a missing or invalid field or header.
    #[error("{0}")]
    InvalidRequest(String),
    /// 413 `PAYLOAD_TOO_LARGE`.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415 `UNSUPPORTED_MEDIA_TYPE`.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// 404 `SALE_NOT_FOUND`: no sale is configured under this instance's SALE_ID.
    #[error("no sale is configured")]
    SaleNotFound,
    /// 404 `NOT_FOUND`: no such route.
    #[error("no such route")]
    RouteNotFound,
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 429 `RATE_LIMITED`, with `Retry-After`.
    #[error("too many requests; retry after {} s", retry_after_secs(*.retry_after))]
    RateLimited { retry_after: Duration },
    /// 503 `SERVICE_UNAVAILABLE`, with `Retry-After`: Redis is unreachable or timed out, so the
    /// outcome is unknown to the server; a retry is safe (SPEC invariant 6).
    #[error("the sale is temporarily unavailable; retry shortly")]
    Unavailable(#[source] StoreError),
    /// 500 `INTERNAL_ERROR`: a bug; the details are logged only.
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => ApiError::Unavailable(err),
            StoreError::Unexpected(_) => ApiError::Internal(err),
        }
    }
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "INVALID_REQUEST",
            ApiError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            ApiError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::SaleNotFound => "SALE_NOT_FOUND",
            ApiError::RouteNotFound => "NOT_FOUND",
            ApiError::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after } => Some(*retry_after),
            ApiError::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER),
            _ => None,
        }
    }

    /// The error for a status that some layer other than ours produced (actix's own 404 or 405,
    /// a CORS rejection): used by the envelope middleware so those are JSON too.
    pub fn body_for_status(status: StatusCode) -> ErrorBody<'static> {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("NOT_FOUND", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("METHOD_NOT_ALLOWED", "method not allowed on this route")
            }
            StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", "request body too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("UNSUPPORTED_MEDIA_TYPE", "unsupported Content-Type")
            }
            StatusCode::TOO_MANY_REQUESTS => ("RATE_LIMITED", "too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => ("SERVICE_UNAVAILABLE", "temporarily unavailable"),
            status if status.is_client_error() => {
                ("INVALID_REQUEST", "the request was not accepted")
            }
            _ => ("INTERNAL_ERROR", "internal error"),
        };
        ErrorBody::new(code, message)
    }
}

/// `Retry-After` is in whole seconds; round up so a client never comes back too early.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

/// The JSON body of every error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub success: bool,
    pub code: &'a str,
    pub message: std::borrow::Cow<'a, str>,
}

impl<'a> ErrorBody<'a> {
    pub fn new(code: &'a str, message: impl Into<std::borrow::Cow<'a, str>>) -> Self {
        Self {
            success: false,
            code,
            message: message.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::SaleNotFound | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(wait) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, retry_after_secs(wait)));
        }
        response.json(ErrorBody::new(self.code(), self.to_string()))
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
        assert_eq!(err.to_string(), "internal error");
        assert!(format!("{err:?}").contains("secret detail"));
    }
}
