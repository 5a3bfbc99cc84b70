//! The operator's scripts: create, put, patch, restock, read, delete and upgrade a sale.

use super::{bucketed, flag, int, LuaScript, Reply, ScriptCall, Scripts};
use crate::{
    domain::{Draw, RoomSnapshot, SaleSeed, WaitingRoom},
    store::{error::StoreError, keys::SaleKeys, Bucketed, Buckets},
};
use fred::{prelude::*, types::MultipleKeys};

/// What `PUT` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// The sale exists with exactly these values: nothing changed.
    Same,
    /// The sale has buyers and `force` was not given: nothing changed.
    HasBuyers,
    /// Replaced: stock, buyers, orders and attempt counters reset.
    Replaced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOutcome {
    NotFound,
    /// The end would not follow the start: nothing changed.
    BadWindow,
    /// The waiting room would open at or after the sale's end: nothing changed.
    RoomAfterEnd,
    Done,
}

/// The totals after a restock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restocked {
    pub total_stock: i64,
    pub remaining_stock: i64,
}

/// A sale's config and counters, read at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleStats {
    pub product_name: String,
    pub total_stock: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub created_ms: i64,
    pub remaining: i64,
    pub buyers: i64,
    pub orders: i64,
    pub refused: i64,
    pub redis_now_ms: i64,
    /// The checkout rules (README, Checkout).
    pub hold_seconds: i64,
    pub max_per_buyer: i64,
    /// A checkout sale: its orders are records with states.
    pub checkout: bool,
    /// Units in unpaid holds, units confirmed, and units released so far (expired or cancelled).
    pub held: i64,
    pub confirmed: i64,
    pub released: i64,
    /// Orders placed (a plain sale: its units sold).
    pub order_count: i64,
    /// The waiting room; `None` when off.
    pub room: Option<RoomSnapshot>,
}

/// The arguments a sale's seed gives a script: productName, totalStock, startMs, endMs, holdMs,
/// maxPerBuyer.
fn seed_args(seed: &SaleSeed) -> Vec<Value> {
    vec![
        Value::from(seed.product_name.as_str()),
        int(seed.total_stock),
        int(seed.window.start().timestamp_millis()),
        int(seed.window.end().timestamp_millis()),
        int(seed.checkout.hold_ms()),
        int(seed.checkout.units_per_buyer()),
    ]
}

/// The arguments a waiting room gives a script: admitPerSecond (0 = off), admitMs, opensMs, and
/// a fresh draw (seed, commitment), which the script keeps only if the sale has no draw yet.
fn room_args(room: Option<&WaitingRoom>) -> Vec<Value> {
    match room {
        None => vec![int(0), int(0), int(0), Value::from(""), Value::from("")],
        Some(room) => {
            let draw = Draw::fresh();
            vec![
                int(room.admit_per_second()),
                int(room.admission_ms()),
                int(room.opens_ms()),
                Value::from(draw.seed),
                Value::from(draw.commitment),
            ]
        }
    }
}

/// A script's one-word answer.
fn word(script: &'static str, reply: Value) -> Result<String, StoreError> {
    reply
        .as_string()
        .ok_or_else(|| Reply::unexpected(script, reply))
}

/// A sale's fixed keys and then every one of its buyer buckets (`lua/put_sale.lua`,
/// `lua/delete_sale.lua`).
fn with_buckets(keys: &SaleKeys, buckets: &Buckets) -> MultipleKeys {
    let mut all = keys.all_fixed().inner();
    all.extend(keys.all_buckets(buckets.count));
    all.into()
}

fn number(script: &'static str, reply: Value) -> Result<i64, StoreError> {
    reply
        .as_i64()
        .ok_or_else(|| Reply::unexpected(script, reply))
}

/// `lua/create_sale.lua`: creates the sale only if it is missing; whether it did.
pub struct CreateSale<'a> {
    pub keys: SaleKeys,
    pub seed: &'a SaleSeed,
}

