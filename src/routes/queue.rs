//! The waiting room's routes (README, Waiting room): `POST …/queue` (join), `GET …/queue/me`
//! (poll one's place) and `GET …/queue/events` (one's place as Server-Sent Events), and the
//! admission check a purchase passes before the store is called.

use super::{
    events::{event_stream, take_slot, HEARTBEAT_AFTER, RETRY_MS},
    extract::ClientAddr,
    openapi::{codes, codes_and},
    AppState,
};
use crate::{
    domain::{rfc3339_ms, Code, RoomSnapshot, SaleId, SaleSnapshot, Standing, UserId},
    error::{Answer, ApiError, Result},
    live::{LiveStatus, StreamSlot},
    queue::{RoomError, Signer, Ticket},
    store::{JoinReply, QueuePlace, StoreError},
};
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::{convert::Infallible, time::Duration};
use tokio::{sync::watch, time::Instant};

/// The header a purchase carries its admission in.
pub const ADMISSION_HEADER: &str = "Flashsale-Admission";

/// How often a queue stream recomputes its buyer's place between the watcher's updates:
/// admission advances with the clock, not with Redis's counters.
const RECOMPUTE_EVERY: Duration = Duration::from_secs(1);

/// The join body. `userId` is required unless a bearer token names the buyer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueRequest {
    /// 1–128 of `A–Z a–z 0–9 . _ - @ + : |`; required unless a bearer token names the buyer.
    #[schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9._@+:|\-]{1,128}$")]
    pub user_id: Option<UserId>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeQuery {
    /// The buyer, unless a bearer token names them.
    #[param(value_type = Option<String>, pattern = r"^[A-Za-z0-9._@+:|\-]{1,128}$")]
    user_id: Option<UserId>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    /// The `ticket` of the join answer.
    #[param(max_length = 512)]
    ticket: String,
}

// The names of `Standing` as `state` spells them, for the document only (the answer is built
// from `Standing::as_str`; a test compares the two).
/// Where a buyer stands in the waiting room (see `QueueBody.state`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum QueueState {
    PreQueue,
    Waiting,
    Unlikely,
    Admitted,
    Expired,
    SoldOut,
    Ended,
}

/// Where a buyer stands, as join, polling and the stream answer it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueBody {
    /// `pre_queue` (joined before the start: the place is drawn at the start), `waiting`,
    /// `unlikely` (everyone ahead buying would leave nothing), `admitted` (buy now, with
    /// `admission`), `expired` (the admission lapsed), `sold_out`, `ended`.
    #[schema(value_type = QueueState, example = "waiting")]
    state: &'static str,
    /// 1-based, exact; `null` before the draw.
    position: Option<i64>,
    /// Buyers ahead who have not been let in yet.
    ahead: Option<i64>,
    estimated_wait_seconds: Option<i64>,
    remaining_stock: i64,
    held_stock: i64,
    /// `admitted` only: send it as the `Flashsale-Admission` header of the purchase.
    admission: Option<String>,
    admission_expires_at: Option<String>,
    /// Names the buyer to `GET …/queue/events?ticket=` (join and polling answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket: Option<String>,
    server_time: String,
}

/// What is needed to judge a buyer's place at a moment.
struct Judged<'a> {
    position: i64,
    window: (i64, i64),
    stock: (i64, i64),
    room: &'a RoomSnapshot,
    now_ms: i64,
}

impl QueueBody {
    fn new(judged: &Judged<'_>, sale: &SaleId, user: &str, signer: &Signer) -> Self {
        let standing = Standing::at(
            judged.position,
            judged.window,
            judged.stock,
            judged.room,
            judged.now_ms,
        );
        let (position, ahead, wait) = match standing {
            Standing::Waiting {
                position,
                ahead,
                wait_seconds,
                ..
            } => (Some(position), Some(ahead), Some(wait_seconds)),
            Standing::Admitted { position, .. } | Standing::Expired { position } => {
                (Some(position), Some(0), Some(0))
            }
            _ => ((judged.position > 0).then_some(judged.position), None, None),
        };
        let admission = match standing {
            Standing::Admitted { expires_ms, .. } => Some((
                signer.admission(sale.as_str(), user, expires_ms),
                rfc3339_ms(expires_ms),
            )),
            _ => None,
        };
        let (admission, admission_expires_at) = admission.unzip();
        Self {
            state: standing.as_str(),
            position,
            ahead,
            estimated_wait_seconds: wait,
            remaining_stock: judged.stock.0.max(0),
            held_stock: judged.stock.1.max(0),
            admission,
            admission_expires_at,
            ticket: None,
            server_time: rfc3339_ms(judged.now_ms),
        }
    }

