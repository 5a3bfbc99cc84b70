//! The store's calls for order webhooks: take orders to deliver (new ones, and those a dead
//! instance left pending), acknowledge a delivery, count a failed attempt (and dead-letter after
//! the last), re-drive dead orders, page the dead-letter stream, and measure the backlog.
//! Each is one script over the sale's streams, so each step is atomic.

use super::{keys::SaleKeys, Store, StoreError};
use crate::domain::SaleId;
use fred::prelude::*;
use std::collections::HashMap;

/// The consumer group every instance's delivery loop joins, on every sale's order streams.
pub const WEBHOOK_GROUP: &str = "flashsale-webhooks";

/// Which stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `sale:{ID}:orders`: the order as the purchase script recorded it.
    Orders,
    /// `sale:{ID}:orders:retry`: a dead order sent back by the admin re-drive.
    Retry,
}

impl Source {
    fn number(self) -> i64 {
        match self {
            Source::Orders => 1,
            Source::Retry => 2,
        }
    }
}

/// One order to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOrder {
    pub source: Source,
    /// The entry id in its stream.
    pub id: String,
    /// Failed attempts recorded so far (by this or an earlier consumer).
    pub attempts: u32,
    pub fields: HashMap<String, String>,
}

impl PendingOrder {
    /// The id receivers dedupe on: the order's id in `sale:{ID}:orders`, kept through re-drives.
    pub fn event_id(&self) -> &str {
        self.fields
            .get("eventId")
            .map_or(self.id.as_str(), String::as_str)
    }

    /// The entry's field in `sale:{ID}:orders:attempts` (ids of the two streams may coincide).
    fn attempts_field(&self) -> String {
        format!("{}:{}", self.source.number(), self.id)
    }

    fn stream_key(&self, keys: &SaleKeys) -> fred::types::Key {
        match self.source {
            Source::Orders => keys.orders(),
            Source::Retry => keys.orders_retry(),
        }
    }

    fn is_retry(&self) -> &'static str {
        if self.source == Source::Retry {
            "1"
        } else {
            "0"
        }
    }
}

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

/// A dead order, as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadOrder {
    /// The entry id in the dead-letter stream: the cursor of the next page.
    pub id: String,
    pub fields: HashMap<String, String>,
}

/// One batch taken by the delivery loop.
#[derive(Debug, Default)]
pub struct Taken {
    /// Where the next claim scan of the order stream starts.
    pub claim_cursor: String,
    pub orders: Vec<PendingOrder>,
}

