//! Structured logging: JSON lines by default (`LOG_FORMAT=pretty` for people), level from
//! `RUST_LOG` with an INFO default. fred's `log` records are bridged into tracing.

use crate::{config::LogFormat, domain::DefaultSale, request_id::RequestId};
use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    HttpMessage,
};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. A second call (tests build many apps) is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = match format {
        // Each line carries the request span's fields, so the request id is on every event.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    };
}

/// The most of a request's path a log line copies: a client may send kilobytes.
const LOGGED_PATH_BYTES: usize = 256;

/// `path`, cut to [`LOGGED_PATH_BYTES`] at a character boundary.
fn bounded(path: &str) -> &str {
    if path.len() <= LOGGED_PATH_BYTES {
        return path;
    }
    let mut end = LOGGED_PATH_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// The root span of every request: its id, method and path; when it fails, its sale, code,
/// status and cause chain.
///
/// With the JSON formatter each `record` on a span parses and re-serialises all its fields:
/// recording the sale and the code on every purchase cost ~38 → ~33 µs of service CPU per
/// purchase (README, Benchmarks). So the span is formatted once, and written to again only when
/// the request fails, in one place here.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = RequestId::for_request(request);
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            method = crate::metrics::method_label(request.method()),
            path = bounded(request.path()),
            sale_id = tracing::field::Empty,
            code = tracing::field::Empty,
            status = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        request.extensions_mut().insert(request_id);
        span
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let failure = match outcome {
            Ok(response) => response
                .response()
                .error()
                .map(|error| (response.status(), error)),
            Err(error) => Some((error.as_response_error().status_code(), error)),
        };
        if let Some((status, error)) = failure {
            if let Ok(response) = outcome {
                let request = response.request();
                // A sale's route names it; the `/api/sale/*` alias serves SALE_ID.
                let alias = request.path().starts_with("/api/sale/");
                match request.match_info().get("saleId") {
                    Some(sale) => span.record("sale_id", sale),
                    None if alias => request
                        .app_data::<actix_web::web::Data<DefaultSale>>()
                        .map_or(&span, |default| span.record("sale_id", default.0.as_str())),
                    None => &span,
                };
            }
            if let Some(api) = error.as_error::<crate::error::ApiError>() {
                span.record("code", api.code().as_str());
            }
            span.record("status", status.as_u16());
            span.record("error", tracing::field::debug(error.as_response_error()));
        }
    }
}
