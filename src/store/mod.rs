//! The Redis store: the only code that talks to Redis. It owns the fred pool, the key names
//! ([`keys`]) and the Lua scripts ([`scripts`]); handlers call its typed functions.

pub mod keys;
pub mod local_server;
pub mod scripts;

use crate::{
    config::{RedisSettings, RedisUrl, SaleSeed, UserAttemptLimit},
    domain::{Purchase, PurchaseOutcome, RequestToken, SaleId, SaleSnapshot, UserId, UserRecord},
};
use fred::bytes_utils::Str;
use fred::{
    prelude::*,
    types::{InfoKind, MultipleKeys},
};
use keys::SaleKeys;
use scripts::Scripts;
use std::time::Duration;

/// Why a Redis call failed, in the two kinds the HTTP layer tells apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis did not answer in time or could not be reached: the outcome is unknown, retry.
    #[error("redis unavailable: {0}")]
    Unavailable(#[source] fred::error::Error),
    /// Redis answered with something this build does not expect (a bug or a foreign key).
    #[error("unexpected redis reply: {0}")]
    Unexpected(String),
}

impl From<fred::error::Error> for StoreError {
    fn from(err: fred::error::Error) -> Self {
        match err.kind() {
            ErrorKind::Timeout | ErrorKind::IO | ErrorKind::Canceled | ErrorKind::Backpressure => {
                StoreError::Unavailable(err)
            }
            // A replica promoted mid-call, a cluster resharding or a server still loading its
            // data are passing states, not bugs: the client should retry.
            _ if [
                "LOADING",
                "READONLY",
                "CLUSTERDOWN",
                "TRYAGAIN",
                "MASTERDOWN",
                "BUSY",
            ]
            .iter()
            .any(|prefix| err.details().starts_with(prefix)) =>
            {
                StoreError::Unavailable(err)
            }
            _ => StoreError::Unexpected(err.to_string()),
        }
    }
}

/// A connected pool plus the key names of the sale this instance serves.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    keys: SaleKeys,
    scripts: Scripts,
}

impl Store {
    /// Connects the pool; fails fast when Redis cannot be reached at start-up.
    pub async fn connect(
        url: &RedisUrl,
        settings: &RedisSettings,
        sale: &SaleId,
    ) -> Result<Self, StoreError> {
        let config = Config::from_url(&fred_url(url.as_str()))?;
        let timeout = settings.timeout;
        let pool = Builder::from_config(config)
            .with_performance_config(|perf| {
                // fred's default is no timeout at all: a frozen Redis would hang every handler.
                perf.default_command_timeout = timeout;
            })
            .with_connection_config(|conn| {
                conn.connection_timeout = timeout;
                conn.internal_command_timeout = timeout;
                // In-flight commands are re-sent after a reconnect; purchase.lua is safe to run
                // twice (request tokens), which is what makes this default safe to keep.
                conn.max_command_attempts = 3;
                // A connection that stops answering is torn down and reconnected, instead of
                // every later command on it timing out.
                conn.unresponsive.max_timeout = Some(timeout.max(Duration::from_millis(500)));
                conn.unresponsive.interval = (timeout / 4).max(Duration::from_millis(50));
            })
            // Retry forever, 50 ms doubling up to 2 s: a flash sale cannot wait 30 s for Redis.
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
            .build_pool(settings.pool_size)?;
        pool.init().await?;
        Ok(Self {
            pool,
            keys: SaleKeys::new(sale),
            scripts: Scripts::new(),
        })
    }

    /// `SCRIPT LOAD`s every script (on every primary in cluster mode).
    pub async fn load_scripts(&self) -> Result<(), StoreError> {
        self.scripts.load_all(self.pool.next()).await
    }

    /// Creates the sale if it does not exist yet. Returns whether it was created.
    pub async fn create_sale_if_missing(&self, seed: &SaleSeed) -> Result<bool, StoreError> {
        let created: i64 = self
            .scripts
            .create_sale
            .call(self.pool.next(), || {
                (
                    self.keys.config_and_stock(),
                    vec![
                        Value::from(seed.product_name.as_str()),
                        Value::from(seed.total_stock as i64),
                        Value::from(seed.start.timestamp_millis()),
                        Value::from(seed.end.timestamp_millis()),
                    ],
                )
            })
            .await?;
        Ok(created == 1)
    }

    /// Runs `lua/purchase.lua`: the whole decision, one round trip.
    pub async fn purchase(
        &self,
        user: UserId,
        token: RequestToken,
        limit: UserAttemptLimit,
    ) -> Result<PurchaseOutcome, StoreError> {
        let rate_key = self.keys.attempts(&user);
        // Owned strings become `Str` without a copy; the closure then clones reference counts,
        // not bytes (it runs a second time only after a NOSCRIPT reload).
        let (user, token) = (
            Str::from(user.into_string()),
            Str::from(token.into_string()),
        );
        let (code, remaining, purchase_ms, order_number, retry_after_ms): (
            Str,
            i64,
            i64,
            i64,
            i64,
        ) = self
            .scripts
            .purchase
            .call(self.pool.next(), || {
                let keys = vec![
                    self.keys.config.clone(),
                    self.keys.stock.clone(),
                    self.keys.buyers.clone(),
                    rate_key.clone(),
                ];
                let args = vec![
                    Value::String(user.clone()),
                    Value::String(token.clone()),
                    Value::from(i64::from(limit.limit)),
                    Value::from(limit.window_ms as i64),
                ];
                (MultipleKeys::from(keys), args)
            })
            .await?;
        let purchase = Purchase {
            purchase_ms,
            order_number,
        };
        Ok(match &*code {
            "PURCHASED" => PurchaseOutcome::Purchased {
                remaining,
                purchase,
            },
            "ALREADY_PURCHASED" => PurchaseOutcome::AlreadyPurchased {
                remaining,
                purchase,
            },
            "SOLD_OUT" => PurchaseOutcome::SoldOut,
            "SALE_NOT_STARTED" => PurchaseOutcome::NotStarted { remaining },
            "SALE_ENDED" => PurchaseOutcome::Ended { remaining },
            "RATE_LIMITED" => PurchaseOutcome::RateLimited {
                remaining,
                retry_after: Duration::from_millis(retry_after_ms.max(1) as u64),
            },
            "SALE_NOT_FOUND" => PurchaseOutcome::SaleNotFound,
            other => {
                return Err(StoreError::Unexpected(format!(
                    "purchase.lua answered {other:?}"
                )))
            }
        })
    }