    fn from_place(place: &QueuePlace, sale: &SaleId, user: &str, signer: &Signer) -> Self {
        let judged = Judged {
            position: place.position,
            window: (place.start_ms, place.end_ms),
            stock: (place.remaining, place.held),
            room: &place.room,
            now_ms: place.redis_now_ms,
        };
        Self::new(&judged, sale, user, signer)
    }
}

/// The waiting room's part of the status and the admin view.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    admit_per_second: i64,
    admission_seconds: i64,
    opens_at: String,
    /// Everyone who joined, and of them those let in so far.
    queued: i64,
    admitted: i64,
    /// Purchases made with an admission.
    admissions_used: i64,
    /// SHA-256 (hex) of the draw's seed, published from the sale's creation.
    draw_commitment: String,
    /// The seed (hex), published once the sale has started; `null` before.
    draw_seed: Option<String>,
    /// Buyers who joined before the start: the draw orders them.
    pre_queued: i64,
}

impl RoomView {
    pub fn new(room: &RoomSnapshot, start_ms: i64, now_ms: i64) -> Self {
        Self {
            admit_per_second: room.admit_per_second,
            admission_seconds: room.admission_ms / 1000,
            opens_at: rfc3339_ms(room.opens_ms),
            queued: room.queued(),
            admitted: room.admitted_at(start_ms, now_ms),
            admissions_used: room.admissions_used,
            draw_commitment: room.draw_commitment.clone(),
            // The script sends the seed only after the start; judged again on the clock the
            // view is shown at, since a cached status may be read a moment later.
            draw_seed: room.draw_seed.clone().filter(|_| now_ms >= start_ms),
            pre_queued: room.pre_queued,
        }
    }
}

fn no_secret(err: RoomError) -> ApiError {
    tracing::error!(error = %err, "a sale has a waiting room this instance cannot serve");
    ApiError::Internal(StoreError::Unexpected(err.to_string()))
}

/// Joins (`join`) or reads the buyer's place: one script call; a stale draw (the sale was
/// replaced since this instance read it) is read again once.
async fn place(
    state: &AppState,
    sale: &SaleId,
    buyer: &UserId,
    join: bool,
) -> Result<(QueuePlace, bool)> {
    for _ in 0..2 {
        let keys = state.rooms.keys(&state.store, sale).await?;
        let rank_key = crate::domain::rank_key(&keys.seed, buyer.as_str()).unwrap_or_default();
        let reply = state
            .store
            .queue_join(sale, buyer, rank_key, keys.commitment.clone(), join)
            .await?;
        return match reply {
            JoinReply::Queued(place) => Ok((place, false)),
            JoinReply::SoldOut(place) => Ok((place, true)),
            JoinReply::StaleDraw => {
                state.rooms.forget(sale).await;
                continue;
            }
            JoinReply::SaleNotFound => Err(ApiError::SaleNotFound),
            JoinReply::NoWaitingRoom => Err(ApiError::NoWaitingRoom),
            JoinReply::NotInQueue => Err(ApiError::NotInQueue),
            JoinReply::NotOpen { opens_ms } => Err(ApiError::QueueNotOpen { opens_ms }),
            JoinReply::SaleEnded => Err(ApiError::SaleEnded),
        };
    }
    Err(ApiError::Internal(StoreError::Unexpected(
        "the sale's draw changed twice during one join".into(),
    )))
}

