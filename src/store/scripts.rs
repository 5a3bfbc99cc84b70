//! The Lua scripts, embedded in the binary, loaded at start-up and called by SHA.
//!
//! Each script is `lua/prelude.lua` (the helpers every script shares) followed by its own file,
//! joined at build time. `NOSCRIPT` (Redis restarted, failed over, or `SCRIPT FLUSH`) is handled
//! by loading the script again and retrying once.

use super::StoreError;
use fred::{
    prelude::*,
    types::{scripts::Script, MultipleKeys},
};

/// The source of one script as Redis runs it: the prelude, then the script's own file.
macro_rules! script_source {
    ($file:literal) => {
        concat!(
            include_str!("../../lua/prelude.lua"),
            "\n",
            include_str!(concat!("../../lua/", $file))
        )
    };
}

/// The purchase script as Redis runs it (tests call it directly to replay a re-sent call).
pub const PURCHASE_SOURCE: &str = script_source!("purchase.lua");

/// One embedded script.
#[derive(Clone)]
pub struct LuaScript {
    name: &'static str,
    script: Script,
}

impl LuaScript {
    fn new(name: &'static str, source: &'static str) -> Self {
        Self {
            name,
            script: Script::from_lua(source),
        }
    }

    pub fn sha1(&self) -> &str {
        self.script.sha1()
    }

    /// `SCRIPT LOAD` (on every primary in cluster mode).
    pub async fn load(&self, client: &Client) -> Result<(), StoreError> {
        self.script.load(client).await?;
        Ok(())
    }

    /// `EVALSHA`, reloading and retrying once on `NOSCRIPT`. The arguments come from a closure so
    /// the hot path builds them once and only the rare retry builds them again.
    ///
    /// fred's command futures are large (about 7 KB each): held inline, they made a purchase's
    /// future 16 KB, copied whole each time actix or tokio moved it (memmove was 7 % of the
    /// service's CPU in a profile). Boxed, each costs one allocation and the callers stay small.
    pub async fn call<R, F>(&self, client: &Client, args: F) -> Result<R, StoreError>
    where
        R: FromValue,
        F: Fn() -> (MultipleKeys, Vec<Value>),
    {
        let (keys, values) = args();
        let first: Result<R, _> =
            Box::pin(client.evalsha(self.script.sha1().clone(), keys, values)).await;
        match first {
            Err(err) if err.details().starts_with("NOSCRIPT") => {
                Box::pin(self.reload_and_call(client, args)).await
            }
            result => Ok(result?),
        }
    }

    /// The rare path of [`Self::call`]: Redis lost its scripts (restart, failover, flush).
    async fn reload_and_call<R, F>(&self, client: &Client, args: F) -> Result<R, StoreError>
    where
        R: FromValue,
        F: Fn() -> (MultipleKeys, Vec<Value>),
    {
        tracing::warn!(
            script = self.name,
            "script missing from the Redis cache (restart or flush); reloading"
        );
        crate::metrics::script_reload(self.name);
        self.script.load(client).await?;
        let (keys, values) = args();
        Ok(client
            .evalsha(self.script.sha1().clone(), keys, values)
            .await?)
    }
}

/// Every script of the service.
#[derive(Clone)]
pub struct Scripts {
    pub purchase: LuaScript,
    pub status: LuaScript,
    pub user: LuaScript,
    pub create_sale: LuaScript,
    pub put_sale: LuaScript,
    pub patch_sale: LuaScript,
    pub restock: LuaScript,
    pub sale_stats: LuaScript,
    pub delete_sale: LuaScript,
    pub upgrade_sale: LuaScript,
    pub webhook_take: LuaScript,
    pub webhook_done: LuaScript,
    pub webhook_failed: LuaScript,
    pub webhook_redrive: LuaScript,
    pub webhook_backlog: LuaScript,
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            purchase: LuaScript::new("purchase", PURCHASE_SOURCE),
            status: LuaScript::new("status", script_source!("status.lua")),
            user: LuaScript::new("user", script_source!("user.lua")),
            create_sale: LuaScript::new("create_sale", script_source!("create_sale.lua")),
            put_sale: LuaScript::new("put_sale", script_source!("put_sale.lua")),
            patch_sale: LuaScript::new("patch_sale", script_source!("patch_sale.lua")),
            restock: LuaScript::new("restock", script_source!("restock.lua")),
            sale_stats: LuaScript::new("sale_stats", script_source!("sale_stats.lua")),
            delete_sale: LuaScript::new("delete_sale", script_source!("delete_sale.lua")),
            upgrade_sale: LuaScript::new("upgrade_sale", script_source!("upgrade_sale.lua")),
            webhook_take: LuaScript::new("webhook_take", script_source!("webhook_take.lua")),
            webhook_done: LuaScript::new("webhook_done", script_source!("webhook_done.lua")),
            webhook_failed: LuaScript::new("webhook_failed", script_source!("webhook_failed.lua")),
            webhook_redrive: LuaScript::new(
                "webhook_redrive",
                script_source!("webhook_redrive.lua"),
            ),
            webhook_backlog: LuaScript::new(
                "webhook_backlog",
                script_source!("webhook_backlog.lua"),
            ),
        }
    }

    fn all(&self) -> [&LuaScript; 15] {
        [
            &self.purchase,
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
        ]
    }

    /// `SCRIPT LOAD` of every script; in cluster mode fred sends it to every primary.
    pub async fn load_all(&self, client: &Client) -> Result<(), StoreError> {
        for script in self.all() {
            script.script.load(client).await?;
        }
        Ok(())
    }

    /// Loads the scripts again if Redis has lost any of them.
    pub async fn ensure_loaded(&self, client: &Client) -> Result<(), StoreError> {
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
