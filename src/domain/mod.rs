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
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// Bytes from lower- or upper-case hex; `None` for anything else. (A waiting-room purchase
/// decodes its admission's tag with this: a digit at a time, not a parse per pair.)
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    fn nibble(digit: u8) -> Option<u8> {
        char::from(digit)
            .to_digit(16)
            .and_then(|n| u8::try_from(n).ok())
    }
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// Formats Unix milliseconds (Redis clock) as RFC 3339 UTC with millisecond precision.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod hex_tests {
    use super::{hex, unhex};

    #[test]
    fn hex_round_trips_and_unhex_refuses_what_is_not_hex() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(hex(&[0x0f, 0xa0]), "0fa0");
        assert_eq!(unhex("0FA0"), Some(vec![0x0f, 0xa0]));
        for bad in ["0", "+f", "-1", "0g", " 0", "é", "0\n"] {
            assert_eq!(unhex(bad), None, "{bad:?}");
        }
        assert_eq!(unhex(""), Some(Vec::new()));
    }
}
