//! The store's operator calls: create, change, restock, read, page and delete sales, and the
//! index of sales. Each change is one script; the index (`flashsale:sales`, a sorted set by
//! creation time) lives in its own slot, so it is kept beside the scripts, not inside them.

use super::{
    keys::SaleKeys,
    records::OrderEntry,
    scripts::{CreateSale, DeleteSale, PatchSale, PutSale, Restock, SaleStatsRead},
    Store, StoreError,
};
use crate::domain::{SaleId, SaleSeed};
use fred::{
    prelude::*,
    types::{sorted_sets::Ordering, SetOptions},
};
use std::collections::HashMap;

pub use super::scripts::{PatchOutcome, PutOutcome, Restocked, SaleStats};

/// The sorted set of every sale id, scored by creation time (Unix ms).
pub const SALES_INDEX: &str = "flashsale:sales";

/// What `PATCH` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalePatch<'a> {
    pub product_name: Option<&'a str>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// End the sale now, on Redis's clock (an `endTime` of now or earlier).
    pub close_now: bool,
    pub hold_ms: Option<i64>,
    pub max_per_buyer: Option<i64>,
    /// `Some(None)` switches the waiting room off.
    pub room: Option<Option<crate::domain::WaitingRoom>>,
}

impl Store {
    /// Creates the sale if it does not exist yet. Returns whether it was created.
    pub async fn create_sale_if_missing(
        &self,
        sale: &SaleId,
        seed: &SaleSeed,
    ) -> Result<bool, StoreError> {
        let created = self
            .eval(CreateSale {
                keys: SaleKeys::new(sale),
                seed,
            })
            .await?;
        if created && seed.checkout.hold_ms() > 0 {
            self.index_holds(sale).await?;
        }
        if created && seed.waiting_room.is_some() {
            self.index_room(sale).await?;
        }
        Ok(created)
    }

