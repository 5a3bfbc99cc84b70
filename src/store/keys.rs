//! Key names of one sale (SPEC §2). Every key carries the sale id as its hash tag, so all of a
//! sale's keys live in one Redis Cluster slot and one script may touch them all.

use crate::domain::{SaleId, UserId};
use fred::types::{Key, MultipleKeys};

/// The keys of one sale, built once at start-up; cloning a `Key` only bumps a reference count.
#[derive(Clone, Debug)]
pub struct SaleKeys {
    /// `sale:{ID}:config` — hash: productName, totalStock, startMs, endMs, createdMs.
    pub config: Key,
    /// `sale:{ID}:stock` — integer: remaining units.
    pub stock: Key,
    /// `sale:{ID}:buyers` — hash: userId → `purchaseMs:orderNumber:requestToken`.
    pub buyers: Key,
    /// `sale:{ID}:rl:` — prefix of the per-user attempt counters.
    attempts_prefix: String,
}

impl SaleKeys {
    pub fn new(sale: &SaleId) -> Self {
        let prefix = format!("sale:{{{sale}}}:");
        Self {
            config: Key::from(format!("{prefix}config")),
            stock: Key::from(format!("{prefix}stock")),
            buyers: Key::from(format!("{prefix}buyers")),
            attempts_prefix: format!("{prefix}rl:"),
        }
    }

    /// `sale:{ID}:rl:<userId>` — the user's attempt counter, in the sale's slot.
    pub fn attempts(&self, user: &UserId) -> Key {
        let mut key = String::with_capacity(self.attempts_prefix.len() + user.as_str().len());
        key.push_str(&self.attempts_prefix);
        key.push_str(user.as_str());
        Key::from(key)
    }

    pub fn config_and_stock(&self) -> MultipleKeys {
        MultipleKeys::from(vec![self.config.clone(), self.stock.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_carries_the_sale_hash_tag() {
        let keys = SaleKeys::new(&SaleId::parse("spring").unwrap());
        let user = UserId::parse("a@b.c".into()).unwrap();
        assert_eq!(keys.config.as_str(), Some("sale:{spring}:config"));
        assert_eq!(keys.stock.as_str(), Some("sale:{spring}:stock"));
        assert_eq!(keys.buyers.as_str(), Some("sale:{spring}:buyers"));
        assert_eq!(
            keys.attempts(&user).as_str(),
            Some("sale:{spring}:rl:a@b.c")
        );
        let slots: Vec<u16> = [
            &keys.config,
            &keys.stock,
            &keys.buyers,
            &keys.attempts(&user),
        ]
        .iter()
        .map(|key| fred::util::redis_keyslot(key.as_bytes()))
        .collect();
        assert!(slots.iter().all(|slot| *slot == slots[0]), "{slots:?}");
    }
}
