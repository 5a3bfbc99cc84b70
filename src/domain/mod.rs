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
/// Computed and written a digit at a time (the civil date by Howard Hinnant's
/// `civil_from_days`): chrono's `to_rfc3339_opts` goes through `fmt` for each field, ~700
/// instructions on every purchase answer (callgrind).
pub fn rfc3339_ms(unix_ms: i64) -> String {
    const DAY_MS: i64 = 86_400_000;
    let (days, ms) = (unix_ms.div_euclid(DAY_MS), unix_ms.rem_euclid(DAY_MS));
    let z = days + 719_468;
    let (era, day_of_era) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        // Out of four digits (no clock this service meets): chrono's own form.
        return chrono::DateTime::from_timestamp_millis(unix_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    }
    // "YYYY-MM-DDTHH:MM:SS.mmmZ": each number, its digits, where it starts.
    let fields = [
        (year, 4, 0),
        (month, 2, 5),
        (day, 2, 8),
        (ms / 3_600_000, 2, 11),
        (ms / 60_000 % 60, 2, 14),
        (ms / 1_000 % 60, 2, 17),
        (ms % 1_000, 3, 20),
    ];
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (mut value, digits, at) in fields {
        for place in (at..at + digits).rev() {
            text[place] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod time_tests {
    use super::rfc3339_ms;

    #[test]
    fn rfc3339_ms_writes_what_chrono_writes() {
        let chrono_form = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let mut ms = -86_400_000_i64 * 365;
        while ms < 4_102_444_800_000 {
            assert_eq!(rfc3339_ms(ms), chrono_form(ms), "{ms}");
            ms += 3 * 86_399_999 + 7;
        }
        for ms in [
            0,
            1,
            999,
            1_000,
            951_782_400_000,
            1_733_450_000_123,
            253_402_300_799_999,
        ] {
            assert_eq!(rfc3339_ms(ms), chrono_form(ms), "{ms}");
        }
        assert_eq!(rfc3339_ms(1_733_450_000_123), "2024-12-06T01:53:20.123Z");
        // Past year 9999: chrono's own form.
        assert_eq!(
            rfc3339_ms(253_402_300_800_000),
            chrono_form(253_402_300_800_000)
        );
    }
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
