//! `REDIS_*` and `PURCHASE_WAIT_*`: how the store connects, and whether purchases wait for
//! replicas.

use super::{within, ConfigError, Vars};
use crate::store::{RedisSettings, RedisUrl, ReplicaWait};
use std::{num::NonZeroUsize, time::Duration};

pub(super) fn read(vars: &Vars) -> Result<RedisSettings, ConfigError> {
    let url = vars
        .redis_url
        .as_deref()
        .map(|url| RedisUrl::parse(url).map_err(|e| ConfigError::var("REDIS_URL", e)))
        .transpose()?;
    let pool_size = within("REDIS_POOL_SIZE", vars.redis_pool_size, 1..=256)?;
    let timeout_ms = within("REDIS_TIMEOUT_MS", vars.redis_timeout_ms, 10..=60_000)?;
    Ok(RedisSettings {
        url,
        pool_size: NonZeroUsize::new(pool_size).unwrap_or(NonZeroUsize::MIN),
        timeout: Duration::from_millis(timeout_ms),
        startup_timeout: Duration::from_millis(within(
            "REDIS_STARTUP_TIMEOUT_MS",
            vars.redis_startup_timeout_ms,
            0..=600_000,
        )?),
        health_check: Duration::from_millis(within(
            "REDIS_HEALTH_CHECK_MS",
            vars.redis_health_check_ms,
            100..=300_000,
        )?),
        script_key_check: vars.redis_script_key_check,
    })
}

pub(super) fn replica_wait(vars: &Vars) -> Result<Option<ReplicaWait>, ConfigError> {
    let replicas = within(
        "PURCHASE_WAIT_REPLICAS",
        vars.purchase_wait_replicas,
        0..=16,
    )?;
    if replicas == 0 {
        return Ok(None);
    }
    // The wait is part of the purchase's Redis call, which REDIS_TIMEOUT_MS bounds in all.
    let most = vars.redis_timeout_ms.saturating_sub(1).max(1);
    let timeout_ms = vars.purchase_wait_timeout_ms;
    if !(1..=most).contains(&timeout_ms) {
        return Err(ConfigError::var(
            "PURCHASE_WAIT_TIMEOUT_MS",
            format!(
                "must be 1 to {most} (below REDIS_TIMEOUT_MS) with PURCHASE_WAIT_REPLICAS set (got {timeout_ms})"
            ),
        ));
    }
    Ok(Some(ReplicaWait {
        replicas,
        timeout_ms,
    }))
}
