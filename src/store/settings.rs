//! How the store is set up: the connection settings, the per-user attempt limit the purchase
//! script enforces, and the replica wait.

use super::url::RedisUrl;
use std::{num::NonZeroUsize, time::Duration};

/// How the store connects (`REDIS_URL`, `REDIS_TIMEOUT_MS`).
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `None`: start an embedded local `redis-server` (README, Quick start).
    pub url: Option<RedisUrl>,
    /// `REDIS_POOL_SIZE`: connections of the whole instance, shared out among its HTTP workers.
    pub pool_size: NonZeroUsize,
    pub timeout: Duration,
    /// `REDIS_STARTUP_TIMEOUT_MS`: how long start-up keeps trying to reach Redis.
    pub startup_timeout: Duration,
    /// `REDIS_HEALTH_CHECK_MS`: how often memory and eviction policy are checked.
    pub health_check: Duration,
    /// `REDIS_SCRIPT_KEY_CHECK`: every script raises an error on a key it was not given in
    /// KEYS (`lua/key_check.lua`); for tests, off by default.
    pub script_key_check: bool,
}

/// Purchase attempts per user per window, enforced inside the purchase script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserAttemptLimit {
    /// 0 = off.
    pub limit: u32,
    pub window_ms: u64,
}

/// `PURCHASE_WAIT_REPLICAS`: a purchase is answered `PURCHASED` only once this many replicas
/// have its write (Redis `WAIT`), else 503 and the buyer's retry settles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    pub replicas: u32,
    pub timeout_ms: u64,
}
