//! The Lua scripts, embedded in the binary, loaded at start-up and called by SHA, and one small
//! type per script call (`ScriptCall`) that owns the script's KEYS and ARGV order and parses
//! its reply, as mini-redis has one type per command.
//!
//! Each script is `lua/prelude.lua` (the helpers every script shares) followed by its own file,
//! joined at build time. `NOSCRIPT` (Redis restarted, failed over, or `SCRIPT FLUSH`) is handled
//! by loading the script again and retrying once.

mod admin;
mod checkout;
mod queue;
mod sale;
mod webhook;

pub(super) use admin::{
    CreateSale, DeleteSale, PatchSale, PutSale, Restock, SaleStatsRead, UpgradeSale,
};
pub use admin::{PatchOutcome, PutOutcome, Restocked, SaleStats};
pub use checkout::{OrderAction, OrderChange, OrderRecord, OrderStep, Swept};
pub(super) use checkout::{OrderCall, Sweep};
pub use queue::{JoinReply, QueuePlace};
pub(super) use queue::{QueueJoin, QueueRanks};
pub use sale::{purchase_fixed_keys, put_decide_item, put_refuse_item, PurchaseEntry};
pub(super) use sale::{BatchReply, PurchaseBatch, SoldOutBatch, SoldOutReply, Status, User};
pub use webhook::{Backlog, FailedAttempt, Taken, WEBHOOK_GROUP};
pub(super) use webhook::{WebhookBacklog, WebhookDone, WebhookFailed, WebhookRedrive, WebhookTake};

use super::{
    connection::{send_while_slot_moves, Deadline},
    error::StoreError,
    keys::SaleKeys,
    Bucketed, Buckets,
};
use crate::domain::RoomSnapshot;
use fred::{
    bytes_utils::Str,
    prelude::*,
    types::{config::Options, scripts::Script, ClusterHash, MultipleKeys},
};

/// The source of one script as Redis runs it: the prelude, then the script's own file.
macro_rules! script_source {
    ($file:literal) => {
        concat!(
            include_str!("../../../lua/prelude.lua"),
            "\n",
            include_str!(concat!("../../../lua/", $file))
        )
    };
}

/// The check that every key a script touches is in KEYS (`REDIS_SCRIPT_KEY_CHECK`; tests put
/// it in front of the scripts they call directly).
pub const KEY_CHECK: &str = include_str!("../../../lua/key_check.lua");

/// The purchase script as Redis runs it (tests call it directly to replay a re-sent call).
pub const PURCHASE_SOURCE: &str = script_source!("purchase.lua");

/// The sold-out script as Redis runs it (tests compare it with the purchase script).
pub const SOLD_OUT_SOURCE: &str = script_source!("sold_out.lua");

/// One call of one script: its KEYS and ARGV in the script's order, and its reply as a type.
/// Nothing outside the store sees the arguments or the reply.
pub(super) trait ScriptCall {
    type Output;
    /// The script this call runs.
    fn script(scripts: &Scripts) -> &LuaScript;
    /// KEYS and ARGV, built once (and again only after a `NOSCRIPT` reload).
    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>);
    /// The reply; anything the script never answers is [`StoreError::Unexpected`].
    fn parse(reply: Value) -> Result<Self::Output, StoreError>;
}

/// One embedded script.
#[derive(Clone)]
pub(super) struct LuaScript {
    name: &'static str,
    script: Script,
}

impl LuaScript {
    /// With `key_check`, `lua/key_check.lua` goes in front: a command naming a key that is not
    /// in KEYS raises an error (`REDIS_SCRIPT_KEY_CHECK`; the tests run with it).
    fn new(name: &'static str, source: &'static str, key_check: bool) -> Self {
        let script = if key_check {
            Script::from_lua(format!("{KEY_CHECK}\n{source}"))
        } else {
            Script::from_lua(source)
        };
        Self { name, script }
    }

