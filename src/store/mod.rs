//! The Redis store: the only code that talks to Redis. It owns the connections, the key names
//! ([`keys`]) and the Lua scripts (`scripts`, one type per call); handlers call its typed
//! functions with the [`SaleId`] of the sale they serve and get domain types or a
//! [`StoreError`] back, never a Redis value.

pub mod admin;
pub mod checkout;
mod connection;
pub mod doctor;
mod error;
pub mod keys;
pub mod local_server;
mod migrate;
mod purchase;
pub mod queue;
mod records;
pub mod scripts;
mod settings;
pub mod url;
pub mod webhooks;

pub use checkout::OrderRef;
pub use error::StoreError;
pub use purchase::Ask;
pub use records::{DeadOrder, OrderEntry, PendingOrder, Source};
pub use scripts::{JoinReply, QueuePlace};
pub use scripts::{OrderAction, OrderChange, OrderRecord, OrderStep, Swept};
pub use settings::{RedisSettings, ReplicaWait, UserAttemptLimit};
pub use url::RedisUrl;

use crate::domain::{SaleId, SaleSnapshot, UserId, UserRecord};
use connection::{Connections, Deadline};
use fred::{bytes_utils::Str, clients::WithOptions, prelude::*, types::InfoKind};
use futures_util::FutureExt;
use keys::SaleKeys;
use scripts::{ScriptCall, Scripts, Status, User};
use std::{future::Future, num::NonZeroUsize, time::Duration};

/// Redis's memory as `INFO memory` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryInfo {
    pub used_bytes: u64,
    /// 0 = no limit.
    pub max_bytes: u64,
    pub policy: Option<String>,
}

/// The buyer buckets a script call is built with (every script that touches a bucket is given
/// it: SPEC §2): the sale's `buyerBuckets` as the store last saw it, which the script checks,
/// and, when the call is about a user, that user's bucket.
#[derive(Clone)]
pub(super) struct Buckets {
    pub count: u32,
    /// The user and the key of their bucket among `count`.
    pub user: Option<(Str, fred::types::Key)>,
}

/// What a script given [`Buckets`] answered: done, or that it needs the sale's
/// `buyerBuckets` (and `user`'s bucket among them, when `user` is some), having written
/// nothing (`lua/prelude.lua`, `needs_buckets`): the call is built again
/// ([`Store::eval_with_buckets`]).
pub(super) enum Bucketed<T> {
    Done(T),
    Needs { buckets: u32, user: Option<String> },
}

