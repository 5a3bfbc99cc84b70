//! Middleware: the per-IP rate limit, CORS, and the envelope that makes every error JSON and
//! echoes the request id.

use crate::{
    client_ip::ClientIp,
    config::{CorsOrigins, IpRateLimit},
    error::ApiError,
    redis_health::RedisHealth,
    request_id::RequestId,
};
use actix_cors::Cors;
use actix_governor::{
    governor::{
        clock::{Clock, DefaultClock, QuantaInstant},
        middleware::NoOpMiddleware,
        NotUntil,
    },
    GovernorConfig, GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError,
};
use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{Payload, Service, ServiceRequest, ServiceResponse},
    error::{InternalError, PayloadError},
    http::{
        header::{self, HeaderName, HeaderValue},
        Method,
    },
    web, Error, HttpMessage, HttpResponse, HttpResponseBuilder, ResponseError,
};
use futures_util::{Stream, StreamExt};
use std::{future::Future, io, net::IpAddr, pin::Pin, time::Duration};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl KeyExtractor for ClientIp {
    type Key = IpAddr;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<Self::Key, Self::KeyExtractionError> {
        self.of(req.headers(), req.peer_addr())
            .ok_or_else(|| SimpleKeyExtractionError::new("could not determine the client address"))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        _response: HttpResponseBuilder,
    ) -> HttpResponse {
        let retry_after: Duration = negative.wait_time_from(DefaultClock::default().now());
        crate::metrics::rate_limited("ip");
        ApiError::RateLimited { retry_after }.error_response()
    }
}

pub type IpGovernorConfig = GovernorConfig<ClientIp, NoOpMiddleware<QuantaInstant>>;

/// The governor configuration for `RATE_LIMIT_PER_SECOND` / `RATE_LIMIT_BURST`.
pub fn ip_rate_limit(limit: IpRateLimit, client_ip: ClientIp) -> Option<IpGovernorConfig> {
    GovernorConfigBuilder::default()
        .requests_per_second(u64::from(limit.per_second.get()))
        .burst_size(limit.burst.get())
        .key_extractor(client_ip)
        .finish()
}

/// CORS from `CORS_ALLOWED_ORIGINS`; `None` when unset (no cross-origin access at all).
pub fn cors(origins: &CorsOrigins) -> Option<Cors> {
    let base = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => Cors::default().allow_any_origin().send_wildcard(),
        CorsOrigins::List(list) => list
            .iter()
            .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin)),
    };
    Some(
        // DELETE and the two headers of ours: a storefront on another origin cancels its own
        // hold (README, Checkout) and sends its waiting-room admission (README, Waiting room).
        base.allowed_methods([Method::GET, Method::HEAD, Method::POST, Method::DELETE])
            .allowed_headers([
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::AUTHORIZATION,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("flashsale-reservation"),
                HeaderName::from_static("flashsale-admission"),
                X_REQUEST_ID,
            ])
            .expose_headers([X_REQUEST_ID, header::RETRY_AFTER])
            .max_age(3600),
    )
}

/// Outermost but one (inside tracing-actix-web, which opens the request span): turns any error
/// that is not JSON yet — an error a middleware such as CORS returns, a guard's rejection — into
/// the API's JSON error (README, Errors) through [`ApiError`], echoes the request id in `x-request-id`, and counts
/// and times the answer by its route pattern (bounded), method and status. One layer for all
/// three: each `wrap_fn` boxes and moves the request's future once more.
pub fn envelope<S, B>(
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<EitherBody<B>>, Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| HeaderValue::from_str(id.as_str()).ok());
    let response = service.call(req);
    async move {
        let mut response = match response.await {
            Ok(response) => response.map_into_left_body(),
            // A middleware error carries no request to build a ServiceResponse from; wrapping
            // it with its JSON response makes actix send that response instead of plain text.
            Err(err) => {
                let mut json = json_error_response(&err.error_response());
                if let Some(id) = request_id {
                    json.headers_mut().insert(X_REQUEST_ID, id);
                }
                return Err(InternalError::from_response(err, json).into());
            }
        };
        if is_error_without_json(response.response()) {
            let json = json_error_response(response.response());
            response = response.into_response(json).map_into_right_body();
        }
        if let Some(id) = request_id {
            response.headers_mut().insert(X_REQUEST_ID, id);
        }
        // actix-cors adds its expose list to every answer, also to an origin it did not allow:
        // an origin that is not allowed gets no CORS header at all (README, CORS).
        let headers = response.headers_mut();
        if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
            headers.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
        }
        measure(&response, &method, started);
        Ok(response)
    }
}

/// Gives a request with a body `limit` to deliver all of it: a body sent slowly, or a chunked
/// body that never ends, fails with 408 when the time is up, and its connection is closed
/// instead of being held (actix times out the headers itself, not the body). Requests without
/// a body pass untouched, with no allocation.
pub fn body_deadline<S, B>(
    limit: Duration,
) -> impl Fn(ServiceRequest, &S) -> S::Future + Clone + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    move |mut req: ServiceRequest, service: &S| {
        let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
            || req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|length| length.as_bytes() != b"0");
        if has_body {
            let payload = req.take_payload();
            req.set_payload(with_deadline(payload, limit));
        }
        service.call(req)
    }
}

fn with_deadline(payload: Payload, limit: Duration) -> Payload {
    let deadline = tokio::time::Instant::now() + limit;
    let stream = futures_util::stream::unfold(Some(payload), move |payload| async move {
        let mut payload = payload?;
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(payload))),
            Ok(None) => None,
            Err(_) => {
                // Kept a while longer: actix drains a dropped chunked body after answering (for
                // a body that never ends, for ever), but closes the connection when the body is
                // still held as the answer goes out.
                actix_web::rt::spawn(async move {
                    tokio::time::sleep(limit).await;
                    drop(payload);
                });
                let late = io::Error::new(io::ErrorKind::TimedOut, "request body too slow");
                Some((Err(PayloadError::Io(late)), None))
            }
        }
    });
    let stream: Pin<Box<dyn Stream<Item = Result<web::Bytes, PayloadError>>>> = Box::pin(stream);
    Payload::from(stream)
}

/// Counts and times an answer by its route pattern (bounded), method and status; a purchase
/// answered 5xx also tells `/health` (README, Health: degraded while purchases fail).
fn measure<B>(response: &ServiceResponse<B>, method: &Method, started: std::time::Instant) {
    let route = response.request().match_pattern();
    let route = route.as_deref().unwrap_or("unmatched");
    let status = response.status();
    crate::metrics::http_request(route, method, status.as_u16(), started.elapsed());
    if status.is_server_error() && route.ends_with("/purchase") {
        if let Some(health) = response.request().app_data::<web::Data<RedisHealth>>() {
            health.purchase_failed();
        }
    }
}

fn is_error_without_json<B>(response: &HttpResponse<B>) -> bool {
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    (status.is_client_error() || status.is_server_error()) && !json
}

/// The API's JSON error for a response some other layer produced, keeping its status, its
/// `Allow` header and its `Retry-After`.
fn json_error_response<B>(original: &HttpResponse<B>) -> HttpResponse {
    let allow = original.headers().get(header::ALLOW).cloned();
    let mut json = ApiError::for_foreign_status(original.status(), allow).error_response();
    *json.status_mut() = original.status();
    if let Some(value) = original.headers().get(header::RETRY_AFTER) {
        json.headers_mut()
            .insert(header::RETRY_AFTER, value.clone());
    }
    json
}
