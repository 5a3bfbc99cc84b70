//! `GET …/events`: the sale's status as Server-Sent Events, from this instance's watcher.

use super::{
    extract::ClientAddr,
    openapi::{codes, codes_and},
    status::StatusBody,
    AppState,
};
use crate::{
    domain::{Code, SaleId},
    error::{Answer, ApiError, Result},
    live::{same_view, LiveStatus, SlotRefused, StreamSlot},
};
use actix_web::{http::header, web, HttpResponse};
use std::{convert::Infallible, time::Duration};
use tokio::sync::watch;

/// A comment line after this long without an event, so proxies keep the stream open.
pub const HEARTBEAT_AFTER: Duration = Duration::from_secs(15);

/// How long a browser waits before reconnecting a dropped stream.
pub const RETRY_MS: u64 = 2_000;

/// A stream slot of this instance for a client, or the answer that refuses it.
pub fn take_slot(state: &AppState, client: Option<std::net::IpAddr>) -> Result<StreamSlot> {
    state.live.slot(client).map_err(|refused| match refused {
        SlotRefused::Full => ApiError::StreamsFull,
        SlotRefused::ClientFull => ApiError::RateLimited {
            retry_after: crate::error::STREAMS_FULL_RETRY_AFTER,
        },
    })
}

#[utoipa::path(get, path = "/api/sales/{saleId}/events", tag = "sales", operation_id = "sale_events",
    params(("saleId" = String, Path, description = "1–64 of A–Z a–z 0–9 _ -", pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 200, description = "Server-Sent Events: `status` events", content_type = "text/event-stream", body = String),
        (status = 404, description = codes(&[Code::SaleNotFound]), body = Answer),
        (status = 503, description = codes_and(&[Code::ServiceUnavailable], "every stream slot is taken, or Redis is away"), body = Answer),
    ))]
pub async fn events(
    state: web::Data<AppState>,
    sale: SaleId,
    ClientAddr(client): ClientAddr,
) -> Result<HttpResponse> {
    let slot = take_slot(&state, client)?;
    // The first event comes from the cache now, so a missing sale is a plain 404.
    let cached = state.status_cache.get(&state.store, &sale).await?;
    let shown: LiveStatus = match (&cached.snapshot, cached.redis_now_ms()) {
        (Some(snapshot), Some(now)) => Some((snapshot.clone(), now)),
        _ => return Err(ApiError::SaleNotFound),
    };
    let first = event(&shown);
    let updates = state
        .live
        .subscribe(&sale, &state.store, &state.status_cache);
    let stream = Stream {
        first: Some(format!("retry: {RETRY_MS}\n\n{first}")),
        shown,
        updates,
        closing: state.live.closing(),
        _slot: slot,
    };
    Ok(event_stream(futures_util::stream::unfold(
        stream,
        Stream::next,
    )))
}

/// A Server-Sent Events answer: never cached, never buffered by a proxy (nginx honours
/// `X-Accel-Buffering`).
pub fn event_stream<S>(events: S) -> HttpResponse
where
    S: futures_util::Stream<Item = std::result::Result<web::Bytes, Infallible>> + 'static,
{
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(events)
}

/// One client's stream; it holds its slot until the client goes away.
struct Stream {
    first: Option<String>,
    /// What this client saw last: a watcher's update that looks the same is not sent again.
    shown: LiveStatus,
    updates: watch::Receiver<LiveStatus>,
    closing: watch::Receiver<bool>,
    _slot: StreamSlot,
}

impl Stream {
    async fn next(mut self) -> Option<(std::result::Result<web::Bytes, Infallible>, Self)> {
        if let Some(first) = self.first.take() {
            self.updates.mark_unchanged();
            return Some((Ok(web::Bytes::from(first)), self));
        }
        if *self.closing.borrow() {
            return None;
        }
        let heartbeat = tokio::time::sleep(HEARTBEAT_AFTER);
        tokio::pin!(heartbeat);
        let chunk = loop {
            tokio::select! {
                changed = self.updates.changed() => match changed {
                    Ok(()) => {
                        let status = self.updates.borrow_and_update().clone();
                        if !same_view(&self.shown, &status) {
                            let chunk = event(&status);
                            self.shown = status;
                            break chunk;
                        }
                    }
                    // The watcher stopped (it saw no subscriber for a moment): end; the
                    // browser reconnects after `retry` and gets a fresh watcher.
                    Err(_) => return None,
                },
                _ = self.closing.changed() => return None,
                () = &mut heartbeat => break ": heartbeat\n\n".to_owned(),
            }
        };
        Some((Ok(web::Bytes::from(chunk)), self))
    }
}

/// A `status` event with the status route's JSON, or a `gone` event when the sale vanished.
fn event(status: &LiveStatus) -> String {
    match status {
        Some((snapshot, now)) => {
            let json = serde_json::to_string(&StatusBody::new(snapshot, *now)).unwrap_or_default();
            format!("event: status\ndata: {json}\n\n")
        }
        None => "event: gone\ndata: {}\n\n".to_owned(),
    }
}