/// A pool of Redis connections and the scripts. Clones share the connections.
///
/// Each HTTP worker owns one store, built for it at start-up and connected on the worker's own
/// thread ([`Store::connect`]), so a purchase never crosses threads between its handler and its
/// Redis reply (README, Benchmarks).
#[derive(Clone)]
pub struct Store {
    connections: std::sync::Arc<Connections>,
    scripts: Scripts,
    timeout: Duration,
    replica_wait: Option<ReplicaWait>,
    /// Per sale: its buyer buckets and the purchases waiting to be decided together.
    lanes: std::sync::Arc<purchase::Lanes>,
    /// `PURCHASE_LOCAL_REFUSALS`: new users of a sold-out sale are refused without Redis once
    /// `lua/sold_out.lua` vouched for the buyers this store knows.
    local_refusals: bool,
    /// The last error a connection met (TLS, refused, AUTH): a command that then times out
    /// says only "no answer", and start-up's one line should say why.
    last_error: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Store {
    /// Builds `connections` clients, not yet connected.
    pub fn new(url: &RedisUrl, timeout: Duration, connections: NonZeroUsize) -> Self {
        let clients = (0..connections.get())
            .map(|_| connection::client(url.config().clone(), timeout))
            .collect();
        Self {
            connections: std::sync::Arc::new(Connections::new(clients)),
            scripts: Scripts::new(false),
            timeout,
            replica_wait: None,
            lanes: std::sync::Arc::new(purchase::Lanes::new(1)),
            local_refusals: false,
            last_error: Default::default(),
        }
    }

    /// What the connections last failed with, if they did (README, Deploy: a `rediss://`
    /// certificate no trusted CA signed shows as `InvalidCertificate(UnknownIssuer)`).
    pub fn last_connection_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|last| last.clone())
    }

    /// Up to `max` purchases of one sale are decided by one script call (`PURCHASE_BATCH_MAX`;
    /// 1 = each alone, as a store is built).
    pub fn with_batch_max(mut self, max: usize) -> Self {
        self.lanes = std::sync::Arc::new(purchase::Lanes::new(max));
        self
    }

    /// New users of a sold-out sale are refused by this store alone, without Redis, while
    /// `lua/sold_out.lua` keeps vouching for the sale's buyers it knows
    /// (`PURCHASE_LOCAL_REFUSALS`; off as a store is built).
    pub fn with_local_refusals(mut self, on: bool) -> Self {
        self.local_refusals = on;
        self
    }

    /// Every script checks that each key it touches was given in KEYS
    /// (`REDIS_SCRIPT_KEY_CHECK`; off as a store is built).
    pub fn with_key_check(mut self, on: bool) -> Self {
        self.scripts = Scripts::new(on);
        self
    }

    /// Purchases wait for replicas (`PURCHASE_WAIT_REPLICAS`) before they are answered.
    pub fn with_replica_wait(mut self, wait: Option<ReplicaWait>) -> Self {
        self.replica_wait = wait;
        self
    }

    /// Starts the connection tasks on the current runtime, each supervised so a client whose
    /// task ended recovers by itself; commands sent before they are up wait for them (bounded
    /// by the command timeout).
    pub fn connect(&self) {
        for index in 0..self.connections.len() {
            tokio::spawn(connection::supervise(
                self.connections.clone(),
                index,
                self.last_error.clone(),
            ));
        }
    }

    /// Connects and waits until every connection is up: start-up fails fast when Redis cannot
    /// be reached.
    pub async fn connect_and_wait(&self) -> Result<(), StoreError> {
        self.connect();
        for index in 0..self.connections.len() {
            self.connections.get(index).wait_for_connect().await?;
        }
        Ok(())
    }

    /// The next connection, preferring one that is connected right now. When none is (the
    /// worker just started, or Redis is reconnecting), waits for one until the call's
    /// `send_by`: a cluster client cannot route anything before it has read the slot map.
    async fn client(&self, deadline: Deadline) -> Client {
        let client = self.connections.next_connected();
        if !client.is_connected() {
            // Past it the command is handed to fred anyway, whose own timeout (the rest of the
            // deadline, or none: then it is not sent) fails it without ever writing it.
            let _ = tokio::time::timeout_at(deadline.send_by(), client.wait_for_connect()).await;
        }
        client
    }

    /// A deadline `REDIS_TIMEOUT_MS` from now.
    fn deadline(&self) -> Deadline {
        Deadline::after(self.timeout)
    }

    /// Runs one store call until its deadline: waiting for a connection, a NOSCRIPT reload and
    /// its retry included, so no request hangs past the timeout. Its commands time out by
    /// themselves just before (see [`Deadline`]); this bound catches anything else.
    fn within<T>(
        deadline: Deadline,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> impl Future<Output = Result<T, StoreError>> {
        // A plain function, not an `async fn`: an async fn would keep `work` in its state twice
        // (as its argument and inside the timeout), doubling every store call's future.
        tokio::time::timeout_at(deadline.answer_by(), work)
            .map(|result| result.unwrap_or_else(|_| Err(StoreError::deadline_passed())))
    }

    /// Runs one script call, bounded, and parses its reply: the one way a script is run.
    fn eval<'s, C: ScriptCall + 's>(
        &'s self,
        call: C,
    ) -> impl Future<Output = Result<C::Output, StoreError>> + 's {
        self.eval_by(self.deadline(), call)
    }

    /// [`Self::eval`] by a deadline the caller set.
    fn eval_by<'s, C: ScriptCall + 's>(
        &'s self,
        deadline: Deadline,
        call: C,
    ) -> impl Future<Output = Result<C::Output, StoreError>> + 's {
        Self::within(deadline, async move {
            let client = self.client(deadline).await;
            let reply = C::script(&self.scripts)
                .call(&client, deadline, || call.keys_and_args())
                .await?;
            C::parse(reply)
        })
    }

    /// Runs a script call that is given buyer buckets ([`Buckets`]): built for this store's
    /// latest `buyerBuckets` of the sale and for `user` (when the caller knows the user), and
    /// built again with what the script answers it needs (another `buyerBuckets`, or the user
    /// of an order found by number), which it answers having written nothing. The service
    /// computes every bucket, so no script names a key it was not given (SPEC §2). All the
    /// calls share one deadline (`REDIS_TIMEOUT_MS` in all).
    async fn eval_with_buckets<T, C, F>(
        &self,
        sale: &SaleId,
        user: Option<&str>,
        call: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Buckets) -> C,
        C: ScriptCall<Output = Bucketed<T>>,
    {
        let keys = SaleKeys::new(sale);
        let given = |count: u32, user: Option<&str>| Buckets {
            count,
            user: user.map(|user| {
                let key = keys.bucket_of(keys::user_hash(user), count);
                (Str::from(user), key)
            }),
        };
        let mut buckets = given(self.lanes.buckets(sale), user);
        let deadline = self.deadline();
        // The first answer may name the sale's buckets, the second the order's user; a sale
        // replaced in between may take one more.
        for _ in 0..4 {
            match self.eval_by(deadline, call(buckets.clone())).await? {
                Bucketed::Done(done) => return Ok(done),
                Bucketed::Needs {
                    buckets: count,
                    user: needed,
                } => {
                    self.lanes.saw_buckets(sale, count);
                    buckets = given(count, needed.as_deref().or(user));
                }
            }
        }
        Err(StoreError::Unexpected(
            "a script kept answering that it needs other buyer buckets".into(),
        ))
    }

    /// Runs one plain command on a connection, bounded: the connection it is given carries
    /// the deadline as fred's timeout. Sent again while Redis does not run it because its slot
    /// is moving, as a script call is.
    async fn command<T, F, Fut>(&self, command: F) -> Result<T, StoreError>
    where
        F: Fn(WithOptions<Client>) -> Fut,
        Fut: Future<Output = Result<T, fred::error::Error>>,
    {
        let deadline = self.deadline();
        Self::within(deadline, async {
            let client = self.client(deadline).await;
            Ok(connection::send_while_slot_moves(deadline, |options| {
                Box::pin(command(client.with_options(&options)))
            })
            .await??)
        })
        .await
    }

    /// `SCRIPT LOAD`s every script (on every primary in cluster mode).
    pub async fn load_scripts(&self) -> Result<(), StoreError> {
        self.scripts
            .load_all(&self.client(self.deadline()).await)
            .await
    }

    /// Runs `lua/status.lua`: config, stock and the Redis clock in one round trip.
    pub async fn status(&self, sale: &SaleId) -> Result<Option<SaleSnapshot>, StoreError> {
        self.eval(Status {
            keys: SaleKeys::new(sale),
        })
        .await
    }

    /// Runs `lua/user.lua`. `None` when the sale does not exist.
    pub async fn user(
        &self,
        sale: &SaleId,
        user: &UserId,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.eval_with_buckets(sale, Some(user.as_str()), |buckets| User {
            keys: SaleKeys::new(sale),
            user: user.as_str(),
            buckets,
        })
        .await
    }

    /// Whether Redis answers a PING within the command timeout.
    pub async fn ping(&self) -> bool {
        self.command(|client| async move { client.ping::<Value>(None).await })
            .await
            .is_ok()
    }

    /// Ready = Redis answers and our scripts are in its cache. A missing script (Redis restarted,
    /// failed over or `SCRIPT FLUSH`ed) is loaded again here, so readiness heals itself.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let deadline = self.deadline();
        // Script loads are not given the deadline: one that runs late loads a script, no harm.
        Self::within(deadline, async {
            self.scripts
                .ensure_loaded(&self.client(deadline).await)
                .await
        })
        .await
    }

    /// Memory use, limit and eviction policy, from `INFO memory` (managed Redis often forbids
    /// `CONFIG GET`).
    pub async fn memory_info(&self) -> Result<MemoryInfo, StoreError> {
        let info: String = self
            .command(|client| async move { client.info(Some(InfoKind::Memory)).await })
            .await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let bytes = |name: &str| -> Result<u64, StoreError> {
            let text = field(name)
                .ok_or_else(|| StoreError::bad_data("INFO memory", format!("no {name}")))?;
            text.parse()
                .map_err(|_| StoreError::bad_data("INFO memory", format!("{name}: {text:?}")))
        };
        Ok(MemoryInfo {
            used_bytes: bytes("used_memory")?,
            max_bytes: bytes("maxmemory")?,
            policy: field("maxmemory_policy").map(str::to_owned),
        })
    }
}
