//! What a sale is: one read of it, its status on the Redis clock, and what a user holds.

use super::Purchase;

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

/// What `GET /api/sale/user/{userId}` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRecord {
    pub purchase: Option<Purchase>,
}
