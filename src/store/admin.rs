//! The store's operator calls: create, change, restock, read, page and delete sales, and the
//! index of sales. Each change is one script; the index (`flashsale:sales`, a sorted set by
//! creation time) lives in its own slot, so it is kept beside the scripts, not inside them.

use super::{keys::SaleKeys, SaleSeed, Store, StoreError};
use crate::domain::SaleId;
use fred::{prelude::*, types::MultipleKeys};
use std::collections::HashMap;

/// The sorted set of every sale id, scored by creation time (Unix ms).
pub const SALES_INDEX: &str = "flashsale:sales";

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
    Done,
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
}

/// One unit sold, from the order stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The stream entry id: the cursor of the next page.
    pub id: String,
    pub user_id: String,
    pub order_number: i64,
    pub purchase_ms: i64,
    pub request_id: String,
}

type StatsReply = Option<(String, i64, i64, i64, i64, i64, i64, i64, i64, i64)>;

impl Store {
    /// Creates or replaces a sale (`force` replaces one that has buyers).
    pub async fn put_sale(
        &self,
        sale: &SaleId,
        seed: &SaleSeed,
        force: bool,
    ) -> Result<PutOutcome, StoreError> {
        let keys = SaleKeys::new(sale);
        let outcome: String = self
            .bounded(async {
                let client = self.client().await;
                self.scripts
                    .put_sale
                    .call(client, || {
                        (
                            keys.all_fixed(),
                            vec![
                                Value::from(seed.product_name.as_str()),
                                Value::from(seed.total_stock as i64),
                                Value::from(seed.start.timestamp_millis()),
                                Value::from(seed.end.timestamp_millis()),
                                Value::from(if force { "1" } else { "0" }),
                                Value::from(keys.attempts_pattern()),
                            ],
                        )
                    })
                    .await
            })
            .await?;
        let outcome = match outcome.as_str() {
            "CREATED" => PutOutcome::Created,
            "SAME" => PutOutcome::Same,
            "HAS_BUYERS" => PutOutcome::HasBuyers,
            "REPLACED" => PutOutcome::Replaced,
            other => {
                return Err(StoreError::Unexpected(format!(
                    "put_sale.lua answered {other:?}"
                )))
            }
        };
        if matches!(outcome, PutOutcome::Created | PutOutcome::Replaced) {
            self.index_sale(sale).await?;
        }
        Ok(outcome)
    }

    /// Changes name or window; `close_now` ends the sale at Redis's clock.
    pub async fn patch_sale(
        &self,
        sale: &SaleId,
        product_name: Option<&str>,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        close_now: bool,
    ) -> Result<PatchOutcome, StoreError> {
        let keys = SaleKeys::new(sale);
        let text = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
        let outcome: String = self
            .bounded(async {
                let client = self.client().await;
                self.scripts
                    .patch_sale
                    .call(client, || {
                        (
                            MultipleKeys::from(keys.config()),
                            vec![
                                Value::from(product_name.unwrap_or_default()),
                                Value::from(text(start_ms)),
                                Value::from(text(end_ms)),
                                Value::from(if close_now { "1" } else { "0" }),
                            ],
                        )
                    })
                    .await
            })
            .await?;
        match outcome.as_str() {
            "NOT_FOUND" => Ok(PatchOutcome::NotFound),
            "BAD_WINDOW" => Ok(PatchOutcome::BadWindow),
            "OK" => Ok(PatchOutcome::Done),
            other => Err(StoreError::Unexpected(format!(
                "patch_sale.lua answered {other:?}"
            ))),
        }
    }

    /// Adds `units`; `None` when the sale does not exist. Returns (total, remaining).
    pub async fn restock(
        &self,
        sale: &SaleId,
        units: u64,
        token: &str,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let keys = SaleKeys::new(sale);
        let reply: Vec<Value> = self
            .bounded(async {
                let client = self.client().await;
                self.scripts
                    .restock
                    .call(client, || {
                        (
                            MultipleKeys::from(vec![keys.config(), keys.restocks()]),
                            vec![Value::from(units as i64), Value::from(token)],
                        )
                    })
                    .await
            })
            .await?;
        match reply.as_slice() {
            [code] if code.as_str().as_deref() == Some("NOT_FOUND") => Ok(None),
            [_, total, remaining] => Ok(Some((
                total.as_i64().unwrap_or_default(),
                remaining.as_i64().unwrap_or_default(),
            ))),
            other => Err(StoreError::Unexpected(format!(
                "restock.lua answered {other:?}"
            ))),
        }
    }

