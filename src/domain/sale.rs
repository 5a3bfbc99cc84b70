//! What a sale is and what a purchase can answer, independent of HTTP and of Redis.

use std::time::Duration;

/// One read of a sale: its config, remaining stock and the Redis clock at the time of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleSnapshot {
    pub product_name: String,
    pub total_stock: i64,
    pub remaining_stock: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Redis `TIME` when the snapshot was read (SPEC invariant 7: one clock).
    pub redis_now_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleStatus {
    Upcoming,
    Active,
    SoldOut,
    Ended,
}

impl SaleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SaleStatus::Upcoming => "upcoming",
            SaleStatus::Active => "active",
            SaleStatus::SoldOut => "sold_out",
            SaleStatus::Ended => "ended",
        }
    }
}

impl SaleSnapshot {
    /// The status at `now_ms` on the Redis clock. The window decides first, so a sale that sold
    /// out and then closed reads `ended`, and one with no stock before its start reads `upcoming`.
    pub fn status_at(&self, now_ms: i64) -> SaleStatus {
        if now_ms < self.start_ms {
            SaleStatus::Upcoming
        } else if now_ms >= self.end_ms {
            SaleStatus::Ended
        } else if self.remaining_stock <= 0 {
            SaleStatus::SoldOut
        } else {
            SaleStatus::Active
        }
    }
}

/// A unit held by a buyer: when it was bought (Redis clock) and in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase {
    pub purchase_ms: i64,
    pub order_number: i64,
}

/// What `GET /api/sale/user/{userId}` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRecord {
    pub purchase: Option<Purchase>,
}

/// Every answer the purchase script can give. `remaining` is the stock after the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseOutcome {
    /// This request (or an earlier try of it, same request token) bought the unit.
    Purchased {
        remaining: i64,
        purchase: Purchase,
    },
    /// The user bought earlier with another request.
    AlreadyPurchased {
        remaining: i64,
        purchase: Purchase,
    },
    SoldOut,
    NotStarted {
        remaining: i64,
    },
    Ended {
        remaining: i64,
    },
    RateLimited {
        remaining: i64,
        retry_after: Duration,
    },
    SaleNotFound,
}