/// The answer to join and polling: the place, and the ticket that names the buyer to the
/// stream.
fn place_answer(
    state: &AppState,
    sale: &SaleId,
    buyer: &UserId,
    (place, sold_out): (QueuePlace, bool),
) -> Result<HttpResponse> {
    let signer = state.rooms.signer().map_err(no_secret)?;
    let mut body = QueueBody::from_place(&place, sale, buyer.as_str(), signer);
    if sold_out {
        body.state = Standing::SoldOut.as_str();
    } else {
        let ticket = Ticket {
            user: buyer.to_string(),
            position: place.position,
        };
        body.ticket = Some(signer.ticket(sale.as_str(), &ticket));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

#[utoipa::path(post, path = "/api/sales/{saleId}/queue", tag = "queue", operation_id = "queue_join",
    params(("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    request_body = QueueRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "In the queue (the same place on every join), or `sold_out` (not joined)", body = QueueBody),
        (status = 400, description = codes(&[Code::InvalidRequest]), body = Answer),
        (status = 401, description = codes_and(&[Code::Unauthorized], "token verification on"), body = Answer),
        (status = 403, description = codes_and(&[Code::QueueNotOpen, Code::Forbidden], "before the room opens, or a token for another user"), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound, Code::NoWaitingRoom]), body = Answer),
        (status = 410, description = codes(&[Code::SaleEnded]), body = Answer),
        (status = 503, description = codes(&[Code::ServiceUnavailable]), body = Answer, headers(("Retry-After" = u64))),
    ))]
pub async fn join(
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
    body: web::Json<QueueRequest>,
) -> Result<HttpResponse> {
    let buyer = state.buyer(&request, body.into_inner().user_id).await?;
    let placed = place(&state, &sale, &buyer, true).await;
    let label = match &placed {
        Ok((_, true)) => "sold_out",
        Ok(_) => "queued",
        Err(err) => err.code().as_str(),
    };
    crate::metrics::queue_join(sale.as_str(), label);
    place_answer(&state, &sale, &buyer, placed?)
}

#[utoipa::path(get, path = "/api/sales/{saleId}/queue/me", tag = "queue", operation_id = "queue_me",
    params(("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"), MeQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Where the buyer stands now", body = QueueBody),
        (status = 400, description = codes(&[Code::InvalidRequest]), body = Answer),
        (status = 401, description = codes_and(&[Code::Unauthorized], "token verification on"), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound, Code::NoWaitingRoom, Code::NotInQueue]), body = Answer),
    ))]
pub async fn me(
    state: web::Data<AppState>,
    sale: SaleId,
    request: HttpRequest,
    query: web::Query<MeQuery>,
) -> Result<HttpResponse> {
    let buyer = state.buyer(&request, query.into_inner().user_id).await?;
    let placed = place(&state, &sale, &buyer, false).await?;
    place_answer(&state, &sale, &buyer, placed)
}

/// The admission a purchase of `sale` by `buyer` carries, checked before any Redis call when
/// the sale has a room: its expiry (for the script to judge on Redis's clock), or 0 when the
/// sale has no room. Missing, forged, or another buyer's or sale's: `403 NOT_ADMITTED`.
pub async fn admission(
    state: &AppState,
    request: &HttpRequest,
    sale: &SaleId,
    buyer: &UserId,
) -> Result<i64> {
    let room = state.rooms.keys(&state.store, sale).await?;
    if !room.on {
        return Ok(0);
    }
    let signer = state.rooms.signer().map_err(no_secret)?;
    let Some(token) = request.headers().get(ADMISSION_HEADER) else {
        return Err(ApiError::NotAdmitted(
            "This sale has a waiting room: join the queue and buy with the admission it gives \
             (Flashsale-Admission header).",
        ));
    };
    token
        .to_str()
        .ok()
        .and_then(|token| signer.check_admission(token, sale.as_str(), buyer.as_str()))
        .ok_or(ApiError::NotAdmitted(
            "The admission is not valid for this sale and buyer.",
        ))
}