    /// The sale's config and counters; `None` when it does not exist.
    pub async fn sale_stats(&self, sale: &SaleId) -> Result<Option<SaleStats>, StoreError> {
        let keys = SaleKeys::new(sale);
        let reply: StatsReply = self
            .bounded(async {
                let client = self.client().await;
                self.scripts
                    .sale_stats
                    .call(client, || {
                        (
                            MultipleKeys::from(vec![
                                keys.config(),
                                keys.buyers(),
                                keys.orders(),
                                keys.refused(),
                            ]),
                            Vec::new(),
                        )
                    })
                    .await
            })
            .await?;
        Ok(reply.map(
            |(
                product_name,
                total_stock,
                start_ms,
                end_ms,
                created_ms,
                remaining,
                buyers,
                orders,
                refused,
                redis_now_ms,
            )| {
                SaleStats {
                    product_name,
                    total_stock,
                    start_ms,
                    end_ms,
                    created_ms,
                    remaining,
                    buyers,
                    orders,
                    refused,
                    redis_now_ms,
                }
            },
        ))
    }

    /// Removes every key of the sale; whether it existed.
    pub async fn delete_sale(&self, sale: &SaleId) -> Result<bool, StoreError> {
        let keys = SaleKeys::new(sale);
        let deleted: i64 = self
            .bounded(async {
                let client = self.client().await;
                self.scripts
                    .delete_sale
                    .call(client, || {
                        (keys.all_fixed(), vec![Value::from(keys.attempts_pattern())])
                    })
                    .await
            })
            .await?;
        let _: i64 = self
            .bounded(async {
                Ok(self
                    .client()
                    .await
                    .custom(fred::cmd!("ZREM"), vec![SALES_INDEX, sale.as_str()])
                    .await?)
            })
            .await?;
        Ok(deleted == 1)
    }

    /// Up to `limit` orders after the stream id `after` (from the start when `None`), in
    /// purchase order.
    pub async fn orders_page(
        &self,
        sale: &SaleId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Order>, StoreError> {
        let entries = self
            .stream_page(SaleKeys::new(sale).orders(), after, limit)
            .await?;
        Ok(entries
            .into_iter()
            .map(|(id, mut fields)| Order {
                id,
                user_id: fields.remove("userId").unwrap_or_default(),
                order_number: number(fields.get("orderNumber")),
                purchase_ms: number(fields.get("purchaseTime")),
                request_id: fields.remove("requestId").unwrap_or_default(),
            })
            .collect())
    }

    /// Up to `limit` entries of a stream after the entry id `after` (from the oldest when
    /// `None`): one page of the order stream or the dead-letter stream.
    pub(super) async fn stream_page(
        &self,
        key: fred::types::Key,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<(String, HashMap<String, String>)>, StoreError> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        self.bounded(async {
            Ok(self
                .client()
                .await
                .xrange(key, start.as_str(), "+", Some(limit))
                .await?)
        })
        .await
    }

    /// Up to `limit` sale ids from position `offset` of the index, oldest first.
    pub async fn list_sales(&self, offset: u64, limit: u64) -> Result<Vec<String>, StoreError> {
        let stop = offset + limit.max(1) - 1;
        self.bounded(async {
            Ok(self
                .client()
                .await
                .custom(
                    fred::cmd!("ZRANGE"),
                    vec![SALES_INDEX.to_owned(), offset.to_string(), stop.to_string()],
                )
                .await?)
        })
        .await
    }

    /// Moves every sale stored by an earlier build (stock key, one buyers hash) to this
    /// build's layout (`lua/upgrade_sale.lua`); returns the ids of the sales it moved. Start-up
    /// runs it before serving; it is a no-op once done.
    pub async fn upgrade_sales(&self, also: &SaleId) -> Result<Vec<String>, StoreError> {
        const PAGE: u64 = 500;
        let mut sales = vec![also.as_str().to_owned()];
        let mut offset = 0;
        loop {
            let page = self.list_sales(offset, PAGE).await?;
            let last = (page.len() as u64) < PAGE;
            sales.extend(page);
            if last {
                break;
            }
            offset += PAGE;
        }
        let mut upgraded = Vec::new();
        for id in sales {
            let Ok(sale) = SaleId::parse(&id) else {
                continue;
            };
            let keys = SaleKeys::new(&sale);
            let moved: i64 = self
                .bounded(async {
                    let client = self.client().await;
                    self.scripts
                        .upgrade_sale
                        .call(client, || {
                            (
                                MultipleKeys::from(vec![
                                    keys.config(),
                                    keys.buyers(),
                                    keys.legacy_stock(),
                                ]),
                                Vec::new(),
                            )
                        })
                        .await
                })
                .await?;
            // A second run on the same sale (SALE_ID is usually indexed too) answers 0.
            if moved == 1 {
                upgraded.push(id);
            }
        }
        Ok(upgraded)
    }

    /// Records a sale in the index (start-up seeding and admin creation).
    pub async fn index_sale(&self, sale: &SaleId) -> Result<(), StoreError> {
        let now_ms = chrono::Utc::now().timestamp_millis().to_string();
        let _: i64 = self
            .bounded(async {
                Ok(self
                    .client()
                    .await
                    .custom(
                        fred::cmd!("ZADD"),
                        vec![SALES_INDEX, "NX", now_ms.as_str(), sale.as_str()],
                    )
                    .await?)
            })
            .await?;
        Ok(())
    }
}

fn number(value: Option<&String>) -> i64 {
    value.and_then(|v| v.parse().ok()).unwrap_or_default()
}
