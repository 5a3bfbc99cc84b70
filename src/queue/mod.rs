//! The waiting room (README, Waiting room): each instance's view of which sales have a room and
//! their draws ([`Rooms`]), the signing of admissions and tickets (`sign`), and the bulk
//! reading of pre-queue places once a sale starts.
//!
//! Admission is never pushed by a timer: where a buyer stands is computed from their position,
//! the sale's counters and Redis's clock (`domain::Standing`). A purchase's admission is checked
//! here before the store is called, so a purchase without one costs no Redis call.

mod sign;

pub use sign::{Signer, Ticket};

use crate::{
    config::RoomSecret,
    domain::{SaleId, MAX_SALES},
    store::{
        queue::{RoomKeys, RANKS_PER_CALL},
        Store, StoreError,
    },
};
use moka::future::Cache;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};
use tokio::sync::oneshot;

/// How long an instance trusts what it read of a sale's room. A room switched on is enforced
/// by the purchase script at once; this only bounds how long an instance keeps calling Redis
/// for purchases it could have refused itself (and, switched off, refusing them).
pub const ROOM_MAX_AGE: Duration = Duration::from_secs(1);

/// Pre-queue places waiting to be read, per sale: the buyer and who waits for the answer.
type Pending = HashMap<SaleId, Vec<(String, oneshot::Sender<Option<i64>>)>>;

/// The rooms this instance has read, each with when it was read: what every purchase looks at
/// first. A lock and a map because moka's bookkeeping of each read (its frequency sketch, read
/// log and housekeeping) cost ~2,000 instructions a purchase, a tenth of what flashsale adds to
/// actix-web and fred (callgrind; README, Benchmarks). Sales are few ([`MAX_SALES`]) and an
/// entry is trusted for [`ROOM_MAX_AGE`].
type Known = RwLock<HashMap<SaleId, (Instant, Arc<RoomKeys>)>>;

/// This instance's waiting-room state: the rooms it has read, its signer, and the pre-queue
/// places being read.
#[derive(Clone)]
pub struct Rooms {
    known: Arc<Known>,
    /// Reads the rooms the map does not hold fresh, one read per sale at a time: the
    /// purchases that find a room stale together wait for that read and share its answer,
    /// rather than sending Redis one read each.
    reads: Cache<SaleId, Arc<RoomKeys>>,
    signer: Option<Signer>,
    pending: Arc<Mutex<Pending>>,
}

/// Why a room cannot be used on this instance.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sale has a room and this instance has no `WAITING_ROOM_SECRET`.
    #[error(
        "WAITING_ROOM_SECRET is not set on this instance, so it cannot sign or check admissions"
    )]
    NoSecret,
}

impl Rooms {
    pub fn new(secret: Option<&RoomSecret>) -> Self {
        Self {
            known: Arc::default(),
            reads: Cache::builder()
                .max_capacity(MAX_SALES)
                .time_to_live(ROOM_MAX_AGE)
                .build(),
            signer: secret.map(Signer::new),
            pending: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The sale's room as last read (at most [`ROOM_MAX_AGE`] old).
    pub async fn keys(&self, store: &Store, sale: &SaleId) -> Result<Arc<RoomKeys>, StoreError> {
        if let Some(keys) = self.fresh(sale) {
            return Ok(keys);
        }
        let keys = self
            .reads
            .try_get_with_by_ref(sale, async { Ok(Arc::new(store.room_keys(sale).await?)) })
            .await
            .map_err(Arc::<StoreError>::unwrap_or_clone)?;
        self.remember(sale, Arc::clone(&keys));
        Ok(keys)
    }

    fn fresh(&self, sale: &SaleId) -> Option<Arc<RoomKeys>> {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        let (read_at, keys) = known.get(sale)?;
        (read_at.elapsed() < ROOM_MAX_AGE).then(|| Arc::clone(keys))
    }

    fn remember(&self, sale: &SaleId, keys: Arc<RoomKeys>) {
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        let most = usize::try_from(MAX_SALES).unwrap_or(usize::MAX);
        if known.len() >= most && !known.contains_key(sale) {
            // Full: what is stale goes; a sale past the bound is simply read each time.
            known.retain(|_, (read_at, _)| read_at.elapsed() < ROOM_MAX_AGE);
            if known.len() >= most {
                return;
            }
        }
        known.insert(sale.clone(), (Instant::now(), keys));
    }

    /// Forgets what was read of a sale's room (the purchase script or join said otherwise).
    pub async fn forget(&self, sale: &SaleId) {
        self.known
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(sale);
        self.reads.invalidate(sale).await;
    }

    /// The signer, for a sale whose room is on.
    pub fn signer(&self) -> Result<&Signer, RoomError> {
        self.signer.as_ref().ok_or(RoomError::NoSecret)
    }

    /// The drawn position of a pre-queue buyer once the sale has started. Every caller of this
    /// instance that asks at about the same time is answered by one script call (up to
    /// [`RANKS_PER_CALL`] members each), so a start with thousands of waiting streams costs
    /// Redis a handful of calls, not one per stream. `None` when the member is not there.
    pub async fn pre_queue_position(
        &self,
        store: &Store,
        sale: &SaleId,
        user: String,
    ) -> Result<Option<i64>, StoreError> {
        let (sender, receiver) = oneshot::channel();
        let leads = {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| StoreError::Unexpected("pre-queue lock poisoned".into()))?;
            let waiting = pending.entry(sale.clone()).or_default();
            waiting.push((user, sender));
            waiting.len() == 1
        };
        if leads {
            // The first asker reads for everyone who arrives while it waits and reads.
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.read_pending(store, sale).await;
        }
        receiver
            .await
            .map_err(|_| StoreError::Unexpected("pre-queue read abandoned".into()))?
            .ok_or_else(|| StoreError::timed_out("pre-queue places could not be read"))
            .map(|position| (position > 0).then_some(position))
    }

    /// Reads every pending member of a sale, a batch at a time, until none is left. A batch
    /// that fails answers its askers `None` (they retry on their next tick).
    async fn read_pending(&self, store: &Store, sale: &SaleId) {
        loop {
            let batch: Vec<_> = {
                let Ok(mut pending) = self.pending.lock() else {
                    return;
                };
                let Some(waiting) = pending.get_mut(sale) else {
                    return;
                };
                let take = waiting.len().min(RANKS_PER_CALL);
                let batch: Vec<_> = waiting.drain(..take).collect();
                if batch.is_empty() {
                    pending.remove(sale);
                    return;
                }
                batch
            };
            let members = batch.iter().map(|(member, _)| member.clone()).collect();
            match store.queue_ranks(sale, members).await {
                Ok(positions) => {
                    for ((_, sender), position) in batch.into_iter().zip(positions) {
                        let _ = sender.send(Some(position));
                    }
                }
                Err(err) => {
                    tracing::warn!(sale_id = %sale, error = %err, "pre-queue places not read");
                    for (_, sender) in batch {
                        let _ = sender.send(None);
                    }
                }
            }
        }
    }
}
