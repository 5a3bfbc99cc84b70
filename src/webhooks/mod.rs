//! Order webhooks: each instance runs one delivery loop that POSTs every order, signed, to
//! `ORDER_WEBHOOK_URL`, at least once (README, "Orders to fulfilment").
//!
//! The loop is a consumer in one consumer group per sale's order stream, so instances share
//! the work; an order is acknowledged only after a 2xx; an order left pending by a dead instance
//! is claimed after `ORDER_WEBHOOK_CLAIM_IDLE_MS`; after `ORDER_WEBHOOK_MAX_ATTEMPTS` failures an
//! order moves to the dead-letter stream. It runs off the request path, at most
//! `ORDER_WEBHOOK_CONCURRENCY` deliveries at once, and reads no more orders than it has room
//! for, so a receiver that is down or slow costs bounded memory: the backlog waits in Redis.

mod delivery;

pub use delivery::{signature, OrderEvent};

use crate::{
    config::WebhookSettings,
    domain::{SaleId, MAX_SALES},
    store::{PendingOrder, Store},
};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{
    sync::Semaphore,
    task::{JoinHandle, JoinSet},
};

/// How often the list of sales is read again from the sales index.
const SALES_REFRESH: Duration = Duration::from_secs(5);
/// How often the backlog gauges are measured.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);
/// A sale with nothing to deliver is polled again after this, doubling up to `IDLE_POLL_MAX`.
const IDLE_POLL_MIN: Duration = Duration::from_millis(50);
const IDLE_POLL_MAX: Duration = Duration::from_secs(1);

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
    tracing::info!(url = %settings.url_for_logs(), consumer = %consumer, "order webhooks on");
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
                deliveries.spawn(delivery::deliver(
                    shared.clone(),
                    state.sale.clone(),
                    order,
                    permit,
                ));
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
