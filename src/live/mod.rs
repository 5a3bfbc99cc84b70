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
    net::IpAddr,
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
    /// Open streams per client address, each at most `per_client`.
    clients: OpenStreams,
    per_client: usize,
    closing: watch::Sender<bool>,
}

/// Open streams per client address.
type OpenStreams = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRefused {
    /// Every stream slot of the instance is taken (`SSE_MAX_STREAMS`).
    Full,
    /// This client address holds its share already (`SSE_MAX_STREAMS_PER_CLIENT`).
    ClientFull,
}

/// A stream's slot: the instance's and its client's. Both are given back when it is dropped,
/// which happens as soon as the client's stream is.
pub struct StreamSlot {
    _permit: OwnedSemaphorePermit,
    client: Option<(IpAddr, OpenStreams)>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let Some((ip, clients)) = &self.client else {
            return;
        };
        if let Ok(mut clients) = clients.lock() {
            if let Some(open) = clients.get_mut(ip) {
                *open -= 1;
                if *open == 0 {
                    clients.remove(ip);
                }
            }
        }
    }
}

impl Live {
    /// A hub allowing `max_streams` concurrent streams (`SSE_MAX_STREAMS`), at most
    /// `per_client` from one address (`SSE_MAX_STREAMS_PER_CLIENT`).
    pub fn new(max_streams: usize, per_client: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                watchers: Mutex::new(HashMap::new()),
                slots: Arc::new(Semaphore::new(max_streams)),
                clients: Arc::new(Mutex::new(HashMap::new())),
                per_client,
                closing: watch::channel(false).0,
            }),
        }
    }

    /// A stream slot for a client at `client` (`None`: the address is unknown, counted only
    /// against the instance's cap).
    pub fn slot(&self, client: Option<IpAddr>) -> Result<StreamSlot, SlotRefused> {
        let permit = Arc::clone(&self.inner.slots)
            .try_acquire_owned()
            .map_err(|_| SlotRefused::Full)?;
        let Some(ip) = client else {
            return Ok(StreamSlot {
                _permit: permit,
                client: None,
            });
        };
        let Ok(mut clients) = self.inner.clients.lock() else {
            return Err(SlotRefused::Full);
        };
        let open = clients.entry(ip).or_insert(0);
        if *open >= self.inner.per_client {
            return Err(SlotRefused::ClientFull);
        }
        *open += 1;
        Ok(StreamSlot {
            _permit: permit,
            client: Some((ip, Arc::clone(&self.inner.clients))),
        })
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
                && old.held_stock == new.held_stock
                && old.status_at(*old_now) == new.status_at(*new_now)
                && old.product_name == new.product_name
                && (old.start_ms, old.end_ms) == (new.start_ms, new.end_ms)
                && old.room == new.room
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
