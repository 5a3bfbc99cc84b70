//! The Redis store: the only code that talks to Redis. It owns the connections, the key names
//! ([`keys`]) and the Lua scripts ([`scripts`]); handlers call its typed functions with the
//! [`SaleId`] of the sale they serve, so one store serves every sale.

pub mod admin;
pub mod keys;
pub mod local_server;
pub mod scripts;
pub mod url;
pub mod webhooks;

use crate::domain::{
    Purchase, PurchaseOutcome, RequestToken, SaleId, SaleSnapshot, UserId, UserRecord,
};
use fred::{
    bytes_utils::Str,
    prelude::*,
    types::{
        config::{Config, Options},
        ClusterHash, InfoKind, MultipleKeys,
    },
};
use futures_util::FutureExt;
use keys::SaleKeys;
use scripts::Scripts;
use std::{
    num::NonZeroUsize,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
pub use url::RedisUrl;

/// How the store connects (`REDIS_URL`, `REDIS_TIMEOUT_MS`).
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `None`: start an embedded local `redis-server` (SPEC §4).
    pub url: Option<RedisUrl>,
    /// `REDIS_POOL_SIZE`: connections of the whole instance, shared out among its HTTP workers.
    pub pool_size: NonZeroUsize,
    pub timeout: Duration,
    /// `REDIS_STARTUP_TIMEOUT_MS`: how long start-up keeps trying to reach Redis.
    pub startup_timeout: Duration,
    /// `REDIS_HEALTH_CHECK_MS`: how often memory and eviction policy are checked.
    pub health_check: Duration,
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

/// What a new sale holds: name, stock and window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleSeed {
    pub product_name: String,
    pub total_stock: u64,
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
}

impl SaleSeed {
    /// The sale of local mode: 100 units, starting now, ending in one hour.
    pub fn demo(now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            product_name: "Demo product".to_owned(),
            total_stock: 100,
            start: now,
            end: now + chrono::Duration::hours(1),
        }
    }
}

/// Why a Redis call failed, in the two kinds the HTTP layer tells apart.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Redis did not answer in time, could not be reached, or said "not now": the outcome is
    /// unknown, and a retry is safe (SPEC §7).
    #[error("redis unavailable: {0}")]
    Unavailable(#[source] fred::error::Error),
    /// Redis answered with something this build does not expect (a bug or a foreign key).
    #[error("unexpected redis reply: {0}")]
    Unexpected(String),
}

/// Reply prefixes that mean "not now" rather than "wrong": a replica promoted mid-call, a
/// cluster moving a slot, a server loading its data or out of memory, a script running long.
const PASSING_STATES: [&str; 8] = [
    "LOADING",
    "READONLY",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "MASTERDOWN",
    "BUSY",
    "OOM",
    "NOREPLICAS",
];

/// fred's own messages, under `ErrorKind::Unknown`, for a command it could not finish: its
/// connection was gone when it was to be written ("Failed to route command.", "Missing expected
/// connection.") or before its reply came ("Missing response."), as when Redis kills the
/// service's connections. The outcome is unknown or nothing was applied: "not now" (503), which
/// the buyer's retry settles, never 500.
const FRED_GAVE_UP: [&str; 6] = [
    "channel closed",
    "Too many failed write attempts",
    "Max attempts reached",
    "Failed to route command",
    "Missing expected connection",
    "Missing response",
];

impl From<fred::error::Error> for StoreError {
    fn from(err: fred::error::Error) -> Self {
        let passing = PASSING_STATES
            .iter()
            .any(|prefix| err.details().starts_with(prefix));
        match err.kind() {
            ErrorKind::Timeout
            | ErrorKind::IO
            | ErrorKind::Canceled
            | ErrorKind::Backpressure
            | ErrorKind::Routing
            | ErrorKind::Cluster => StoreError::Unavailable(err),
            _ if passing => StoreError::Unavailable(err),
            // fred gave up on a command mid-flight (its connection was torn down, as during a
            // failover, or its writes kept failing): the outcome is unknown, not a bug.
            ErrorKind::Unknown
                if FRED_GAVE_UP
                    .iter()
                    .any(|message| err.details().contains(message)) =>
            {
                StoreError::Unavailable(err)
            }
            _ => StoreError::Unexpected(err.to_string()),
        }
    }
}

