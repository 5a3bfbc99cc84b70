//! Order webhooks: each instance runs one delivery loop that POSTs every order, signed, to
//! `ORDER_WEBHOOK_URL`, at least once (README, "Orders to fulfilment").
//!
//! The loop is a consumer in one consumer group per sale's order stream, so instances share
//! the work; an order is acknowledged only after a 2xx; an order left pending by a dead instance
//! is claimed after `ORDER_WEBHOOK_CLAIM_IDLE_MS`; after `ORDER_WEBHOOK_MAX_ATTEMPTS` failures an
//! order moves to the dead-letter stream. It runs off the request path, at most
//! `ORDER_WEBHOOK_CONCURRENCY` deliveries at once, and reads no more orders than it has room
//! for, so a receiver that is down or slow costs bounded memory: the backlog waits in Redis.

use crate::{
    config::WebhookSettings,
    domain::{rfc3339_ms, SaleId, MAX_SALES},
    store::{webhooks::FailedAttempt, OrderEntry, PendingOrder, Store, StoreError},
};
use rand::Rng;
use secrecy::ExposeSecret;
use serde::Serialize;
use std::{
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::{JoinHandle, JoinSet},
};

/// How often the list of sales is read again from the sales index.
const SALES_REFRESH: Duration = Duration::from_secs(5);
/// How often the backlog gauges are measured.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);
/// A sale with nothing to deliver is polled again after this, doubling up to `IDLE_POLL_MAX`.
const IDLE_POLL_MIN: Duration = Duration::from_millis(50);
const IDLE_POLL_MAX: Duration = Duration::from_secs(1);
/// The longest back-off between two attempts, whatever the base.
const BACKOFF_MAX: Duration = Duration::from_secs(600);

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`: the value of `Flashsale-Signature`.
pub fn signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(unix_seconds.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let mut value = format!("t={unix_seconds},v1=");
    for byte in tag.as_ref() {
        let _ = write!(value, "{byte:02x}");
    }
    value
}

/// The JSON body of one delivery. It is the same on every attempt; receivers dedupe on
/// `eventId` (also in the `Flashsale-Event-Id` header).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderEvent {
    /// The order's id in `sale:{ID}:orders`; the same across re-deliveries and re-drives.
    pub event_id: String,
    /// Always `order.created`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub sale_id: String,
    pub user_id: String,
    pub order_number: i64,
    /// When the unit was sold, by Redis's clock (RFC 3339, ms).
    pub purchase_time: String,
    /// The `X-Request-Id` of the purchase request.
    pub request_id: String,
}

impl OrderEvent {
    fn new(order: &OrderEntry) -> Self {
        Self {
            event_id: order.event_id.clone(),
            kind: "order.created",
            sale_id: order.sale_id.clone(),
            user_id: order.user_id.clone(),
            order_number: order.order_number,
            purchase_time: rfc3339_ms(order.purchase_ms),
            request_id: order.request_id.clone(),
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("receiver answered {0}")]
    Status(u16),
    #[error("no answer within ORDER_WEBHOOK_TIMEOUT_MS")]
    Timeout,
    #[error("{0}")]
    Request(String),
}

impl AttemptError {
    fn metric(&self) -> &'static str {
        match self {
            AttemptError::Status(_) => "status",
            AttemptError::Timeout => "timeout",
            AttemptError::Request(_) => "error",
        }
    }
}

/// What the loop and its deliveries share.
struct Shared {
    store: Store,
    http: reqwest::Client,
    settings: WebhookSettings,
    /// This instance's consumer name: unique per process, so a restarted instance never takes
    /// over a dead one's pending orders before they are idle long enough to be claimed.
    consumer: String,
    slots: Arc<Semaphore>,
}

/// One sale as the loop sees it.
struct SaleState {
    sale: SaleId,
    next_poll: Instant,
    idle: Duration,
    next_claim: Instant,
    claim_cursor: String,
    failing: bool,
}

impl SaleState {
    fn new(sale: SaleId, now: Instant) -> Self {
        Self {
            sale,
            next_poll: now,
            idle: Duration::ZERO,
            next_claim: now,
            claim_cursor: "0-0".to_owned(),
            failing: false,
        }
    }
}

/// Starts the delivery loop on the current runtime. Aborting the handle stops it and every
/// delivery in flight (their orders stay pending and are claimed by another instance).
pub fn spawn(store: Store, settings: WebhookSettings) -> Result<JoinHandle<()>, reqwest::Error> {
    let http = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        // A redirect could send signed orders elsewhere; the receiver's URL is the one set.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("flashsale/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(settings.concurrency)
        .build()?;
    let consumer = format!(
        "{}-{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "flashsale".to_owned()),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    tracing::info!(url = %settings.url, consumer = %consumer, "order webhooks on");
    let shared = Arc::new(Shared {
        store,
        http,
        slots: Arc::new(Semaphore::new(settings.concurrency)),
        settings,
        consumer,
    });
    Ok(tokio::spawn(run(shared)))
}

async fn run(shared: Arc<Shared>) {
    let mut sales: Vec<SaleState> = Vec::new();
    let mut deliveries = JoinSet::new();
    let mut next_refresh = Instant::now();
    let mut next_backlog = Instant::now();
    loop {
        while deliveries.try_join_next().is_some() {}
        let now = Instant::now();
        if now >= next_refresh {
            refresh(&shared.store, &mut sales, now).await;
            next_refresh = now + SALES_REFRESH;
        }
        if now >= next_backlog {
            measure_backlog(&shared.store, &sales).await;
            next_backlog = now + BACKLOG_EVERY;
        }
        // Read only what can be delivered now: the rest waits in Redis, not in memory.
        let Ok(first) = shared.slots.clone().acquire_owned().await else {
            return;
        };
        let mut slot = Some(first);
        let now = Instant::now();
        for state in sales.iter_mut().filter(|state| state.next_poll <= now) {
            let room = shared.slots.available_permits() + usize::from(slot.is_some());
            if room == 0 {
                break;
            }
            for order in take(&shared, state, room, now).await {
                let permit = match slot.take() {
                    Some(permit) => permit,
                    None => match shared.slots.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                };
                deliveries.spawn(deliver(shared.clone(), state.sale.clone(), order, permit));
            }
        }
        drop(slot);
        let wake = sales
            .iter()
            .map(|state| state.next_poll)
            .chain([next_refresh, next_backlog])
            .min()
            .unwrap_or(next_refresh);
        tokio::time::sleep_until(wake.max(Instant::now() + Duration::from_millis(5)).into()).await;
    }
}

/// Reads the sales index again: new sales join, deleted ones leave.
async fn refresh(store: &Store, sales: &mut Vec<SaleState>, now: Instant) {
    let ids = match store.list_sales(0, MAX_SALES).await {
        Ok(ids) => ids,
        Err(err) => {
            tracing::debug!(error = %err, "webhooks: could not read the sales index");
            return;
        }
    };
    let ids: Vec<SaleId> = ids.iter().filter_map(|id| SaleId::parse(id).ok()).collect();
    sales.retain(|state| ids.contains(&state.sale));
    for id in ids {
        if !sales.iter().any(|state| state.sale == id) {
            sales.push(SaleState::new(id, now));
        }
    }
}

/// Takes up to `room` orders of one sale, claiming idle ones when due, and schedules its next
/// poll: at once when it had orders, later and later while it has none.
async fn take(
    shared: &Shared,
    state: &mut SaleState,
    room: usize,
    now: Instant,
) -> Vec<PendingOrder> {
    let claim_idle = shared.settings.claim_idle;
    let claim_ms = if now >= state.next_claim {
        state.next_claim = now + claim_idle / 2;
        claim_idle.as_millis() as u64
    } else {
        0
    };
    match shared
        .store
        .webhook_take(
            &state.sale,
            &shared.consumer,
            room,
            claim_ms,
            &state.claim_cursor,
        )
        .await
    {
        Ok(taken) => {
            if state.failing {
                tracing::info!(sale_id = %state.sale, "webhooks: reading orders again");
                state.failing = false;
            }
            state.claim_cursor = taken.claim_cursor;
            if taken.orders.is_empty() {
                state.idle = (state.idle * 2).clamp(IDLE_POLL_MIN, IDLE_POLL_MAX);
            } else {
                state.idle = Duration::ZERO;
            }
            state.next_poll = now + state.idle;
            taken.orders
        }
        Err(err) => {
            if !state.failing {
                tracing::warn!(sale_id = %state.sale, error = %err, "webhooks: cannot read orders; retrying");
                state.failing = true;
            }
            state.next_poll = now + IDLE_POLL_MAX;
            Vec::new()
        }
    }
}

/// Delivers one order until a 2xx, its last attempt, or the loss of its claim.
async fn deliver(
    shared: Arc<Shared>,
    sale: SaleId,
    order: PendingOrder,
    _slot: OwnedSemaphorePermit,
) {
    let event = OrderEvent::new(&order.order);
    let body = match serde_json::to_vec(&event) {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(sale_id = %sale, event_id = %event.event_id, error = %err, "webhooks: cannot encode order");
            return;
        }
    };
    let mut failed = order.attempts;
    loop {
        let result = post(&shared, &body, &event.event_id, failed + 1).await;
        let error = match result {
            Ok(()) => {
                crate::metrics::webhook_attempt("ok");
                crate::metrics::webhook_delivery("delivered");
                if let Err(err) = shared.store.webhook_done(&sale, &order).await {
                    // Delivered but not acknowledged: it is claimed and sent again later (at
                    // least once), and the receiver dedupes it by its event id.
                    tracing::warn!(sale_id = %sale, event_id = %event.event_id, error = %err, "webhooks: delivered but not acknowledged");
                }
                return;
            }
            Err(error) => error,
        };
        crate::metrics::webhook_attempt(error.metric());
        let recorded = shared
            .store
            .webhook_failed(
                &sale,
                &shared.consumer,
                &order,
                shared.settings.max_attempts,
                &error.to_string(),
            )
            .await;
        match recorded {
            Ok(FailedAttempt::Counted(attempts)) => {
                tracing::info!(sale_id = %sale, event_id = %event.event_id, attempts, error = %error, "webhooks: attempt failed; retrying");
                failed = attempts;
                tokio::time::sleep(backoff(&shared.settings, attempts)).await;
            }
            Ok(FailedAttempt::Dead) => {
                crate::metrics::webhook_delivery("dead");
                tracing::warn!(sale_id = %sale, event_id = %event.event_id, error = %error, "webhooks: order moved to the dead-letter stream after its last attempt");
                return;
            }
            Ok(FailedAttempt::Lost) => return,
            Err(err) => {
                // The order stays pending with this consumer and is claimed again when idle.
                log_store_error(&sale, &err);
                return;
            }
        }
    }
}

fn log_store_error(sale: &SaleId, err: &StoreError) {
    tracing::warn!(sale_id = %sale, error = %err, "webhooks: cannot record an attempt; the order will be claimed again");
}

/// One signed POST.
async fn post(
    shared: &Shared,
    body: &[u8],
    event_id: &str,
    attempt: u32,
) -> Result<(), AttemptError> {
    let now = chrono::Utc::now().timestamp();
    let signed = signature(shared.settings.secret.expose_secret(), now, body);
    let response = shared
        .http
        .post(shared.settings.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Flashsale-Event-Id", event_id)
        .header("Flashsale-Signature", signed)
        .header("Flashsale-Attempt", attempt)
        .body(body.to_vec())
        .send()
        .await;
    match response {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(AttemptError::Status(response.status().as_u16())),
        Err(err) if err.is_timeout() => Err(AttemptError::Timeout),
        // Without the URL (it may carry a token of the receiver's), with the causes ("error
        // sending request" alone does not say that the connection was refused).
        Err(err) => {
            let err = err.without_url();
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                let _ = write!(message, ": {cause}");
                source = cause.source();
            }
            Err(AttemptError::Request(message))
        }
    }
}

/// The wait after the `failures`-th failure: the base doubled each time, at most
/// `BACKOFF_MAX`, and short enough that the order is not claimed away meanwhile; a random
/// half of it is dropped (jitter) so retries of many orders spread out.
fn backoff(settings: &WebhookSettings, failures: u32) -> Duration {
    let ceiling = BACKOFF_MAX.min(settings.claim_idle.saturating_sub(settings.timeout) / 2);
    let full = settings
        .backoff
        .saturating_mul(1 << failures.saturating_sub(1).min(20))
        .min(ceiling);
    full.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// Sets the backlog gauges: undelivered orders over every sale and the oldest one's age.
async fn measure_backlog(store: &Store, sales: &[SaleState]) {
    let (mut undelivered, mut oldest_age) = (0, Duration::ZERO);
    for state in sales {
        match store.webhook_backlog(&state.sale).await {
            Ok(backlog) => {
                undelivered += backlog.undelivered;
                oldest_age = oldest_age.max(backlog.oldest_age);
            }
            Err(err) => {
                tracing::debug!(sale_id = %state.sale, error = %err, "webhooks: cannot measure the backlog");
                return;
            }
        }
    }
    crate::metrics::webhook_backlog(undelivered, oldest_age);
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn settings(backoff_ms: u64, claim_idle_ms: u64) -> WebhookSettings {
        WebhookSettings {
            url: reqwest::Url::parse("http://127.0.0.1:9/").unwrap(),
            secret: SecretString::from("0123456789abcdef"),
            timeout: Duration::from_millis(1_000),
            max_attempts: 5,
            claim_idle: Duration::from_millis(claim_idle_ms),
            backoff: Duration::from_millis(backoff_ms),
            concurrency: 4,
        }
    }

    #[test]
    fn signature_is_hmac_sha256_of_time_dot_body() {
        // Reference value: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_below_the_claim() {
        let settings = settings(100, 60_000);
        for failures in 1..=6 {
            let full = Duration::from_millis(100 * (1 << (failures - 1)));
            let wait = backoff(&settings, failures);
            assert!(wait >= full / 2 && wait <= full, "{failures}: {wait:?}");
        }
        let capped = backoff(&settings, 40);
        assert!(capped <= Duration::from_millis(29_500), "{capped:?}");
    }
}
