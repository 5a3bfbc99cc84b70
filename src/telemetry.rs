//! Structured logging: JSON lines by default (`LOG_FORMAT=pretty` for people), level from
//! `RUST_LOG` with an INFO default. fred's `log` records are bridged into tracing.

use crate::{config::LogFormat, domain::DefaultSale, request_id::RequestId};
use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    HttpMessage,
};
use std::fmt::{self, Write as _};
use tracing::{
    field::{Field, Visit},
    Span,
};
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::{
    field::RecordFields,
    fmt::{format::Writer, FormatFields, FormattedFields},
    EnvFilter,
};

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
            .fmt_fields(JsonSpanFields)
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
            request_id = request_id.as_str(),
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

/// A span's fields as the JSON object the JSON event formatter copies into each line's `"span"`,
/// written straight to text. tracing-subscriber's own `JsonFields` gathers them in a map of
/// `serde_json::Value`s and serialises that: ~6,000 instructions for every request's span, a
/// tenth of a purchase's service CPU (callgrind), to write three short strings.
pub struct JsonSpanFields;

/// Room for a request span's fields as text: a UUID, a method, a path and their names.
const SPAN_TEXT_BYTES: usize = 192;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        // Gathered here and handed over in one piece: the writer is a `String` behind `dyn
        // Write` that would take each piece through a call of its own and grow from empty
        // several times (~1,000 instructions a request, callgrind).
        let mut text = String::with_capacity(SPAN_TEXT_BYTES);
        text.push('{');
        let mut object = JsonObject {
            out: &mut text,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut object);
        object.result?;
        text.push('}');
        writer.write_str(&text)
    }

    /// Fields recorded later (a failed request's code, status and error) go inside the object.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if current.fields.pop() != Some('}') {
            current.fields.clear();
            return self.format_fields(current.as_writer(), fields);
        }
        let empty = current.fields.ends_with('{');
        let mut object = JsonObject {
            out: &mut current.fields,
            empty,
            result: Ok(()),
        };
        fields.record(&mut object);
        let result = object.result;
        current.fields.push('}');
        result
    }
}

/// Writes each visited field as `"name":value` into an open JSON object.
struct JsonObject<'a, W: fmt::Write> {
    out: &'a mut W,
    empty: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> JsonObject<'_, W> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let separator = if std::mem::take(&mut self.empty) {
            "\""
        } else {
            ",\""
        };
        self.result = self
            .out
            .write_str(separator)
            .and_then(|()| JsonEscaped(&mut *self.out).write_str(field.name()))
            .and_then(|()| self.out.write_str("\":"))
            .and_then(|()| value(self.out));
    }

    /// A value written with its `Debug` or `Display` formatting, as a JSON string.
    fn string(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        self.entry(field, |out| {
            out.write_char('"')?;
            JsonEscaped(&mut *out).write_fmt(value)?;
            out.write_char('"')
        });
    }

    fn text(&mut self, field: &Field, value: &str) {
        self.entry(field, |out| {
            out.write_char('"')?;
            JsonEscaped(&mut *out).write_str(value)?;
            out.write_char('"')
        });
    }
}

impl<W: fmt::Write> Visit for JsonObject<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.string(field, format_args!("{value:?}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.entry(field, |out| write!(out, "{value}"));
        } else {
            self.string(field, format_args!("{value}"));
        }
    }
}

/// Text written through it lands in a JSON string: quotes, backslashes and control characters
/// escaped.
struct JsonEscaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for JsonEscaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Ids, methods and paths need no escape: one look, one copy. The look has no early
        // exit, so the compiler checks many bytes at a time (a request's span: ~1,000 → ~700
        // instructions, callgrind).
        let escapes = text.bytes().fold(false, |found, byte| {
            found | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
        });
        if !escapes {
            return self.0.write_str(text);
        }
        let mut plain = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escaped = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..at])?;
            if escaped.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escaped)?;
            }
            plain = at + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Everything the subscriber writes, kept for the test to read.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn span_fields_are_json_whatever_their_text_and_fields_recorded_later_join_them() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(JsonSpanFields)
            .with_writer(move || writer.clone())
            .finish();
        let hostile = "/api/\"x\"\\y\n\t\u{1}é\u{7f}";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                request_id = %"id-1",
                path = hostile,
                status = tracing::field::Empty,
                error = tracing::field::Empty,
                ratio = tracing::field::Empty,
            );
            span.in_scope(|| tracing::info!("first"));
            span.record("status", 503_u64);
            span.record("error", tracing::field::debug("Redis \"timed out\""));
            span.record("ratio", f64::NAN);
            span.in_scope(|| tracing::warn!(answer = -1_i64, ok = true, "second"));
            let empty = tracing::info_span!("quiet", later = tracing::field::Empty);
            empty.record("later", "set");
            empty.in_scope(|| tracing::info!("third"));
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[0]["span"],
            serde_json::json!({"request_id": "id-1", "path": hostile, "name": "request"})
        );
        assert_eq!(
            lines[1]["span"],
            serde_json::json!({
                "request_id": "id-1", "path": hostile, "status": 503,
                "error": "\"Redis \\\"timed out\\\"\"", "ratio": "NaN", "name": "request"
            })
        );
        assert_eq!(lines[1]["answer"], -1);
        assert_eq!(
            lines[2]["span"],
            serde_json::json!({"later": "set", "name": "quiet"})
        );
    }
}
