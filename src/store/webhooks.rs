//! The store's calls for order webhooks: take orders to deliver (new ones, and those a dead
//! instance left pending), acknowledge a delivery, count a failed attempt (and dead-letter after
//! the last), re-drive dead orders, page the dead-letter stream, and measure the backlog.
//! Each is one script over the sale's streams, so each step is atomic.

use super::{
    keys::SaleKeys,
    records::{DeadOrder, PendingOrder},
    scripts::{WebhookBacklog, WebhookDone, WebhookFailed, WebhookRedrive, WebhookTake},
    Store, StoreError,
};
use crate::domain::SaleId;

pub use super::scripts::{Backlog, FailedAttempt, Taken, WEBHOOK_GROUP};

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
        self.eval(WebhookTake {
            keys: SaleKeys::new(sale),
            consumer,
            count,
            claim_idle_ms,
            claim_cursor,
        })
        .await
    }

    /// The receiver took the order: acknowledge it.
    pub async fn webhook_done(
        &self,
        sale: &SaleId,
        order: &PendingOrder,
    ) -> Result<(), StoreError> {
        self.eval(WebhookDone {
            keys: SaleKeys::new(sale),
            order,
        })
        .await
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
        self.eval(WebhookFailed {
            keys: SaleKeys::new(sale),
            consumer,
            order,
            max_attempts,
            error,
        })
        .await
    }

    /// Sends up to `count` dead orders back for delivery. Returns (re-driven, still dead).
    pub async fn redrive_dead(&self, sale: &SaleId, count: u64) -> Result<(u64, u64), StoreError> {
        self.eval(WebhookRedrive {
            keys: SaleKeys::new(sale),
            count,
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
        entries
            .into_iter()
            .map(|(id, fields)| DeadOrder::parse(id, fields))
            .collect()
    }

    /// How far `sale`'s delivery is behind.
    pub async fn webhook_backlog(&self, sale: &SaleId) -> Result<Backlog, StoreError> {
        self.eval(WebhookBacklog {
            keys: SaleKeys::new(sale),
        })
        .await
    }
}