#[utoipa::path(get, path = "/api/sales/{saleId}/queue/events", tag = "queue", operation_id = "queue_events",
    params(("saleId" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"), TicketQuery),
    responses(
        (status = 200, description = "Server-Sent Events: `queue` events (the place, then the admission, or sold out)", content_type = "text/event-stream", body = String),
        (status = 400, description = codes_and(&[Code::InvalidRequest], "not a ticket this service signed for this sale"), body = Answer),
        (status = 404, description = codes(&[Code::SaleNotFound, Code::NoWaitingRoom]), body = Answer),
        (status = 503, description = codes_and(&[Code::ServiceUnavailable], "every stream slot is taken, or Redis is away"), body = Answer),
    ))]
pub async fn events(
    state: web::Data<AppState>,
    sale: SaleId,
    query: web::Query<TicketQuery>,
    ClientAddr(client): ClientAddr,
) -> Result<HttpResponse> {
    let signer = state.rooms.signer().map_err(|_| ApiError::NoWaitingRoom)?;
    let ticket = signer
        .check_ticket(&query.ticket, sale.as_str())
        .ok_or_else(|| ApiError::invalid("ticket is not one this service issued for this sale."))?;
    let slot = take_slot(&state, client)?;
    let cached = state.status_cache.get(&state.store, &sale).await?;
    let (Some(snapshot), Some(now)) = (&cached.snapshot, cached.redis_now_ms()) else {
        return Err(ApiError::SaleNotFound);
    };
    if snapshot.room.is_none() {
        return Err(ApiError::NoWaitingRoom);
    }
    let updates = state
        .live
        .subscribe(&sale, &state.store, &state.status_cache);
    let stream = QueueStream {
        state: state.clone(),
        sale,
        signer: signer.clone(),
        position: ticket.position,
        ticket,
        latest: Some((snapshot.clone(), now)),
        read_at: Instant::now(),
        shown: None,
        wake: RECOMPUTE_EVERY,
        started: false,
        updates,
        closing: state.live.closing(),
        _slot: slot,
    };
    Ok(event_stream(futures_util::stream::unfold(
        stream,
        QueueStream::next,
    )))
}

/// One buyer's queue stream: computed from the sale's watcher and the clock, never from a
/// Redis call of its own (but one shared read of its drawn place after the start).
struct QueueStream {
    state: web::Data<AppState>,
    sale: SaleId,
    signer: Signer,
    ticket: Ticket,
    /// The buyer's place; 0 until the draw is read.
    position: i64,
    /// The latest status and Redis's clock when it was read, and this instance's instant then.
    latest: LiveStatus,
    read_at: Instant,
    /// The last place sent (its `serverTime` aside): a place that did not change is not sent.
    shown: Option<QueueBody>,
    /// When to look again without news from the watcher: at most [`RECOMPUTE_EVERY`], sooner
    /// when the start or this buyer's admission comes first, so it is sent the moment it is due.
    wake: Duration,
    started: bool,
    updates: watch::Receiver<LiveStatus>,
    closing: watch::Receiver<bool>,
    _slot: StreamSlot,
}

impl QueueStream {
    /// The buyer's place now; `None` when the sale (or its room) vanished.
    async fn body(&mut self) -> Option<QueueBody> {
        let (snapshot, read_now) = self.latest.clone()?;
        let now_ms = read_now + self.read_at.elapsed().as_millis() as i64;
        if self.position == 0 && now_ms >= snapshot.start_ms {
            self.resolve().await;
        }
        let room = snapshot.room.as_ref()?;
        let due_ms = if now_ms < snapshot.start_ms {
            snapshot.start_ms
        } else {
            room.admitted_from(snapshot.start_ms, self.position.max(1))
        };
        // A few ms past the moment, so it has come when the stream looks again.
        let left = due_ms - now_ms;
        self.wake = if left > 0 {
            Duration::from_millis((left + 5) as u64).min(RECOMPUTE_EVERY)
        } else {
            RECOMPUTE_EVERY
        };
        let judged = Judged {
            position: self.position,
            window: (snapshot.start_ms, snapshot.end_ms),
            stock: (snapshot.remaining_stock, snapshot.held_stock),
            room,
            now_ms,
        };
        Some(QueueBody::new(
            &judged,
            &self.sale,
            &self.ticket.user,
            &self.signer,
        ))
    }