impl ScriptCall for CreateSale<'_> {
    type Output = bool;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.create_sale
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let mut args = seed_args(self.seed);
        args.extend(room_args(self.seed.waiting_room.as_ref()));
        (vec![self.keys.config(), self.keys.room()].into(), args)
    }

    fn parse(reply: Value) -> Result<bool, StoreError> {
        Ok(number("create_sale", reply)? == 1)
    }
}

/// `lua/put_sale.lua`: creates or replaces a sale (`force` replaces one that has buyers).
pub struct PutSale<'a> {
    pub keys: SaleKeys,
    pub seed: &'a SaleSeed,
    pub force: bool,
    /// The buckets of the sale to replace ([`Store::eval_with_buckets`](crate::store::Store)).
    pub buckets: Buckets,
}

impl ScriptCall for PutSale<'_> {
    type Output = Bucketed<PutOutcome>;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.put_sale
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let mut args = seed_args(self.seed);
        args.push(flag(self.force));
        args.push(int(self.buckets.count));
        args.extend(room_args(self.seed.waiting_room.as_ref()));
        (with_buckets(&self.keys, &self.buckets), args)
    }

    fn parse(reply: Value) -> Result<Bucketed<PutOutcome>, StoreError> {
        bucketed("put_sale", reply, |reply| {
            match word("put_sale", reply)?.as_str() {
                "CREATED" => Ok(PutOutcome::Created),
                "SAME" => Ok(PutOutcome::Same),
                "HAS_BUYERS" => Ok(PutOutcome::HasBuyers),
                "REPLACED" => Ok(PutOutcome::Replaced),
                other => Err(Reply::unexpected("put_sale", other)),
            }
        })
    }
}

/// `lua/patch_sale.lua`: a new name or window; `close_now` ends the sale at Redis's clock.
pub struct PatchSale<'a> {
    pub keys: SaleKeys,
    pub product_name: Option<&'a str>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub close_now: bool,
    pub hold_ms: Option<i64>,
    pub max_per_buyer: Option<i64>,
    /// `Some(None)` turns the waiting room off; `None` leaves it as it is.
    pub room: Option<Option<WaitingRoom>>,
}

impl ScriptCall for PatchSale<'_> {
    type Output = PatchOutcome;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.patch_sale
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let millis = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
        let mut args = vec![
            Value::from(self.product_name.unwrap_or_default()),
            Value::from(millis(self.start_ms)),
            Value::from(millis(self.end_ms)),
            flag(self.close_now),
            Value::from(millis(self.hold_ms)),
            Value::from(millis(self.max_per_buyer)),
        ];
        match &self.room {
            None => args.push(Value::from("")),
            Some(room) => args.extend(room_args(room.as_ref())),
        }
        (vec![self.keys.config(), self.keys.room()].into(), args)
    }

    fn parse(reply: Value) -> Result<PatchOutcome, StoreError> {
        match word("patch_sale", reply)?.as_str() {
            "NOT_FOUND" => Ok(PatchOutcome::NotFound),
            "BAD_WINDOW" => Ok(PatchOutcome::BadWindow),
            "ROOM_AFTER_END" => Ok(PatchOutcome::RoomAfterEnd),
            "OK" => Ok(PatchOutcome::Done),
            other => Err(Reply::unexpected("patch_sale", other)),
        }
    }
}

/// `lua/restock.lua`: adds units once per request token; `None` when the sale does not exist.
pub struct Restock<'a> {
    pub keys: SaleKeys,
    pub units: u64,
    pub token: &'a str,
}

