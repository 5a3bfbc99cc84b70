//! Moving data stored by an earlier build to this build's layout, at start-up, only when the
//! stored layout version (`flashsale:layout`) says it is older.
//!
//! Layout 1 kept a sale's remaining stock in `sale:{ID}:stock` and every buyer in one hash;
//! layout 2 keeps `sold` in the config and buyers in buckets (`lua/upgrade_sale.lua` moves one
//! sale, atomically, and is a no-op on a sale already moved).

use super::{admin::SALES_INDEX, keys::SaleKeys, scripts::UpgradeSale, Store, StoreError};
use crate::domain::SaleId;
use fred::prelude::*;

/// The key that records the layout of every sale in this Redis.
pub const LAYOUT_KEY: &str = "flashsale:layout";
/// This build's layout.
pub const LAYOUT: i64 = 2;

impl Store {
    /// Moves every sale of an older layout (the indexed ones, and `also`, which may predate
    /// the index) to this build's, then records the layout so later starts skip the scan.
    /// Returns the ids of the sales it moved. A Redis without sales stays untouched.
    pub async fn migrate(&self, also: &SaleId) -> Result<Vec<SaleId>, StoreError> {
        let stored: Option<i64> = self
            .command(|client| async move { client.get(LAYOUT_KEY).await })
            .await?;
        if stored.is_some_and(|layout| layout >= LAYOUT) {
            return Ok(Vec::new());
        }
        const PAGE: u64 = 500;
        let mut sales = Vec::new();
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
        let indexed = !sales.is_empty();
        if !sales.iter().any(|id| id == also.as_str()) {
            sales.push(also.as_str().to_owned());
        }
        let mut moved = Vec::new();
        for id in sales {
            let Ok(sale) = SaleId::parse(&id) else {
                tracing::warn!(sale_id = %id, "an id in {SALES_INDEX} is not a sale id; skipped");
                continue;
            };
            let keys = SaleKeys::new(&sale);
            if self.eval(UpgradeSale { keys }).await? {
                moved.push(sale);
            }
        }
        if indexed || !moved.is_empty() {
            let _: () = self
                .command(
                    |client| async move { client.set(LAYOUT_KEY, LAYOUT, None, None, false).await },
                )
                .await?;
        }
        Ok(moved)
    }
}