/// A set of Redis connections and the scripts. Clones share the connections.
///
/// Each HTTP worker owns one store, built for it at start-up and connected on the worker's own
/// thread ([`Store::connect`]), so a purchase never crosses threads between its handler and its
/// Redis reply (README, Benchmarks).
#[derive(Clone)]
pub struct Store {
    clients: Arc<[Client]>,
    next: Arc<AtomicUsize>,
    scripts: Scripts,
    timeout: Duration,
    replica_wait: Option<ReplicaWait>,
}

impl Store {
    /// Builds `connections` clients, not yet connected.
    pub fn new(url: &RedisUrl, timeout: Duration, connections: NonZeroUsize) -> Self {
        let clients = (0..connections.get())
            .map(|_| client(url.config().clone(), timeout))
            .collect();
        Self {
            clients,
            next: Arc::new(AtomicUsize::new(0)),
            scripts: Scripts::new(),
            timeout,
            replica_wait: None,
        }
    }

    /// Purchases wait for replicas (`PURCHASE_WAIT_REPLICAS`) before they are answered.
    pub fn with_replica_wait(mut self, wait: Option<ReplicaWait>) -> Self {
        self.replica_wait = wait;
        self
    }

    /// Starts the connection tasks on the current runtime; commands sent before they are up
    /// wait for them (bounded by the command timeout).
    ///
    /// Each task is supervised: fred's connection task ends for good when its router meets an
    /// error it does not retry (seen while Redis Cluster moves a slot: "Max attempts reached"),
    /// and every later command on that client would then time out until a restart. The
    /// supervisor starts the task again, so the client recovers by itself.
    pub fn connect(&self) {
        for client in self.clients.iter() {
            tokio::spawn(supervise(client.clone()));
        }
    }

    /// Connects and waits until every connection is up: start-up fails fast when Redis cannot
    /// be reached.
    pub async fn connect_and_wait(&self) -> Result<(), StoreError> {
        self.connect();
        for client in self.clients.iter() {
            client.wait_for_connect().await?;
        }
        Ok(())
    }

    /// The next connection, preferring one that is connected right now. When none is (the
    /// worker just started, or Redis is reconnecting), waits for one, at most the command
    /// timeout: a cluster client cannot route anything before it has read the slot map.
    async fn client(&self) -> &Client {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.clients.len();
        let connected = (0..count)
            .map(|offset| &self.clients[(start + offset) % count])
            .find(|client| client.is_connected());
        if let Some(client) = connected {
            return client;
        }
        let client = &self.clients[start % count];
        // On timeout the command is sent anyway and fails or waits on its own timeout.
        let _ = tokio::time::timeout(self.timeout, client.wait_for_connect()).await;
        client
    }