    pub(super) fn name(&self) -> &'static str {
        self.name
    }

    pub(super) fn sha1(&self) -> &str {
        self.script.sha1()
    }

    /// `SCRIPT LOAD` (on every primary in cluster mode).
    pub(super) async fn load(&self, client: &Client) -> Result<(), StoreError> {
        self.script.load(client).await?;
        Ok(())
    }

    /// `EVALSHA`, reloading and retrying once on `NOSCRIPT` and sending it again while Redis
    /// does not run it because its slot is moving ([`send_while_slot_moves`]), each attempt carrying the call's
    /// deadline as fred's timeout. The arguments come from a closure so the hot path builds
    /// them once and only the rare retry builds them again.
    ///
    /// fred's command futures are large (about 7 KB each): held inline, they made a purchase's
    /// future 16 KB, copied whole each time actix or tokio moved it (README, Benchmarks). Boxed,
    /// each costs one allocation and the callers stay small.
    pub(super) async fn call<F>(
        &self,
        client: &Client,
        deadline: Deadline,
        args: F,
    ) -> Result<Value, StoreError>
    where
        F: Fn() -> (MultipleKeys, Vec<Value>),
    {
        match self.send(client, deadline, &args).await? {
            Err(err) if err.details().starts_with("NOSCRIPT") => {
                Box::pin(self.reload_and_call(client, deadline, args)).await
            }
            result => Ok(result?),
        }
    }

    /// `EVALSHA`, sent again while its slot is moving.
    async fn send<F>(
        &self,
        client: &Client,
        deadline: Deadline,
        args: &F,
    ) -> Result<Result<Value, fred::error::Error>, StoreError>
    where
        F: Fn() -> (MultipleKeys, Vec<Value>),
    {
        send_while_slot_moves(deadline, |options| {
            Box::pin(self.evalsha(client, options, args()))
        })
        .await
    }

    /// One `EVALSHA` with these options (the deadline's timeout). fred's `evalsha` takes none
    /// (its `WithOptions` has no scripting commands and would silently call the plain client),
    /// so it is sent as a custom command, routed in a cluster by its first key's slot as
    /// `evalsha` routes it.
    async fn evalsha(
        &self,
        client: &Client,
        mut options: Options,
        (keys, values): (MultipleKeys, Vec<Value>),
    ) -> Result<Value, fred::error::Error> {
        let keys = keys.inner();
        if client.is_clustered() {
            options.cluster_hash = keys
                .first()
                .map(|key| ClusterHash::Custom(fred::util::redis_keyslot(key.as_bytes())));
        }
        client
            .with_options(&options)
            .custom(fred::cmd!("EVALSHA"), self.evalsha_args(keys, values))
            .await
    }

    /// `EVALSHA`'s arguments: the script's hash, the number of keys, the keys, ARGV.
    pub(super) fn evalsha_args(
        &self,
        keys: Vec<fred::types::Key>,
        values: Vec<Value>,
    ) -> Vec<Value> {
        let mut command = Vec::with_capacity(2 + keys.len() + values.len());
        // The hash is shared bytes: cloned per call for free.
        command.push(Value::String(self.script.sha1().clone()));
        command.push(int(keys.len()));
        command.extend(keys.into_iter().map(Value::from));
        command.extend(values);
        command
    }

    /// The rare path of [`Self::call`]: Redis lost its scripts (restart, failover, flush).
    async fn reload_and_call<F>(
        &self,
        client: &Client,
        deadline: Deadline,
        args: F,
    ) -> Result<Value, StoreError>
    where
        F: Fn() -> (MultipleKeys, Vec<Value>),
    {
        tracing::warn!(
            script = self.name,
            "script missing from the Redis cache (restart or flush); reloading"
        );
        crate::metrics::script_reload(self.name);
        self.script.load(client).await?;
        Ok(self.send(client, deadline, &args).await??)
    }
}

/// Every script of the service.
#[derive(Clone)]
pub(super) struct Scripts {
    purchase: LuaScript,
    sold_out: LuaScript,
    status: LuaScript,
    user: LuaScript,
    create_sale: LuaScript,
    put_sale: LuaScript,
    patch_sale: LuaScript,
    restock: LuaScript,
    sale_stats: LuaScript,
    delete_sale: LuaScript,
    upgrade_sale: LuaScript,
    webhook_take: LuaScript,
    webhook_done: LuaScript,
    webhook_failed: LuaScript,
    webhook_redrive: LuaScript,
    webhook_backlog: LuaScript,
    order: LuaScript,
    sweep: LuaScript,
    queue_join: LuaScript,
    queue_ranks: LuaScript,
}

