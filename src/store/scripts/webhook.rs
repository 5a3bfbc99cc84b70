//! The delivery loop's scripts: take, done, failed, re-drive and backlog.

use super::{flag, int, LuaScript, Reply, ScriptCall, Scripts};
use crate::store::{
    error::StoreError,
    keys::SaleKeys,
    records::{OrderEntry, PendingOrder, Source},
};
use fred::{prelude::*, types::MultipleKeys};
use std::{collections::HashMap, time::Duration};

/// The consumer group every instance's delivery loop joins, on every sale's order streams.
pub const WEBHOOK_GROUP: &str = "flashsale-webhooks";

/// What recording a failed attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedAttempt {
    /// Counted; this many attempts have failed. Retry after a back-off.
    Counted(u32),
    /// That was the last attempt: the order is in the dead-letter stream now.
    Dead,
    /// This consumer no longer holds the entry (claimed by another instance, or acknowledged).
    Lost,
}

/// One batch taken by the delivery loop.
#[derive(Debug, Default)]
pub struct Taken {
    /// Where the next claim scan of the order stream starts.
    pub claim_cursor: String,
    pub orders: Vec<PendingOrder>,
}

/// How far one sale's delivery is behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Orders not yet delivered (pending or not read yet).
    pub undelivered: u64,
    /// The age of the oldest of them.
    pub oldest_age: Duration,
}

/// The stream key an order to deliver lives in.
fn stream_key(keys: &SaleKeys, order: &PendingOrder) -> fred::types::Key {
    match order.source {
        Source::Orders => keys.orders(),
        Source::Retry => keys.orders_retry(),
    }
}

/// `lua/webhook_take.lua`: up to `count` orders for `consumer`, claimed ones first.
pub struct WebhookTake<'a> {
    pub keys: SaleKeys,
    pub consumer: &'a str,
    pub count: usize,
    pub claim_idle_ms: u64,
    pub claim_cursor: &'a str,
}

impl ScriptCall for WebhookTake<'_> {
    type Output = Taken;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.webhook_take
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let keys = &self.keys;
        (
            vec![keys.orders(), keys.orders_retry(), keys.orders_attempts()].into(),
            vec![
                Value::from(WEBHOOK_GROUP),
                Value::from(self.consumer),
                int(self.count as u64),
                int(self.claim_idle_ms),
                Value::from(self.claim_cursor),
            ],
        )
    }

    /// `{next claim cursor, entry, ...}`, each entry `{stream, id, attempts, field, value, ...}`.
    /// An entry that does not parse is logged and counted ([`StoreError::bad_data`]) and left
    /// pending, so it is neither delivered as zeros nor lost.
    fn parse(reply: Value) -> Result<Taken, StoreError> {
        let mut reply = Reply::new("webhook_take", reply);
        let claim_cursor = reply.text()?.to_string();
        let orders = reply
            .rest()
            .filter_map(|entry| {
                pending_order(entry)
                    .map_err(|err| {
                        if !matches!(err, StoreError::BadData { .. }) {
                            tracing::error!(error = %err, "an order to deliver could not be read");
                        }
                    })
                    .ok()
            })
            .collect();
        Ok(Taken {
            claim_cursor,
            orders,
        })
    }
}

fn pending_order(entry: Value) -> Result<PendingOrder, StoreError> {
    let mut reply = Reply::new("webhook_take", entry);
    let stream = reply.int()?;
    let source = Source::from_number(stream)
        .ok_or_else(|| Reply::unexpected("webhook_take", format!("stream {stream}")))?;
    let id = reply.text()?.to_string();
    let attempts = reply.int()?;
    let attempts = u32::try_from(attempts)
        .map_err(|_| StoreError::bad_data("order attempts", format!("entry {id}: {attempts}")))?;
    let parts: Vec<Option<String>> = reply.rest().map(|value| value.as_string()).collect();
    let fields: HashMap<String, String> = parts
        .chunks_exact(2)
        .filter_map(|pair| Some((pair[0].clone()?, pair[1].clone()?)))
        .collect();
    Ok(PendingOrder {
        source,
        attempts,
        order: OrderEntry::parse(id, fields)?,
    })
}

