//! A per-instance cache of each sale's status, at most 100 ms old (README, The API), so thousands of
//! polling clients cost Redis about ten calls a second per sale and instance.
//!
//! Bounded: at most [`crate::domain::MAX_SALES`] sales are remembered (least used forgotten first), so asking
//! for a million random sale ids cannot grow memory without limit. One refresh at a time per
//! sale: when an entry expires, the first caller reads Redis while the others wait for its
//! answer instead of all reading Redis at once.

use crate::{
    domain::{SaleId, SaleSnapshot},
    store::{Store, StoreError},
};
use moka::future::Cache;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

pub const STATUS_MAX_AGE: Duration = Duration::from_millis(100);

/// A snapshot and the instant it was read; `None` when the sale did not exist.
#[derive(Debug, Clone)]
pub struct CachedStatus {
    pub snapshot: Option<SaleSnapshot>,
    pub read_at: Instant,
}

impl CachedStatus {
    /// The Redis clock now, advanced from the read by this instance's monotonic clock, so a
    /// cached answer still reports the current time and status.
    pub fn redis_now_ms(&self) -> Option<i64> {
        let snapshot = self.snapshot.as_ref()?;
        Some(snapshot.redis_now_ms + self.read_at.elapsed().as_millis() as i64)
    }
}

#[derive(Clone)]
pub struct StatusCache {
    entries: Cache<SaleId, Arc<CachedStatus>>,
}

impl StatusCache {
    /// Entries live `max_age`; at most `max_sales` sales are kept.
    pub fn new(max_age: Duration, max_sales: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(max_sales)
                .time_to_live(max_age)
                .build(),
        }
    }

    pub async fn get(&self, store: &Store, sale: &SaleId) -> Result<Arc<CachedStatus>, StoreError> {
        self.entries
            .try_get_with_by_ref(sale, async {
                let snapshot = store.status(sale).await?;
                if let Some(snapshot) = &snapshot {
                    // The gauge costs no Redis call: it follows the reads polling causes anyway.
                    crate::metrics::remaining_stock(sale.as_str(), snapshot.remaining_stock);
                    if let Some(room) = &snapshot.room {
                        let admitted = room.admitted_at(snapshot.start_ms, snapshot.redis_now_ms);
                        crate::metrics::queue_counts(sale.as_str(), room.queued(), admitted);
                    }
                }
                Ok(Arc::new(CachedStatus {
                    snapshot,
                    read_at: Instant::now(),
                }))
            })
            .await
            .map_err(Arc::unwrap_or_clone)
    }

    /// How many sales are remembered now (tests check the bound).
    pub async fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.entry_count()
    }
}