    /// Deletes the sale's attempt counters (`sale:{ID}:rl:*`), after `lua/put_sale.lua`
    /// replaced it or `lua/delete_sale.lua` deleted it: a script cannot be given keys whose
    /// names it would have to find (SPEC §2), so they are found here with `SCAN` on the node of
    /// the sale's slot (the pattern carries the sale's hash tag). Not atomic with the script:
    /// a counter the new sale creates meanwhile may go too, which only forgets an attempt, and
    /// each counter lapses with its window anyway.
    async fn delete_attempt_counters(&self, sale: &SaleId) -> Result<(), StoreError> {
        let pattern = SaleKeys::new(sale).attempts_pattern();
        let mut cursor = String::from("0");
        loop {
            let (next, found): (String, Vec<String>) = self
                .command(|client| {
                    let (cursor, pattern) = (cursor.clone(), pattern.clone());
                    async move { client.scan_page(cursor, pattern, Some(1000), None).await }
                })
                .await?;
            if !found.is_empty() {
                let _: i64 = self
                    .command(|client| {
                        let found = found.clone();
                        async move { client.unlink(found).await }
                    })
                    .await?;
            }
            if next == "0" {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Creates or replaces a sale (`force` replaces one that has buyers).
    pub async fn put_sale(
        &self,
        sale: &SaleId,
        seed: &SaleSeed,
        force: bool,
    ) -> Result<PutOutcome, StoreError> {
        let outcome = self
            .eval_with_buckets(sale, None, |buckets| PutSale {
                keys: SaleKeys::new(sale),
                seed,
                force,
                buckets,
            })
            .await?;
        if outcome == PutOutcome::Replaced {
            self.delete_attempt_counters(sale).await?;
        }
        if matches!(outcome, PutOutcome::Created | PutOutcome::Replaced) {
            self.index_sale(sale).await?;
        }
        if seed.checkout.hold_ms() > 0 && outcome != PutOutcome::HasBuyers {
            self.index_holds(sale).await?;
        }
        if seed.waiting_room.is_some() && outcome != PutOutcome::HasBuyers {
            self.index_room(sale).await?;
        }
        Ok(outcome)
    }

    /// Changes name or window.
    pub async fn patch_sale(
        &self,
        sale: &SaleId,
        patch: SalePatch<'_>,
    ) -> Result<PatchOutcome, StoreError> {
        let outcome = self
            .eval(PatchSale {
                keys: SaleKeys::new(sale),
                product_name: patch.product_name,
                start_ms: patch.start_ms,
                end_ms: patch.end_ms,
                close_now: patch.close_now,
                hold_ms: patch.hold_ms,
                max_per_buyer: patch.max_per_buyer,
                room: patch.room,
            })
            .await?;
        if outcome == PatchOutcome::Done && patch.hold_ms.is_some_and(|ms| ms > 0) {
            self.index_holds(sale).await?;
        }
        if outcome == PatchOutcome::Done && matches!(patch.room, Some(Some(_))) {
            self.index_room(sale).await?;
        }
        Ok(outcome)
    }

    /// Adds `units` once per `token`; `None` when the sale does not exist.
    pub async fn restock(
        &self,
        sale: &SaleId,
        units: u64,
        token: &str,
    ) -> Result<Option<Restocked>, StoreError> {
        self.eval(Restock {
            keys: SaleKeys::new(sale),
            units,
            token,
        })
        .await
    }

    /// The sale's config and counters; `None` when it does not exist.
    pub async fn sale_stats(&self, sale: &SaleId) -> Result<Option<SaleStats>, StoreError> {
        self.eval_with_buckets(sale, None, |buckets| SaleStatsRead {
            keys: SaleKeys::new(sale),
            buckets,
        })
        .await
    }

    /// Removes every key of the sale; whether it existed.
    pub async fn delete_sale(&self, sale: &SaleId) -> Result<bool, StoreError> {
        let deleted = self
            .eval_with_buckets(sale, None, |buckets| DeleteSale {
                keys: SaleKeys::new(sale),
                buckets,
            })
            .await?;
        if deleted {
            self.delete_attempt_counters(sale).await?;
        }
        let id = sale.as_str().to_owned();
        let _: i64 = self
            .command(|client| {
                let id = id.clone();
                async move { client.zrem(SALES_INDEX, id).await }
            })
            .await?;
        for set in [super::checkout::HOLD_SALES, super::queue::ROOM_SALES] {
            let id = sale.as_str().to_owned();
            let _: i64 = self
                .command(|client| {
                    let id = id.clone();
                    async move { client.srem(set, id).await }
                })
                .await?;
        }
        Ok(deleted)
    }

    /// Adds a sale to one of the global sets of sales (those with holds, with a room).
    pub(super) async fn add_to_set(
        &self,
        set: &'static str,
        sale: &SaleId,
    ) -> Result<(), StoreError> {
        let id = sale.as_str().to_owned();
        let _: i64 = self
            .command(|client| {
                let id = id.clone();
                async move { client.sadd(set, id).await }
            })
            .await?;
        Ok(())
    }

    /// Up to `limit` orders after the stream id `after` (from the start when `None`), in
    /// purchase order.
    pub async fn orders_page(
        &self,
        sale: &SaleId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<OrderEntry>, StoreError> {
        let entries = self
            .stream_page(SaleKeys::new(sale).orders(), after, limit)
            .await?;
        entries
            .into_iter()
            .map(|(id, fields)| OrderEntry::parse(id, fields))
            .collect()
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
        self.command(|client| {
            let (key, start) = (key.clone(), start.clone());
            async move { client.xrange(key, start, "+", Some(limit)).await }
        })
        .await
    }

    /// Up to `limit` sale ids from position `offset` of the index, oldest first.
    pub async fn list_sales(&self, offset: u64, limit: u64) -> Result<Vec<String>, StoreError> {
        let stop = offset + limit.max(1) - 1;
        let (start, stop) = (clamp(offset), clamp(stop));
        self.command(|client| async move {
            client
                .zrange(SALES_INDEX, start, stop, None, false, None, false)
                .await
        })
        .await
    }

    /// Records a sale in the index (start-up seeding and admin creation); an indexed sale keeps
    /// its first score.
    pub async fn index_sale(&self, sale: &SaleId) -> Result<(), StoreError> {
        let now_ms = chrono::Utc::now().timestamp_millis() as f64;
        let id = sale.as_str().to_owned();
        let _: i64 = self
            .command(|client| {
                let id = id.clone();
                async move {
                    client
                        .zadd(
                            SALES_INDEX,
                            Some(SetOptions::NX),
                            None::<Ordering>,
                            false,
                            false,
                            (now_ms, id),
                        )
                        .await
                }
            })
            .await?;
        Ok(())
    }
}

/// A position in the index as Redis takes it.
fn clamp(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}
