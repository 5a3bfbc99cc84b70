//! A per-instance cache of the sale status, at most 100 ms old (SPEC §3), so thousands of
//! polling clients cost Redis about ten calls a second per instance.
//!
//! One refresh at a time: when the entry expires, the first caller reads Redis while the others
//! wait for its answer instead of all reading Redis at once.

use crate::{
    domain::SaleSnapshot,
    store::{Store, StoreError},
};
use std::{
    sync::{Arc, RwLock},
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

pub struct StatusCache {
    max_age: Duration,
    entry: RwLock<Option<Arc<CachedStatus>>>,
    refresh: tokio::sync::Mutex<()>,
}

impl StatusCache {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            entry: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    pub async fn get(&self, store: &Store) -> Result<Arc<CachedStatus>, StoreError> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let _refreshing = self.refresh.lock().await;
        // Whoever held the lock before us may have refreshed it already.
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let cached = Arc::new(CachedStatus {
            snapshot: store.status().await?,
            read_at: Instant::now(),
        });
        if let Ok(mut entry) = self.entry.write() {
            *entry = Some(Arc::clone(&cached));
        }
        Ok(cached)
    }

    fn fresh(&self) -> Option<Arc<CachedStatus>> {
        let entry = self.entry.read().ok()?;
        entry
            .as_ref()
            .filter(|cached| cached.read_at.elapsed() < self.max_age)
            .cloned()
    }
}