    /// Runs one store call within `REDIS_TIMEOUT_MS` in all: waiting for a connection, a
    /// NOSCRIPT reload and its retry included, so no request hangs past the timeout.
    fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> {
        // A plain function, not an `async fn`: an async fn would keep `work` in its state twice
        // (as its argument and inside the timeout), doubling every store call's future.
        tokio::time::timeout(self.timeout, work).map(|result| {
            result.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(fred::error::Error::new(
                    ErrorKind::Timeout,
                    "no answer within REDIS_TIMEOUT_MS",
                )))
            })
        })
    }

    /// `SCRIPT LOAD`s every script (on every primary in cluster mode).
    pub async fn load_scripts(&self) -> Result<(), StoreError> {
        self.scripts.load_all(self.client().await).await
    }

    /// Creates the sale if it does not exist yet. Returns whether it was created.
    pub async fn create_sale_if_missing(
        &self,
        sale: &SaleId,
        seed: &SaleSeed,
    ) -> Result<bool, StoreError> {
        let keys = SaleKeys::new(sale);
        let created: i64 = self
            .scripts
            .create_sale
            .call(self.client().await, || {
                (
                    MultipleKeys::from(keys.config()),
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
        sale: &SaleId,
        user: UserId,
        token: RequestToken,
        limit: UserAttemptLimit,
        request_id: &str,
    ) -> Result<PurchaseOutcome, StoreError> {
        let keys = SaleKeys::new(sale);
        let keys = keys.for_purchase(&user);
        let (sale_id, request_id) = (Str::from(sale.as_str()), Str::from(request_id));
        // Owned strings become `Str` without a copy; the closure then clones reference counts,
        // not bytes (it runs a second time only after a NOSCRIPT reload).
        let (user, token) = (
            Str::from(user.into_string()),
            Str::from(token.into_string()),
        );
        let args = || {
            let mut args = vec![
                Value::String(user.clone()),
                Value::String(token.clone()),
                Value::from(i64::from(limit.limit)),
                Value::from(limit.window_ms as i64),
                Value::String(sale_id.clone()),
                Value::String(request_id.clone()),
            ];
            if self.replica_wait.is_some() {
                args.push(Value::from("1"));
            }
            (keys.clone(), args)
        };
        let reply: PurchaseReply = self
            .bounded(async {
                let client = self.client().await;
                match self.replica_wait {
                    None => self.scripts.purchase.call(client, args).await,
                    // Boxed: off the hot path, and its pipeline future is as large as the rest.
                    Some(wait) => Box::pin(self.purchase_and_wait(client, wait, args)).await,
                }
            })
            .await?;
        let (code, remaining, purchase_ms, order_number, retry_after_ms) = reply;
        PurchaseOutcome::from_reply((&code, remaining, purchase_ms, order_number, retry_after_ms))
            .map_err(StoreError::Unexpected)
    }

    /// The purchase script and `WAIT` in one pipeline on one connection, so `WAIT` covers the
    /// script's write even when fred re-sends both after a reconnect (a replayed purchase
    /// writes again, see `lua/purchase.lua`). A `PURCHASED` that too few replicas acknowledged
    /// in time is "not now" (503): the buyer's retry with the same key settles it.
    async fn purchase_and_wait<F>(
        &self,
        client: &Client,
        wait: ReplicaWait,
        args: F,
    ) -> Result<PurchaseReply, StoreError>
    where
        F: Fn() -> (MultipleKeys, Vec<Value>),
    {
        let (keys, values) = args();
        // WAIT has no key: in a cluster it must go to the node of the sale's slot.
        let slot = keys
            .clone()
            .inner()
            .first()
            .map_or(0, |key| fred::util::redis_keyslot(key.as_bytes()));
        // Both commands go to the node of the sale's slot (WAIT has no key, and a custom
        // EVALSHA's first argument is the script's hash). Neither is re-sent after a lost
        // connection: a WAIT re-sent alone, on a new connection that wrote nothing, would
        // return at once and vouch for a write it never saw (seen in the failover test).
        // The buyer's retry (503) runs both again, and the replayed script writes again.
        let options = Options {
            cluster_hash: Some(ClusterHash::Custom(slot)),
            max_attempts: Some(1),
            ..Options::default()
        };
        let options = &options;
        let send = |keys: MultipleKeys, values: Vec<Value>| async move {
            let pipeline = client.pipeline();
            let routed = pipeline.with_options(options);
            let mut evalsha = Vec::with_capacity(2 + keys.len() + values.len());
            evalsha.push(Value::from(self.scripts.purchase.sha1()));
            evalsha.push(Value::from(keys.len() as i64));
            evalsha.extend(keys.inner().into_iter().map(Value::from));
            evalsha.extend(values);
            let _: () = routed.custom(fred::cmd!("EVALSHA"), evalsha).await?;
            let _: () = routed
                .wait(i64::from(wait.replicas), wait.timeout_ms as i64)
                .await?;
            Ok::<_, fred::error::Error>(pipeline.try_all::<Value>().await)
        };
        let mut replies = send(keys, values).await?;
        let no_script =
            matches!(replies.first(), Some(Err(err)) if err.details().starts_with("NOSCRIPT"));
        if no_script {
            crate::metrics::script_reload("purchase");
            self.scripts.purchase.load(client).await?;
            let (keys, values) = args();
            replies = send(keys, values).await?;
        }
        let mut replies = replies.into_iter();
        let (reply, acked) = match (replies.next(), replies.next()) {
            (Some(reply), Some(acked)) => (reply, acked),
            // The pipeline failed as a whole (a timeout, the connection lost).
            (Some(Err(err)), None) => return Err(err.into()),
            _ => {
                return Err(StoreError::Unexpected(
                    "a pipeline of two answered less".into(),
                ))
            }
        };
        let reply: PurchaseReply = reply?.convert()?;
        let acked = acked?.as_i64().unwrap_or(0);
        if reply.0 == "PURCHASED" && acked < i64::from(wait.replicas) {
            return Err(StoreError::Unavailable(fred::error::Error::new(
                ErrorKind::Timeout,
                format!(
                    "NOREPLICAS {acked} of {} replicas acknowledged the purchase in time",
                    wait.replicas
                ),
            )));
        }
        Ok(reply)
    }

    /// Runs `lua/status.lua`: config, stock and the Redis clock in one round trip.
    pub async fn status(&self, sale: &SaleId) -> Result<Option<SaleSnapshot>, StoreError> {
        let keys = SaleKeys::new(sale);
        let reply: Option<(String, i64, i64, i64, i64, i64)> = self
            .bounded(async {
                let client = self.client().await;
                self.scripts
                    .status
                    .call(client, || (MultipleKeys::from(keys.config()), Vec::new()))
                    .await
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
    pub async fn user(
        &self,
        sale: &SaleId,
        user: &UserId,
    ) -> Result<Option<UserRecord>, StoreError> {
        let keys = SaleKeys::new(sale);
        let reply: Vec<i64> = self
            .bounded(async {
                let client = self.client().await;
                self.scripts
                    .user
                    .call(client, || {
                        (keys.config_and_buyers(), vec![Value::from(user.as_str())])
                    })
                    .await
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
        self.bounded(async { Ok(self.client().await.ping::<Value>(None).await?) })
            .await
            .is_ok()
    }

    /// Ready = Redis answers and our scripts are in its cache. A missing script (Redis restarted,
    /// failed over or `SCRIPT FLUSH`ed) is loaded again here, so readiness heals itself.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.bounded(async { self.scripts.ensure_loaded(self.client().await).await })
            .await
    }

    /// Memory use, limit and eviction policy, from `INFO memory` (managed Redis often forbids
    /// `CONFIG GET`).
    pub async fn memory_info(&self) -> Result<MemoryInfo, StoreError> {
        let info: String = self
            .bounded(async { Ok(self.client().await.info(Some(InfoKind::Memory)).await?) })
            .await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let bytes = |name: &str| field(name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(MemoryInfo {
            used_bytes: bytes("used_memory"),
            max_bytes: bytes("maxmemory"),
            policy: field("maxmemory_policy").map(str::to_owned),
        })
    }
}

/// Redis's memory as `INFO memory` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryInfo {
    pub used_bytes: u64,
    /// 0 = no limit.
    pub max_bytes: u64,
    pub policy: Option<String>,
}

/// `{code, remainingStock, purchaseMs, orderNumber, retryAfterMs}` from `lua/purchase.lua`.
type PurchaseReply = (Str, i64, i64, i64, i64);

/// Runs a client's connection task, starting it again whenever it ends with an error; it
/// returns when the client was closed on purpose (`QUIT`).
async fn supervise(client: Client) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(50);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = std::time::Instant::now();
        match client.connect().await {
            Ok(Ok(())) => return,
            Ok(Err(err)) => tracing::warn!(
                error = %err,
                "Redis connection task stopped; starting it again"
            ),
            Err(err) => tracing::warn!(
                error = %err,
                "Redis connection task failed; starting it again"
            ),
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = FIRST_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One connection with the settings that matter for a flash sale.
fn client(config: Config, timeout: Duration) -> Client {
    let perf = PerformanceConfig {
        // fred's default is no timeout at all: a frozen Redis would hang every handler.
        default_command_timeout: timeout,
        ..PerformanceConfig::default()
    };
    let mut connection = ConnectionConfig {
        connection_timeout: timeout,
        internal_command_timeout: timeout,
        // In-flight commands are re-sent after a reconnect; purchase.lua is safe to run twice
        // (request tokens), which is what makes this default safe to keep.
        max_command_attempts: 3,
        // MOVED/ASK redirections are followed a few times while a slot migrates, then the
        // command fails (503 to the client) instead of looping until the timeout.
        max_redirections: 5,
        ..ConnectionConfig::default()
    };
    // A connection that stops answering is torn down and reconnected, instead of every later
    // command on it timing out.
    connection.unresponsive.max_timeout = Some(timeout.max(Duration::from_millis(500)));
    connection.unresponsive.interval = (timeout / 4).max(Duration::from_millis(50));
    // Retry forever, 50 ms doubling up to 2 s: a flash sale cannot wait 30 s for Redis.
    let policy = ReconnectPolicy::new_exponential(0, 50, 2_000, 2);
    Client::new(config, Some(perf), Some(connection), Some(policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_not_now_reply_is_unavailable_and_anything_else_unexpected() {
        let not_now = [
            "OOM command not allowed when used memory > 'maxmemory'.",
            "LOADING Redis is loading the dataset in memory",
            "BUSY Redis is busy running a script.",
            "READONLY You can't write against a read only replica.",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "MASTERDOWN Link with MASTER is down",
            "NOREPLICAS Not enough good replicas to write.",
        ];
        for details in not_now {
            let err = fred::error::Error::new(ErrorKind::Unknown, details);
            assert!(
                matches!(StoreError::from(err), StoreError::Unavailable(_)),
                "{details}"
            );
        }
        for kind in [ErrorKind::Timeout, ErrorKind::IO, ErrorKind::Canceled] {
            let err = fred::error::Error::new(kind, "connection reset by peer");
            assert!(matches!(StoreError::from(err), StoreError::Unavailable(_)));
        }
        for details in [
            "Failed to route command.",
            "Missing expected connection.",
            "Missing response.",
        ] {
            let err = fred::error::Error::new(ErrorKind::Unknown, details);
            assert!(
                matches!(StoreError::from(err), StoreError::Unavailable(_)),
                "{details}"
            );
        }
        let bug = fred::error::Error::new(ErrorKind::Unknown, "ERR wrong number of arguments");
        assert!(matches!(StoreError::from(bug), StoreError::Unexpected(_)));
    }
}
#[cfg(test)]
mod future_size {
    use super::*;

    /// A purchase's future is moved whole whenever actix or tokio moves the request's future:
    /// fred's command futures held inline made it 16 KB and memmove 7 % of the service's CPU.
    #[test]
    fn a_purchase_future_stays_small() {
        let url = RedisUrl::parse("redis://127.0.0.1:1").unwrap();
        let store = Store::new(&url, Duration::from_secs(1), NonZeroUsize::MIN);
        let sale = SaleId::parse("sale").unwrap();
        let user = UserId::parse("user".into()).unwrap();
        let limit = UserAttemptLimit {
            limit: 10,
            window_ms: 10_000,
        };
        let purchase = store.purchase(&sale, user, RequestToken::generate(), limit, "request");
        let size = std::mem::size_of_val(&purchase);
        assert!(size <= 2048, "a purchase's future is {size} bytes");
    }
}
