//! Validated domain types: parse once at the edge, then trust the type everywhere inside.

mod outcome;
mod request_token;
mod room;
mod sale;
mod sale_id;
mod user_id;

pub use outcome::{CheckoutPart, Code, Purchase, PurchaseOutcome, PurchaseReply};
pub use request_token::RequestToken;
pub use room::{rank_key, Draw, RoomSnapshot, Standing, WaitingRoom};
pub use sale::{
    CheckoutRules, ProductName, SaleSeed, SaleSnapshot, SaleStatus, SaleWindow, UserOrder,
    UserRecord, MAX_TOTAL_STOCK,
};
pub use sale_id::{DefaultSale, SaleId};
pub use user_id::{UserId, UserIdCase};

/// The most sales one instance serves at once: the status cache's bound, and the webhook
/// loop's.
pub const MAX_SALES: u64 = 10_000;

/// Lower-case hex of bytes (signatures, seeds and digests are shown this way).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// Bytes from lower- or upper-case hex; `None` for anything else.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).ok())
        .collect()
}

/// Formats Unix milliseconds (Redis clock) as RFC 3339 UTC with millisecond precision.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