impl Scripts {
    /// Every script; with `key_check`, each raises an error on a key not in its KEYS.
    pub(super) fn new(key_check: bool) -> Self {
        let new = |name, source| LuaScript::new(name, source, key_check);
        Self {
            purchase: new("purchase", PURCHASE_SOURCE),
            sold_out: new("sold_out", SOLD_OUT_SOURCE),
            status: new("status", script_source!("status.lua")),
            user: new("user", script_source!("user.lua")),
            create_sale: new("create_sale", script_source!("create_sale.lua")),
            put_sale: new("put_sale", script_source!("put_sale.lua")),
            patch_sale: new("patch_sale", script_source!("patch_sale.lua")),
            restock: new("restock", script_source!("restock.lua")),
            sale_stats: new("sale_stats", script_source!("sale_stats.lua")),
            delete_sale: new("delete_sale", script_source!("delete_sale.lua")),
            upgrade_sale: new("upgrade_sale", script_source!("upgrade_sale.lua")),
            webhook_take: new("webhook_take", script_source!("webhook_take.lua")),
            webhook_done: new("webhook_done", script_source!("webhook_done.lua")),
            webhook_failed: new("webhook_failed", script_source!("webhook_failed.lua")),
            webhook_redrive: new("webhook_redrive", script_source!("webhook_redrive.lua")),
            webhook_backlog: new("webhook_backlog", script_source!("webhook_backlog.lua")),
            order: new("order", script_source!("order.lua")),
            sweep: new("sweep", script_source!("sweep.lua")),
            queue_join: new("queue_join", script_source!("queue_join.lua")),
            queue_ranks: new("queue_ranks", script_source!("queue_ranks.lua")),
        }
    }

    fn all(&self) -> [&LuaScript; 20] {
        [
            &self.purchase,
            &self.sold_out,
            &self.status,
            &self.user,
            &self.create_sale,
            &self.put_sale,
            &self.patch_sale,
            &self.restock,
            &self.sale_stats,
            &self.delete_sale,
            &self.upgrade_sale,
            &self.webhook_take,
            &self.webhook_done,
            &self.webhook_failed,
            &self.webhook_redrive,
            &self.webhook_backlog,
            &self.order,
            &self.sweep,
            &self.queue_join,
            &self.queue_ranks,
        ]
    }

    /// `SCRIPT LOAD` of every script; in cluster mode fred sends it to every primary.
    pub(super) async fn load_all(&self, client: &Client) -> Result<(), StoreError> {
        for script in self.all() {
            script.load(client).await?;
        }
        Ok(())
    }

    /// Loads the scripts again if Redis has lost any of them.
    pub(super) async fn ensure_loaded(&self, client: &Client) -> Result<(), StoreError> {
        let hashes: Vec<String> = self
            .all()
            .iter()
            .map(|script| script.sha1().to_owned())
            .collect();
        let present: Vec<bool> = client.script_exists(hashes).await?;
        if present.iter().all(|loaded| *loaded) {
            return Ok(());
        }
        self.load_all(client).await
    }
}

/// A script's array reply, read item by item; a missing or mistyped item is
/// [`StoreError::Unexpected`] naming the script.
pub(super) struct Reply {
    script: &'static str,
    items: std::vec::IntoIter<Value>,
}

impl Reply {
    pub(super) fn new(script: &'static str, reply: Value) -> Self {
        Self {
            script,
            items: reply.into_array().into_iter(),
        }
    }

    pub(super) fn unexpected(script: &'static str, reply: impl std::fmt::Debug) -> StoreError {
        StoreError::Unexpected(format!("{script}.lua answered {reply:?}"))
    }

    fn next(&mut self, kind: &str) -> Result<Value, StoreError> {
        self.items.next().ok_or_else(|| {
            StoreError::Unexpected(format!("{}.lua answered no {kind}", self.script))
        })
    }

    pub(super) fn int(&mut self) -> Result<i64, StoreError> {
        let value = self.next("number")?;
        value
            .as_i64()
            .ok_or_else(|| Self::unexpected(self.script, value))
    }

