//! `SaleId`: names one sale; it becomes the Redis Cluster hash tag of all the sale's keys.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SaleId(String);

impl SaleId {
    /// 1–64 characters from `A–Z a–z 0–9 _ -`. The id is wrapped in `{…}` as the hash tag of
    /// every key of the sale, so a brace inside would move keys to another slot, and `:` would
    /// blur the key layout; the rule is checked before any key is built.
    pub fn parse(value: &str) -> Result<Self, String> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "must be 1 to 64 characters from A-Z a-z 0-9 _ - (got {value:?})"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The sale the `/api/sale/*` alias serves (`SALE_ID`), in the app data on its own, so the
/// extractor and the request log can read it without the handlers' state.
#[derive(Debug, Clone)]
pub struct DefaultSale(pub SaleId);

impl fmt::Display for SaleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SaleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SaleId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_and_spaces_are_rejected() {
        assert!(SaleId::parse("spring-2026").is_ok());
        assert!(SaleId::parse(&"x".repeat(64)).is_ok());
        for bad in ["", "a{b", "a}b", "a b", "a:b", "a.b", "é", &"x".repeat(65)] {
            assert!(SaleId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
