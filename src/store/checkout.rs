//! The store's checkout calls (README, Checkout): read, confirm and cancel an order, release a
//! sale's expired holds, and the set of sales with holds that the sweeper visits.

use super::{
    keys::SaleKeys,
    scripts::{OrderAction, OrderCall, OrderChange, Sweep, Swept},
    Store, StoreError,
};
use super::{records::ORDER_CREATED, OrderEntry, OrderRecord};
use crate::domain::SaleId;
use fred::prelude::*;

/// The set of sale ids that have (or had) holds: what every instance's sweeper visits. A sale
/// leaves it when it is deleted.
pub const HOLD_SALES: &str = "flashsale:sales:holds";

/// Who an order change is for, and how the caller proved it.
#[derive(Debug, Clone, Copy)]
pub enum OrderRef<'a> {
    /// The shop (admin token) or a payment provider: the order by its number.
    Number(u64),
    /// The buyer holding a reservation token (`<orderNumber>.<secret>`).
    Token { order_number: u64, token: &'a str },
    /// The buyer signed in (JWT): their own order.
    Buyer(&'a str),
    /// The buyer signed in and holding the hold's token: that order, if it is theirs.
    BuyerToken {
        user: &'a str,
        order_number: u64,
        token: &'a str,
    },
}

/// Which buyers an export lists (README, Checkout: the buyers export).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuyerState {
    /// Paid orders (every order of a sale without holds).
    Confirmed,
    /// Orders waiting for payment now.
    Held,
    /// Orders whose units went back (and that were not paid late since).
    Released,
}

/// One page of an export: the rows, and the id of the last order-stream entry read (the
/// cursor of the next page), which may be past the last row since entries are filtered.
pub struct BuyersPage {
    pub rows: Vec<OrderEntry>,
    pub last_read: Option<String>,
    pub read: u64,
}

impl Store {
    /// Up to `limit` order-stream entries after `after`, keeping the events of buyers in
    /// `state`: `order.created`/`order.confirmed` for confirmed; `order.reserved` and
    /// `order.released` of orders still in that state for held and released.
    pub async fn buyers_page(
        &self,
        sale: &SaleId,
        after: Option<&str>,
        limit: u64,
        state: BuyerState,
    ) -> Result<BuyersPage, StoreError> {
        let entries = self.orders_page(sale, after, limit).await?;
        let read = entries.len() as u64;
        let last_read = entries.last().map(|entry| entry.id.clone());
        let (kind, now) = match state {
            BuyerState::Confirmed => {
                let rows = entries
                    .into_iter()
                    .filter(|e| e.kind == ORDER_CREATED || e.kind == "order.confirmed")
                    .collect();
                return Ok(BuyersPage {
                    rows,
                    last_read,
                    read,
                });
            }
            BuyerState::Held => ("order.reserved", "held"),
            BuyerState::Released => ("order.released", "released"),
        };
        let candidates: Vec<OrderEntry> = entries.into_iter().filter(|e| e.kind == kind).collect();
        let numbers: Vec<String> = candidates
            .iter()
            .map(|entry| entry.order_number.to_string())
            .collect();
        let records: Vec<Option<String>> = if numbers.is_empty() {
            Vec::new()
        } else {
            let key = SaleKeys::new(sale).checkouts();
            self.command(|client| {
                let (key, numbers) = (key.clone(), numbers.clone());
                async move { client.hmget(key, numbers).await }
            })
            .await?
        };
        let mut rows = Vec::with_capacity(candidates.len());
        for (entry, record) in candidates.into_iter().zip(records) {
            let Some(json) = record else { continue };
            let record: OrderRecord = serde_json::from_str(&json)
                .map_err(|err| StoreError::bad_data("order", format!("{err}: {json}")))?;
            if record.state == now {
                rows.push(entry);
            }
        }
        Ok(BuyersPage {
            rows,
            last_read,
            read,
        })
    }

    /// Reads, confirms or cancels one order, atomically; `payment_event` is applied once.
    pub async fn order(
        &self,
        sale: &SaleId,
        action: OrderAction,
        order: OrderRef<'_>,
        request_id: &str,
        payment_event: Option<&str>,
    ) -> Result<OrderChange, StoreError> {
        let (order_number, user, reservation_token) = match order {
            OrderRef::Number(number) => (Some(number), None, None),
            OrderRef::Token {
                order_number,
                token,
            } => (Some(order_number), None, Some(token)),
            OrderRef::Buyer(user) => (None, Some(user), None),
            OrderRef::BuyerToken {
                user,
                order_number,
                token,
            } => (Some(order_number), Some(user), Some(token)),
        };
        self.eval_with_buckets(sale, user, |buckets| OrderCall {
            keys: SaleKeys::new(sale),
            action,
            order_number,
            user,
            reservation_token,
            sale_id: sale.as_str(),
            request_id,
            payment_event,
            buckets,
        })
        .await
    }

    /// Releases up to `limit` expired holds of the sale.
    pub async fn sweep(&self, sale: &SaleId, limit: u32) -> Result<Swept, StoreError> {
        self.eval(Sweep {
            keys: SaleKeys::new(sale),
            sale_id: sale.as_str(),
            limit,
        })
        .await
    }

    /// Records that the sale has holds, so every instance's sweeper visits it.
    pub async fn index_holds(&self, sale: &SaleId) -> Result<(), StoreError> {
        self.add_to_set(HOLD_SALES, sale).await
    }

    /// The sales the sweeper visits.
    pub async fn sales_with_holds(&self) -> Result<Vec<String>, StoreError> {
        self.command(|client| async move { client.smembers(HOLD_SALES).await })
            .await
    }
}