impl ScriptCall for Restock<'_> {
    type Output = Option<Restocked>;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.restock
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        (
            vec![self.keys.config(), self.keys.restocks()].into(),
            vec![int(self.units), Value::from(self.token)],
        )
    }

    /// `{'NOT_FOUND'}` or `{'OK', totalStock, remainingStock}`.
    fn parse(reply: Value) -> Result<Option<Restocked>, StoreError> {
        let mut reply = Reply::new("restock", reply);
        match &*reply.text()? {
            "NOT_FOUND" => Ok(None),
            "OK" => Ok(Some(Restocked {
                total_stock: reply.int()?,
                remaining_stock: reply.int()?,
            })),
            other => Err(Reply::unexpected("restock", other)),
        }
    }
}

/// `lua/sale_stats.lua`: config and counters in one read; `None` when the sale does not exist.
pub struct SaleStatsRead {
    pub keys: SaleKeys,
    /// Every bucket of the sale ([`Store::eval_with_buckets`](crate::store::Store)).
    pub buckets: Buckets,
}

impl ScriptCall for SaleStatsRead {
    type Output = Bucketed<Option<SaleStats>>;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.sale_stats
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let keys = &self.keys;
        let mut all = vec![keys.config(), keys.orders(), keys.refused(), keys.room()];
        all.extend(keys.all_buckets(self.buckets.count));
        (all.into(), vec![int(self.buckets.count)])
    }

    /// nil, or `{productName, totalStock, startMs, endMs, createdMs, remaining, buyers, orders,
    /// refused, redisNowMs, holdMs, maxPerBuyer, checkout, held, confirmed, released,
    /// orderSeq}`, then the room's fields when it has one (`Reply::room`).
    fn parse(reply: Value) -> Result<Bucketed<Option<SaleStats>>, StoreError> {
        bucketed("sale_stats", reply, Self::stats)
    }
}

impl SaleStatsRead {
    fn stats(reply: Value) -> Result<Option<SaleStats>, StoreError> {
        if reply.is_null() {
            return Ok(None);
        }
        let mut reply = Reply::new("sale_stats", reply);
        Ok(Some(SaleStats {
            product_name: reply.text()?.to_string(),
            total_stock: reply.int()?,
            start_ms: reply.int()?,
            end_ms: reply.int()?,
            created_ms: reply.int()?,
            remaining: reply.int()?,
            buyers: reply.int()?,
            orders: reply.int()?,
            refused: reply.int()?,
            redis_now_ms: reply.int()?,
            hold_seconds: reply.int()? / 1000,
            max_per_buyer: reply.int()?,
            checkout: reply.int()? == 1,
            held: reply.int()?,
            confirmed: reply.int()?,
            released: reply.int()?,
            order_count: reply.int()?,
            room: reply.room()?,
        }))
    }
}

/// `lua/delete_sale.lua`: removes every key of the sale but its attempt counters; whether it
/// existed.
pub struct DeleteSale {
    pub keys: SaleKeys,
    /// Every bucket of the sale ([`Store::eval_with_buckets`](crate::store::Store)).
    pub buckets: Buckets,
}

impl ScriptCall for DeleteSale {
    type Output = Bucketed<bool>;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.delete_sale
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        (
            with_buckets(&self.keys, &self.buckets),
            vec![int(self.buckets.count)],
        )
    }

    fn parse(reply: Value) -> Result<Bucketed<bool>, StoreError> {
        bucketed("delete_sale", reply, |reply| {
            Ok(number("delete_sale", reply)? == 1)
        })
    }
}

/// `lua/upgrade_sale.lua`: moves a sale of the earlier layout; whether it moved it.
pub struct UpgradeSale {
    pub keys: SaleKeys,
}

impl ScriptCall for UpgradeSale {
    type Output = bool;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.upgrade_sale
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let keys = &self.keys;
        (
            vec![
                keys.config(),
                keys.buyers(),
                keys.legacy_stock(),
                keys.buyer_bucket(0),
            ]
            .into(),
            Vec::new(),
        )
    }

    fn parse(reply: Value) -> Result<bool, StoreError> {
        Ok(number("upgrade_sale", reply)? == 1)
    }
}
