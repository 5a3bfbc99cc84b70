//! `RequestToken`: identifies one purchase request across its retries (README, How a purchase stays atomic: retry safety).
//!
//! The token is stored with the buyer record. When the same request runs again — fred re-sends
//! an in-flight EVALSHA after a reconnect, or a client retries with its `Idempotency-Key` — the
//! script finds its own token and answers `PURCHASED` again instead of `ALREADY_PURCHASED`.

/// Longest `Idempotency-Key` accepted; UUIDs and ULIDs fit many times over.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Sixteen hex characters: a fixed size, so a long client key costs Redis no extra memory per buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestToken(String);

impl RequestToken {
    /// A token derived from the client's `Idempotency-Key` (1–255 visible ASCII characters).
    /// It is a stable hash, so every instance, of any build, derives the same token.
    pub fn from_idempotency_key(key: &[u8]) -> Result<Self, String> {
        if key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY_LEN
            || !key.iter().all(u8::is_ascii_graphic)
        {
            return Err(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ));
        }
        // Visible ASCII is valid UTF-8, so the lossy conversion never replaces anything.
        let digest = fred::util::sha1_hash(&String::from_utf8_lossy(key));
        Ok(Self(digest[..16].to_owned()))
    }

    /// A fresh token for a request that came without a key.
    pub fn generate() -> Self {
        Self(super::hex(&rand::random::<u64>().to_be_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_gives_the_same_token() {
        let a = RequestToken::from_idempotency_key(b"order-1").unwrap();
        let b = RequestToken::from_idempotency_key(b"order-1").unwrap();
        let c = RequestToken::from_idempotency_key(b"order-2").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 16);
    }

    #[test]
    fn generated_tokens_differ() {
        assert_ne!(RequestToken::generate(), RequestToken::generate());
    }

    #[test]
    fn bad_keys_are_rejected() {
        for key in [&b""[..], b"has space", b"\x01", &[b'k'; 256]] {
            assert!(RequestToken::from_idempotency_key(key).is_err());
        }
    }
}
