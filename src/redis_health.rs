//! What `/health` reports beyond "Redis answers": the reasons this instance is degraded.
//!
//! A background check reads Redis's memory and eviction policy every `REDIS_HEALTH_CHECK_MS`
//! (a policy can be changed at run time, and memory fills during a drop), and every purchase
//! answered 5xx is noted as it happens; `/health` then says `degraded` with each reason.

use crate::store::{MemoryInfo, Store, StoreError};
use std::{
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

/// Memory use, as a share of `maxmemory`, from which a purchase may soon meet `OOM`.
const NEAR_FULL: f64 = 0.9;
/// How long a failed purchase keeps `/health` degraded.
const FAILING_FOR: Duration = Duration::from_secs(10);

/// Shared by the HTTP workers and the background check.
#[derive(Clone, Default)]
pub struct RedisHealth {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// From the last background check.
    reasons: RwLock<Vec<String>>,
    /// Unix ms of the last purchase answered 5xx, and how many in the current stretch.
    last_failure_ms: AtomicI64,
    failures: AtomicI64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl RedisHealth {
    /// A purchase was answered 5xx (Redis unreachable, timed out, or "not now").
    pub fn purchase_failed(&self) {
        let now = now_ms();
        let last = self.inner.last_failure_ms.swap(now, Ordering::Relaxed);
        if now - last > FAILING_FOR.as_millis() as i64 {
            self.inner.failures.store(1, Ordering::Relaxed);
        } else {
            self.inner.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every reason this instance is degraded now; empty when it is not.
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons = self
            .inner
            .reasons
            .read()
            .map(|reasons| reasons.clone())
            .unwrap_or_default();
        let since = now_ms() - self.inner.last_failure_ms.load(Ordering::Relaxed);
        if since <= FAILING_FOR.as_millis() as i64 {
            reasons.push(format!(
                "purchases failing: {} answered 5xx, the last {} s ago",
                self.inner.failures.load(Ordering::Relaxed),
                since / 1000
            ));
        }
        reasons
    }

    fn set(&self, reasons: Vec<String>) {
        if let Ok(mut current) = self.inner.reasons.write() {
            *current = reasons;
        }
    }

    /// Checks Redis every `every`, logging each reason when it appears and when it clears.
    pub fn spawn_check(&self, store: Store, every: Duration) -> tokio::task::JoinHandle<()> {
        let health = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut last: Vec<String> = Vec::new();
            loop {
                tick.tick().await;
                let reasons = match store.memory_info().await {
                    Ok(info) => reasons_of(&info),
                    // A report without the fields (logged and counted by the store): the
                    // eviction policy is unknown, which is a reason in itself.
                    Err(StoreError::BadData { detail, .. }) => vec![format!(
                        "Redis memory and eviction policy could not be read ({detail})"
                    )],
                    // Redis answered with an error (an ACL without INFO, a managed plan that
                    // renames it): it is there, but whether it evicts cannot be known.
                    Err(StoreError::Unexpected(detail)) => vec![format!(
                        "the eviction policy cannot be read: INFO memory was refused ({detail}); \
                         make sure this Redis does not evict (noeviction)"
                    )],
                    // Unreachable Redis is `/health`'s "disconnected": nothing to add here.
                    Err(_) => continue,
                };
                for reason in reasons.iter().filter(|reason| !last.contains(reason)) {
                    tracing::warn!(reason = %reason, "Redis health: degraded");
                }
                if reasons.is_empty() && !last.is_empty() {
                    tracing::info!("Redis health: ok again");
                }
                health.set(reasons.clone());
                last = reasons;
            }
        })
    }
}

/// The reasons a memory report gives to worry.
fn reasons_of(info: &MemoryInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    match info.policy.as_deref() {
        Some("noeviction") => {}
        Some(policy) => reasons.push(format!(
            "maxmemory-policy is {policy}: Redis may evict stock or buyer records; set noeviction"
        )),
        // Some managed Redis (Upstash's, Fly's) leave it out of INFO: it may well evict.
        None => reasons.push(
            "the eviction policy cannot be read: INFO memory has no maxmemory_policy; make sure \
             this Redis does not evict (noeviction)"
                .to_owned(),
        ),
    }
    if info.max_bytes > 0 {
        let share = info.used_bytes as f64 / info.max_bytes as f64;
        if share >= NEAR_FULL {
            reasons.push(format!(
                "Redis memory at {:.0}% of maxmemory: purchases will be refused (503) when full",
                share * 100.0
            ));
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_and_a_nearly_full_redis_are_reasons() {
        let calm = MemoryInfo {
            used_bytes: 10,
            max_bytes: 0,
            policy: Some("noeviction".into()),
        };
        assert!(reasons_of(&calm).is_empty());
        let full = MemoryInfo {
            used_bytes: 95,
            max_bytes: 100,
            policy: Some("allkeys-lru".into()),
        };
        let reasons = reasons_of(&full);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].contains("allkeys-lru"));
        assert!(reasons[1].contains("95%"));
        let unknown = MemoryInfo {
            used_bytes: 10,
            max_bytes: 0,
            policy: None,
        };
        let reasons = reasons_of(&unknown);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].starts_with("the eviction policy cannot be read"));
    }

    #[test]
    fn a_failed_purchase_degrades_for_a_while() {
        let health = RedisHealth::default();
        assert!(health.reasons().is_empty());
        health.purchase_failed();
        health.purchase_failed();
        let reasons = health.reasons();
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].starts_with("purchases failing: 2 answered 5xx"));
    }
}