/// `lua/webhook_done.lua`: the receiver took the order; acknowledge it.
pub struct WebhookDone<'a> {
    pub keys: SaleKeys,
    pub order: &'a PendingOrder,
}

impl ScriptCall for WebhookDone<'_> {
    type Output = ();

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.webhook_done
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let order = self.order;
        (
            vec![stream_key(&self.keys, order), self.keys.orders_attempts()].into(),
            vec![
                Value::from(WEBHOOK_GROUP),
                Value::from(order.order.id.as_str()),
                Value::from(order.attempts_field()),
                flag(order.is_retry()),
            ],
        )
    }

    fn parse(_: Value) -> Result<(), StoreError> {
        Ok(())
    }
}

/// `lua/webhook_failed.lua`: count a failed attempt; after the last, dead-letter the order.
pub struct WebhookFailed<'a> {
    pub keys: SaleKeys,
    pub consumer: &'a str,
    pub order: &'a PendingOrder,
    pub max_attempts: u32,
    pub error: &'a str,
}

impl ScriptCall for WebhookFailed<'_> {
    type Output = FailedAttempt;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.webhook_failed
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        let (keys, order) = (&self.keys, self.order);
        (
            vec![
                stream_key(keys, order),
                keys.orders_attempts(),
                keys.orders_dead(),
            ]
            .into(),
            vec![
                Value::from(WEBHOOK_GROUP),
                Value::from(self.consumer),
                Value::from(order.order.id.as_str()),
                Value::from(order.attempts_field()),
                int(self.max_attempts),
                Value::from(self.error),
                flag(order.is_retry()),
            ],
        )
    }

    /// The failed attempts so far, `'DEAD'` or `'LOST'`.
    fn parse(reply: Value) -> Result<FailedAttempt, StoreError> {
        match (reply.as_str().as_deref(), reply.as_i64()) {
            (Some("DEAD"), _) => Ok(FailedAttempt::Dead),
            (Some("LOST"), _) => Ok(FailedAttempt::Lost),
            (_, Some(attempts)) => Ok(FailedAttempt::Counted(
                u32::try_from(attempts).unwrap_or(u32::MAX),
            )),
            _ => Err(Reply::unexpected("webhook_failed", reply)),
        }
    }
}

/// `lua/webhook_redrive.lua`: sends up to `count` dead orders back; (re-driven, still dead).
pub struct WebhookRedrive {
    pub keys: SaleKeys,
    pub count: u64,
}

impl ScriptCall for WebhookRedrive {
    type Output = (u64, u64);

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.webhook_redrive
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        (
            vec![self.keys.orders_dead(), self.keys.orders_retry()].into(),
            vec![Value::from(WEBHOOK_GROUP), int(self.count)],
        )
    }

    fn parse(reply: Value) -> Result<(u64, u64), StoreError> {
        let mut reply = Reply::new("webhook_redrive", reply);
        let (redriven, remaining) = (reply.int()?, reply.int()?);
        Ok((redriven.max(0) as u64, remaining.max(0) as u64))
    }
}

/// `lua/webhook_backlog.lua`: how far one sale's delivery is behind.
pub struct WebhookBacklog {
    pub keys: SaleKeys,
}

impl ScriptCall for WebhookBacklog {
    type Output = Backlog;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.webhook_backlog
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        (
            vec![self.keys.orders(), self.keys.orders_retry()].into(),
            vec![Value::from(WEBHOOK_GROUP)],
        )
    }

    /// `{undelivered, age in ms of the oldest}`.
    fn parse(reply: Value) -> Result<Backlog, StoreError> {
        let mut reply = Reply::new("webhook_backlog", reply);
        let (undelivered, oldest_ms) = (reply.int()?, reply.int()?);
        Ok(Backlog {
            undelivered: undelivered.max(0) as u64,
            oldest_age: Duration::from_millis(oldest_ms.max(0) as u64),
        })
    }
}