    /// Runs `lua/status.lua`: config, stock and the Redis clock in one round trip.
    pub async fn status(&self) -> Result<Option<SaleSnapshot>, StoreError> {
        let reply: Option<(String, i64, i64, i64, i64, i64)> = self
            .scripts
            .status
            .call(self.pool.next(), || {
                (self.keys.config_and_stock(), Vec::new())
            })
            .await?;
        Ok(reply.map(
            |(product_name, total_stock, remaining_stock, start_ms, end_ms, redis_now_ms)| {
                SaleSnapshot {
                    product_name,
                    total_stock,
                    remaining_stock,
                    start_ms,
                    end_ms,
                    redis_now_ms,
                }
            },
        ))
    }

    /// Runs `lua/user.lua`. `None` when the sale does not exist.
    pub async fn user(&self, user: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let reply: Vec<i64> = self
            .scripts
            .user
            .call(self.pool.next(), || {
                (
                    MultipleKeys::from(vec![self.keys.config.clone(), self.keys.buyers.clone()]),
                    vec![Value::from(user.as_str())],
                )
            })
            .await?;
        match reply.as_slice() {
            [0] => Ok(None),
            [1] => Ok(Some(UserRecord { purchase: None })),
            [1, purchase_ms, order_number] => Ok(Some(UserRecord {
                purchase: Some(Purchase {
                    purchase_ms: *purchase_ms,
                    order_number: *order_number,
                }),
            })),
            other => Err(StoreError::Unexpected(format!(
                "user.lua answered {other:?}"
            ))),
        }
    }

    /// Whether Redis answers a PING within the command timeout.
    pub async fn ping(&self) -> bool {
        self.pool.next().ping::<Value>(None).await.is_ok()
    }

    /// Ready = Redis answers and our scripts are in its cache. A missing script (Redis restarted,
    /// failed over or `SCRIPT FLUSH`ed) is loaded again here, so readiness heals itself.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.scripts.ensure_loaded(self.pool.next()).await
    }

    /// Redis's `maxmemory-policy`, read from `INFO memory` (managed Redis often forbids `CONFIG GET`).
    pub async fn eviction_policy(&self) -> Result<Option<String>, StoreError> {
        let info: String = self.pool.next().info(Some(InfoKind::Memory)).await?;
        Ok(info
            .lines()
            .find_map(|line| line.strip_prefix("maxmemory_policy:"))
            .map(|policy| policy.trim().to_owned()))
    }

    pub async fn quit(&self) {
        // Best effort at shutdown: the connections close with the process anyway.
        let _ = self.pool.quit().await;
    }
}

/// What a worker needs to connect its own pool.
#[derive(Clone, Debug)]
pub struct StoreConnector {
    url: RedisUrl,
    settings: RedisSettings,
    sale: SaleId,
}

impl StoreConnector {
    pub fn new(url: RedisUrl, settings: RedisSettings, sale: SaleId) -> Self {
        Self {
            url,
            settings,
            sale,
        }
    }

    pub async fn connect(&self) -> Result<Store, StoreError> {
        Store::connect(&self.url, &self.settings, &self.sale).await
    }
}

/// The store of one HTTP worker. actix-web runs each worker on a single-threaded runtime of its
/// own; a pool connected from that thread keeps fred's connection tasks there too, so a purchase
/// never crosses threads between its handler and its Redis reply (README, Benchmarks).
/// Connected once, on first use; a failed connect is tried again by the next request.
pub struct WorkerStore {
    connector: StoreConnector,
    store: tokio::sync::OnceCell<Store>,
}

impl WorkerStore {
    pub fn new(connector: StoreConnector) -> Self {
        Self {
            connector,
            store: tokio::sync::OnceCell::new(),
        }
    }

    pub async fn get(&self) -> Result<&Store, StoreError> {
        self.store
            .get_or_try_init(|| self.connector.connect())
            .await
    }
}

/// fred reads extra cluster nodes from `?node=` query parameters; SPEC §4 lists them
/// comma-separated (`redis-cluster://a:7000,b:7001`), so the list is rewritten into that form.
fn fred_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    let mut hosts = hosts.split(',');
    let first = hosts.next().unwrap_or_default();
    let extra: Vec<String> = hosts.map(|host| format!("node={host}")).collect();
    if extra.is_empty() {
        return url.to_owned();
    }
    let separator = if tail.contains('?') { '&' } else { '?' };
    format!(
        "{scheme}://{userinfo}{first}{tail}{separator}{}",
        extra.join("&")
    )
}

#[cfg(test)]
mod tests {
    use super::fred_url;

    #[test]
    fn comma_separated_cluster_nodes_become_node_parameters() {
        assert_eq!(
            fred_url("redis-cluster://:pw@a:7000,b:7001,c:7002"),
            "redis-cluster://:pw@a:7000?node=b:7001&node=c:7002"
        );
        assert_eq!(
            fred_url("redis://localhost:6379/0"),
            "redis://localhost:6379/0"
        );
    }
}