impl Store {
    /// Up to `count` orders of `sale` for `consumer` to deliver: first those pending longer than
    /// `claim_idle_ms` (when not 0) with another consumer, then new ones.
    pub async fn webhook_take(
        &self,
        sale: &SaleId,
        consumer: &str,
        count: usize,
        claim_idle_ms: u64,
        claim_cursor: &str,
    ) -> Result<Taken, StoreError> {
        let keys = SaleKeys::new(sale);
        let reply: Vec<Value> = self
            .bounded(async {
                self.scripts
                    .webhook_take
                    .call(self.client().await, || {
                        (
                            vec![keys.orders(), keys.orders_retry(), keys.orders_attempts()].into(),
                            vec![
                                Value::from(WEBHOOK_GROUP),
                                Value::from(consumer),
                                Value::from(count as i64),
                                Value::from(claim_idle_ms as i64),
                                Value::from(claim_cursor),
                            ],
                        )
                    })
                    .await
            })
            .await?;
        let mut reply = reply.into_iter();
        let claim_cursor = reply
            .next()
            .and_then(|cursor| cursor.as_string())
            .unwrap_or_else(|| "0-0".to_owned());
        let orders = reply
            .map(parse_taken)
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::Unexpected)?;
        Ok(Taken {
            claim_cursor,
            orders,
        })
    }

    /// The receiver took the order: acknowledge it.
    pub async fn webhook_done(
        &self,
        sale: &SaleId,
        order: &PendingOrder,
    ) -> Result<(), StoreError> {
        let keys = SaleKeys::new(sale);
        let _: i64 = self
            .bounded(async {
                self.scripts
                    .webhook_done
                    .call(self.client().await, || {
                        (
                            vec![order.stream_key(&keys), keys.orders_attempts()].into(),
                            vec![
                                Value::from(WEBHOOK_GROUP),
                                Value::from(order.id.as_str()),
                                Value::from(order.attempts_field()),
                                Value::from(order.is_retry()),
                            ],
                        )
                    })
                    .await
            })
            .await?;
        Ok(())
    }

    /// An attempt failed with `error`: count it; after `max_attempts` dead-letter the order.
    pub async fn webhook_failed(
        &self,
        sale: &SaleId,
        consumer: &str,
        order: &PendingOrder,
        max_attempts: u32,
        error: &str,
    ) -> Result<FailedAttempt, StoreError> {
        let keys = SaleKeys::new(sale);
        let reply: Value = self
            .bounded(async {
                self.scripts
                    .webhook_failed
                    .call(self.client().await, || {
                        (
                            vec![
                                order.stream_key(&keys),
                                keys.orders_attempts(),
                                keys.orders_dead(),
                            ]
                            .into(),
                            vec![
                                Value::from(WEBHOOK_GROUP),
                                Value::from(consumer),
                                Value::from(order.id.as_str()),
                                Value::from(order.attempts_field()),
                                Value::from(i64::from(max_attempts)),
                                Value::from(error),
                                Value::from(order.is_retry()),
                            ],
                        )
                    })
                    .await
            })
            .await?;
        match (reply.as_str().as_deref(), reply.as_i64()) {
            (Some("DEAD"), _) => Ok(FailedAttempt::Dead),
            (Some("LOST"), _) => Ok(FailedAttempt::Lost),
            (_, Some(attempts)) => Ok(FailedAttempt::Counted(
                u32::try_from(attempts).unwrap_or(u32::MAX),
            )),
            _ => Err(StoreError::Unexpected(format!(
                "webhook_failed.lua answered {reply:?}"
            ))),
        }
    }

    /// Sends up to `count` dead orders back for delivery. Returns (re-driven, still dead).
    pub async fn redrive_dead(&self, sale: &SaleId, count: u64) -> Result<(u64, u64), StoreError> {
        let keys = SaleKeys::new(sale);
        self.bounded(async {
            self.scripts
                .webhook_redrive
                .call(self.client().await, || {
                    (
                        vec![keys.orders_dead(), keys.orders_retry()].into(),
                        vec![Value::from(WEBHOOK_GROUP), Value::from(count as i64)],
                    )
                })
                .await
        })
        .await
    }

    /// Up to `limit` dead orders after the entry id `after` (from the oldest when `None`).
    pub async fn dead_page(
        &self,
        sale: &SaleId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<DeadOrder>, StoreError> {
        let entries = self
            .stream_page(SaleKeys::new(sale).orders_dead(), after, limit)
            .await?;
        Ok(entries
            .into_iter()
            .map(|(id, fields)| DeadOrder { id, fields })
            .collect())
    }

    /// (undelivered orders, age in ms of the oldest one) of `sale`.
    pub async fn webhook_backlog(&self, sale: &SaleId) -> Result<(u64, u64), StoreError> {
        let keys = SaleKeys::new(sale);
        self.bounded(async {
            self.scripts
                .webhook_backlog
                .call(self.client().await, || {
                    (
                        vec![keys.orders(), keys.orders_retry()].into(),
                        vec![Value::from(WEBHOOK_GROUP)],
                    )
                })
                .await
        })
        .await
    }
}

/// `{stream, id, attempts, field, value, ...}` from `webhook_take.lua`.
fn parse_taken(entry: Value) -> Result<PendingOrder, String> {
    let parts = entry.into_array();
    let [stream, id, attempts, fields @ ..] = parts.as_slice() else {
        return Err(format!("webhook_take.lua answered an entry {parts:?}"));
    };
    let source = match stream.as_i64() {
        Some(1) => Source::Orders,
        Some(2) => Source::Retry,
        other => return Err(format!("webhook_take.lua answered stream {other:?}")),
    };
    let id = id
        .as_string()
        .ok_or_else(|| format!("webhook_take.lua answered id {id:?}"))?;
    let attempts = attempts
        .as_i64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_default();
    let fields = fields
        .chunks_exact(2)
        .filter_map(|pair| Some((pair[0].as_string()?, pair[1].as_string()?)))
        .collect();
    Ok(PendingOrder {
        source,
        id,
        attempts,
        fields,
    })
}
