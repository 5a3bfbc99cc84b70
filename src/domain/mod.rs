//! Validated domain types: parse once at the edge, then trust the type everywhere inside.

mod outcome;
mod request_token;
mod sale;
mod sale_id;
mod user_id;

pub use outcome::{CheckoutPart, Code, Purchase, PurchaseOutcome, PurchaseReply};
pub use request_token::RequestToken;
pub use sale::{
    CheckoutRules, ProductName, SaleSeed, SaleSnapshot, SaleStatus, SaleWindow, UserOrder,
    UserRecord, MAX_TOTAL_STOCK,
};
pub use sale_id::{DefaultSale, SaleId};
pub use user_id::{UserId, UserIdCase};

/// The most sales one instance serves at once: the status cache's bound, and the webhook
/// loop's.
pub const MAX_SALES: u64 = 10_000;

/// Formats Unix milliseconds (Redis clock) as RFC 3339 UTC with millisecond precision.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
