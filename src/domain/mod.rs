//! Validated domain types: parse once at the edge, then trust the type everywhere inside.

mod outcome;
mod request_token;
mod sale;
mod sale_id;
mod user_id;

pub use outcome::{Code, Purchase, PurchaseOutcome, PurchaseReply};
pub use request_token::RequestToken;
pub use sale::{SaleSnapshot, SaleStatus, UserRecord};
pub use sale_id::SaleId;
pub use user_id::{UserId, UserIdCase};

/// Formats Unix milliseconds (Redis clock) as RFC 3339 UTC with millisecond precision.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
