//! What a sale is: one read of it, its status on the Redis clock, and what a user holds.

use super::{Purchase, RoomSnapshot, WaitingRoom};

/// One read of a sale: its config, remaining stock and the Redis clock at the time of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleSnapshot {
    pub product_name: String,
    pub total_stock: i64,
    pub remaining_stock: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Redis `TIME` when the snapshot was read (README, How a purchase stays atomic: one clock).
    pub redis_now_ms: i64,
    /// Units in unpaid checkout holds: not remaining, not yet confirmed (README, Checkout).
    pub held_stock: i64,
    /// The waiting room's settings and counters; `None` when the sale has none.
    pub room: Option<RoomSnapshot>,
}

// Serialized as `as_str` spells it (a test compares them), for the OpenAPI document.
/// Where a sale stands: `upcoming` before its start, `active`, `sold_out`, `ended` after its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
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
    /// On a checkout sale: the order's units, and the end of its hold while it is unpaid.
    pub checkout: Option<UserOrder>,
}

/// A checkout sale's order as its buyer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserOrder {
    pub quantity: i64,
    /// `None` once confirmed.
    pub hold_expires_ms: Option<i64>,
}

/// The most units a sale may hold; far above any real drop, low enough that counters never wrap.
pub const MAX_TOTAL_STOCK: u64 = 1_000_000_000;

/// A product's name as shown to buyers: 1 to 200 characters once trimmed, none of them control
/// characters. One rule for `SALE_PRODUCT_NAME` and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    /// The rule, as the callers put it after the field's name.
    pub const RULE: &'static str = "must be 1 to 200 characters, none of them control characters";

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        // The bound is on the name as sent, as the OpenAPI schema's maxLength states it (found
        // by schemathesis: a space and 200 characters were taken as 200).
        if name.is_empty() || raw.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Self::RULE);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When a sale takes purchases: from `start` (inclusive) to `end` (exclusive); the end is always
/// after the start. One rule for `SALE_START`/`SALE_END` and the admin API's `PUT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaleWindow {
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
}

impl SaleWindow {
    /// `None` when the end is not after the start.
    pub fn new(
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> Option<Self> {
        (end > start).then_some(Self { start, end })
    }

    pub fn start(&self) -> chrono::DateTime<chrono::Utc> {
        self.start
    }

    pub fn end(&self) -> chrono::DateTime<chrono::Utc> {
        self.end
    }
}

/// How a sale takes payment (README, Checkout): how long a unit is held for an unpaid order
/// (0 = no holds: an order is final when it is placed) and how many units one order may take.
/// One rule for `SALE_HOLD_SECONDS`/`SALE_MAX_PER_BUYER` and the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutRules {
    hold_seconds: u32,
    max_per_buyer: u32,
}

impl CheckoutRules {
    /// No holds, one unit per buyer: the sale as it was before checkouts.
    pub const PLAIN: Self = Self {
        hold_seconds: 0,
        max_per_buyer: 1,
    };
    pub const MIN_HOLD_SECONDS: u64 = 30;
    pub const MAX_HOLD_SECONDS: u64 = 86_400;
    pub const MAX_PER_BUYER: u64 = 100;
    pub const HOLD_RULE: &'static str = "must be 0 (no holds) or 30 to 86400";
    pub const MAX_PER_BUYER_RULE: &'static str = "must be 1 to 100";

    pub fn hold_seconds(seconds: u64) -> Result<u32, &'static str> {
        if seconds == 0 || (Self::MIN_HOLD_SECONDS..=Self::MAX_HOLD_SECONDS).contains(&seconds) {
            Ok(seconds as u32)
        } else {
            Err(Self::HOLD_RULE)
        }
    }

    pub fn max_per_buyer(units: u64) -> Result<u32, &'static str> {
        if (1..=Self::MAX_PER_BUYER).contains(&units) {
            Ok(units as u32)
        } else {
            Err(Self::MAX_PER_BUYER_RULE)
        }
    }

    /// Rules from raw values, each checked by its own rule (the error names the field).
    pub fn new(
        hold_seconds: u64,
        max_per_buyer: u64,
    ) -> Result<Self, (&'static str, &'static str)> {
        Ok(Self {
            hold_seconds: Self::hold_seconds(hold_seconds).map_err(|rule| ("holdSeconds", rule))?,
            max_per_buyer: Self::max_per_buyer(max_per_buyer)
                .map_err(|rule| ("maxPerBuyer", rule))?,
        })
    }

    pub fn hold_ms(&self) -> i64 {
        i64::from(self.hold_seconds) * 1000
    }

    pub fn units_per_buyer(&self) -> u32 {
        self.max_per_buyer
    }
}

/// What a new sale holds: name, stock, window, checkout rules and waiting room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleSeed {
    pub product_name: ProductName,
    pub total_stock: u64,
    pub window: SaleWindow,
    pub checkout: CheckoutRules,
    pub waiting_room: Option<WaitingRoom>,
}

impl SaleSeed {
    /// The sale of local mode: 100 units, starting now, ending in one hour.
    pub fn demo(now: chrono::DateTime<chrono::Utc>) -> Option<Self> {
        Some(Self {
            product_name: ProductName::parse("Demo product").ok()?,
            total_stock: 100,
            window: SaleWindow::new(now, now + chrono::Duration::hours(1))?,
            checkout: CheckoutRules::PLAIN,
            waiting_room: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_serializes_as_it_is_spelled() {
        for status in [
            SaleStatus::Upcoming,
            SaleStatus::Active,
            SaleStatus::SoldOut,
            SaleStatus::Ended,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn a_product_name_is_trimmed_and_bounded() {
        assert_eq!(
            ProductName::parse("  Sneaker ").unwrap().as_str(),
            "Sneaker"
        );
        assert_eq!(
            ProductName::parse(&"é".repeat(200))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            200
        );
        let padded = format!("\u{a0}{}", "x".repeat(200));
        for bad in ["", "   ", "a\nb", "tab\there", &"x".repeat(201), &padded] {
            assert_eq!(ProductName::parse(bad), Err(ProductName::RULE), "{bad:?}");
        }
    }

    #[test]
    fn checkout_rules_bound_holds_and_units() {
        assert_eq!(CheckoutRules::new(0, 1), Ok(CheckoutRules::PLAIN));
        assert_eq!(CheckoutRules::new(30, 100).map(|r| r.hold_ms()), Ok(30_000));
        assert_eq!(
            CheckoutRules::new(86_400, 1).map(|r| r.hold_ms()),
            Ok(86_400_000)
        );
        for (hold, max, field) in [
            (29, 1, "holdSeconds"),
            (86_401, 1, "holdSeconds"),
            (1, 1, "holdSeconds"),
            (0, 0, "maxPerBuyer"),
            (0, 101, "maxPerBuyer"),
        ] {
            assert_eq!(CheckoutRules::new(hold, max).map_err(|e| e.0), Err(field));
        }
    }

    #[test]
    fn a_window_ends_after_it_starts() {
        let now = chrono::Utc::now();
        assert!(SaleWindow::new(now, now + chrono::Duration::milliseconds(1)).is_some());
        assert!(SaleWindow::new(now, now).is_none());
        assert!(SaleWindow::new(now, now - chrono::Duration::hours(1)).is_none());
    }
}