    pub(super) fn text(&mut self) -> Result<Str, StoreError> {
        match self.next("text")? {
            Value::String(text) => Ok(text),
            Value::Bytes(bytes) => {
                Str::from_inner(bytes).map_err(|err| Self::unexpected(self.script, err))
            }
            other => Err(Self::unexpected(self.script, other)),
        }
    }

    /// The next item if there is one: a checkout sale's purchase answer is longer than a
    /// plain sale's.
    pub(super) fn has_more(&self) -> bool {
        self.items.len() > 0
    }

    /// The waiting room's fields that end a reply (`lua/prelude.lua`, room_reply): rate,
    /// admitMs, opensMs, commitment, seed ('' before the start), pre, seq, used; `None` when
    /// the reply ends before them (the room is off).
    pub(super) fn room(&mut self) -> Result<Option<RoomSnapshot>, StoreError> {
        if !self.has_more() {
            return Ok(None);
        }
        Ok(Some(RoomSnapshot {
            admit_per_second: self.int()?,
            admission_ms: self.int()?,
            opens_ms: self.int()?,
            draw_commitment: self.text()?.to_string(),
            draw_seed: Some(self.text()?.to_string()).filter(|seed| !seed.is_empty()),
            pre_queued: self.int()?,
            joined_after: self.int()?,
            admissions_used: self.int()?,
        }))
    }

    /// Whether the next item is this text (an answer that stands for no outcome).
    pub(super) fn starts_with(&self, text: &str) -> bool {
        self.items
            .as_slice()
            .first()
            .and_then(Value::as_str)
            .is_some_and(|first| first == text)
    }

    /// What is left of the reply.
    pub(super) fn rest(self) -> std::vec::IntoIter<Value> {
        self.items
    }
}

/// "1" or "0", as the scripts take a flag.
/// The KEYS and ARGV of a user's bucket in a call that takes one: the bucket and the
/// `buyerBuckets` it was computed for; without a user, bucket 0 (which the script does not
/// touch, since it needs a user's: it answers which).
fn user_bucket(keys: &SaleKeys, buckets: &Buckets) -> (fred::types::Key, Value) {
    let key = match &buckets.user {
        Some((_, key)) => key.clone(),
        None => keys.buyer_bucket(0),
    };
    (key, int(buckets.count))
}

/// The reply of a script given [`Buckets`]: `{'BUCKETS', buyerBuckets[, userId]}` when it
/// needs others (`lua/prelude.lua`, `needs_buckets`), else what `parse` reads.
fn bucketed<T>(
    script: &'static str,
    reply: Value,
    parse: impl FnOnce(Value) -> Result<T, StoreError>,
) -> Result<Bucketed<T>, StoreError> {
    let needs = matches!(&reply, Value::Array(items)
        if items.first().and_then(Value::as_str).as_deref() == Some("BUCKETS"));
    if !needs {
        return parse(reply).map(Bucketed::Done);
    }
    let mut reply = Reply::new(script, reply);
    reply.text()?;
    let buckets = reply.int()?;
    let buckets = u32::try_from(buckets).map_err(|_| Reply::unexpected(script, buckets))?;
    let user = reply.has_more().then(|| reply.text()).transpose()?;
    Ok(Bucketed::Needs {
        buckets,
        user: user.map(|user| user.to_string()),
    })
}

fn flag(on: bool) -> Value {
    Value::from(if on { "1" } else { "0" })
}

/// A number argument, as the decimal text Redis would read from `Value::Integer`.
///
/// Never sent as `Value::Integer`: redis-protocol 6 sizes an integer's text with `f64::log10`,
/// one digit too many for 999999999999999 and other numbers just under a large power of ten.
/// The extra byte goes out as a NUL, and Redis then waits for the end of a command that never
/// ends: the connection hangs until fred tears it down, failing every call queued on it (found
/// by schemathesis with an order number of fifteen nines).
fn int(value: impl TryInto<i64>) -> Value {
    let value: i64 = value.try_into().unwrap_or(i64::MAX);
    Value::String(Str::from(value.to_string()))
}
