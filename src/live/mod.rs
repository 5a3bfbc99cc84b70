//! Live status for browsers: one watcher per sale that has subscribers, fanning the sale's
//! status out to every Server-Sent Events stream of this instance.
//!
//! Redis load follows the number of sales being watched, never the number of clients: a
//! watcher reads the status (through the status cache) at most every [`WATCH_EVERY`] and
//! publishes it only when it changed; streams only subscribe. A watcher stops when its last
//! subscriber leaves.

use crate::{
    domain::{SaleId, SaleSnapshot},
    status_cache::StatusCache,
    store::Store,
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// How often a watcher reads its sale (README, API: changes reach clients within about 100 ms).
pub const WATCH_EVERY: Duration = Duration::from_millis(100);

/// What a stream shows: the sale's snapshot and the Redis clock it was judged at, or `None`
/// while the sale does not exist.
pub type LiveStatus = Option<(SaleSnapshot, i64)>;

/// The hub of one instance: its watchers, the stream cap, and the shutdown signal.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    watchers: Mutex<HashMap<SaleId, watch::Receiver<LiveStatus>>>,
    slots: Arc<Semaphore>,
    closing: watch::Sender<bool>,
}

impl Live {
    /// A hub allowing `max_streams` concurrent streams (`SSE_MAX_STREAMS`).
    pub fn new(max_streams: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                watchers: Mutex::new(HashMap::new()),
                slots: Arc::new(Semaphore::new(max_streams)),
                closing: watch::channel(false).0,
            }),
        }
    }

    /// A stream slot, or `None` when every slot is taken. The slot is freed when the permit
    /// is dropped, which happens as soon as the client's stream is.
    pub fn slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.inner.slots).try_acquire_owned().ok()
    }

    /// Tells every stream to end (on shutdown).
    pub fn close_all(&self) {
        self.inner.closing.send_replace(true);
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// Subscribes to a sale, starting its watcher if none runs.
    pub fn subscribe(
        &self,
        sale: &SaleId,
        store: &Store,
        cache: &StatusCache,
    ) -> watch::Receiver<LiveStatus> {
        let Ok(mut watchers) = self.inner.watchers.lock() else {
            // A poisoned map means a watcher panicked; serve this stream from its own watcher.
            return start_watcher(sale.clone(), store.clone(), cache.clone(), None);
        };
        if let Some(existing) = watchers.get(sale) {
            if existing.has_changed().is_ok() {
                return existing.clone();
            }
        }
        let receiver = start_watcher(
            sale.clone(),
            store.clone(),
            cache.clone(),
            Some(Arc::clone(&self.inner)),
        );
        watchers.insert(sale.clone(), receiver.clone());
        receiver
    }
}

/// Whether two statuses look the same to a person: same stock, state, name and window (the
/// clock alone moving is no change).
pub fn same_view(a: &LiveStatus, b: &LiveStatus) -> bool {
    match (a, b) {
        (Some((old, old_now)), Some((new, new_now))) => {
            old.remaining_stock == new.remaining_stock
                && old.status_at(*old_now) == new.status_at(*new_now)
                && old.product_name == new.product_name
                && (old.start_ms, old.end_ms) == (new.start_ms, new.end_ms)
        }
        (None, None) => true,
        _ => false,
    }
}

/// Spawns the watcher of one sale; it ends when no receiver is left but the hub's own.
fn start_watcher(
    sale: SaleId,
    store: Store,
    cache: StatusCache,
    hub: Option<Arc<Inner>>,
) -> watch::Receiver<LiveStatus> {
    let (sender, receiver) = watch::channel(None);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The hub keeps one receiver; beyond it are the streams.
        let own = usize::from(hub.is_some());
        let mut first = true;
        loop {
            tick.tick().await;
            if !first && sender.receiver_count() <= own {
                break;
            }
            first = false;
            let Ok(cached) = cache.get(&store, &sale).await else {
                // Redis is away: keep the last status; the stream's heartbeat keeps it open.
                continue;
            };
            let now = cached.redis_now_ms();
            let status = cached.snapshot.clone().zip(now);
            sender.send_if_modified(|current: &mut LiveStatus| {
                let changed = !same_view(current, &status);
                if changed {
                    *current = status.clone();
                }
                changed
            });
        }
        if let Some(hub) = hub {
            if let Ok(mut watchers) = hub.watchers.lock() {
                watchers.remove(&sale);
            }
        }
    });
    receiver
}