    /// The event for a place: `queue` with the JSON, or `gone` when the sale vanished.
    fn event(body: Option<&QueueBody>) -> String {
        match body {
            Some(body) => {
                let json = serde_json::to_string(body).unwrap_or_default();
                format!("event: queue\ndata: {json}\n\n")
            }
            None => "event: gone\ndata: {}\n\n".to_owned(),
        }
    }

    /// Whether a place differs from the one last sent, the clock aside.
    fn changed(&self, body: &Option<QueueBody>) -> bool {
        match (&self.shown, body) {
            (Some(shown), Some(body)) => QueueBody {
                server_time: String::new(),
                ..shown.clone()
            }
            .ne(&QueueBody {
                server_time: String::new(),
                ..body.clone()
            }),
            (None, None) => false,
            _ => true,
        }
    }

    /// Reads the drawn place of a pre-queue buyer, shared with every stream of this instance
    /// that asks at the same moment. A failed read is tried again on the next tick.
    async fn resolve(&mut self) {
        let state = &self.state;
        match state
            .rooms
            .pre_queue_position(&state.store, &self.sale, self.ticket.user.clone())
            .await
        {
            Ok(Some(position)) => self.position = position,
            Ok(None) => {}
            Err(err) => tracing::debug!(error = %err, "drawn place not read yet"),
        }
    }

    async fn next(mut self) -> Option<(std::result::Result<web::Bytes, Infallible>, Self)> {
        if !self.started {
            self.started = true;
            self.updates.mark_unchanged();
            let body = self.body().await;
            let first = Self::event(body.as_ref());
            self.shown = body;
            return Some((
                Ok(web::Bytes::from(format!("retry: {RETRY_MS}\n\n{first}"))),
                self,
            ));
        }
        let heartbeat = tokio::time::sleep(HEARTBEAT_AFTER);
        tokio::pin!(heartbeat);
        let chunk = loop {
            if *self.closing.borrow() {
                return None;
            }
            tokio::select! {
                changed = self.updates.changed() => match changed {
                    Ok(()) => {
                        let latest = self.updates.borrow_and_update().clone();
                        if latest.is_some() {
                            self.latest = latest;
                            self.read_at = Instant::now();
                        }
                    }
                    // The watcher stopped: end; the browser reconnects after `retry`.
                    Err(_) => return None,
                },
                _ = self.closing.changed() => return None,
                () = tokio::time::sleep(self.wake) => {}
                () = &mut heartbeat => break ": heartbeat\n\n".to_owned(),
            }
            let body = self.body().await;
            if self.changed(&body) {
                let event = Self::event(body.as_ref());
                self.shown = body;
                break event;
            }
        };
        Some((Ok(web::Bytes::from(chunk)), self))
    }
}

/// The room's part of a status answer.
pub fn room_view(snapshot: &SaleSnapshot, now_ms: i64) -> Option<RoomView> {
    snapshot
        .room
        .as_ref()
        .map(|room| RoomView::new(room, snapshot.start_ms, now_ms))
}

#[cfg(test)]
mod tests {
    use super::QueueState;
    use crate::domain::Standing;

    #[test]
    fn the_documented_states_are_the_ones_standing_spells() {
        let spelled = [
            Standing::PreQueue,
            Standing::Waiting {
                position: 2,
                ahead: 1,
                wait_seconds: 1,
                unlikely: false,
            },
            Standing::Waiting {
                position: 2,
                ahead: 1,
                wait_seconds: 1,
                unlikely: true,
            },
            Standing::Admitted {
                position: 1,
                expires_ms: 1,
            },
            Standing::Expired { position: 1 },
            Standing::SoldOut,
            Standing::Ended,
        ]
        .map(|standing| standing.as_str());
        let documented = [
            QueueState::PreQueue,
            QueueState::Waiting,
            QueueState::Unlikely,
            QueueState::Admitted,
            QueueState::Expired,
            QueueState::SoldOut,
            QueueState::Ended,
        ]
        .map(|state| serde_json::to_value(state).unwrap());
        assert_eq!(documented.map(|v| v.as_str().unwrap().to_owned()), spelled);
    }
}
