//! Key names of one sale (README, How a purchase stays atomic: the key table). Every key carries the sale id as its hash tag, so all of a
//! sale's keys live in one Redis Cluster slot and one script may touch them all.

use crate::domain::SaleId;
use fred::types::{Key, MultipleKeys};

/// The first 32 bits of SHA-1(userId), big-endian: what picks a buyer's bucket. Only the
/// service computes it (no script does: each is given the buckets it touches, SPEC §2), so
/// every build and instance must keep this function as it is.
pub fn user_hash(user: &str) -> u32 {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, user.as_bytes());
    let bytes = digest.as_ref();
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The key names of one sale, built from its (validated) id.
#[derive(Clone, Debug)]
pub struct SaleKeys {
    /// `sale:{ID}:`
    prefix: String,
}

impl SaleKeys {
    pub fn new(sale: &SaleId) -> Self {
        Self {
            prefix: format!("sale:{{{sale}}}:"),
        }
    }

    fn key(&self, suffix: &str) -> Key {
        let mut name = String::with_capacity(self.prefix.len() + suffix.len());
        name.push_str(&self.prefix);
        name.push_str(suffix);
        Key::from(name)
    }

    /// `sale:{ID}:config` — hash: productName, totalStock, startMs, endMs, createdMs, sold
    /// (units sold; the remaining stock is totalStock − sold) and buyerBuckets.
    pub fn config(&self) -> Key {
        self.key("config")
    }

    /// `sale:{ID}:buyers` — the prefix of the buyer buckets `sale:{ID}:buyers:<n>`, hashes of
    /// userId → buyer record (the one hash of every buyer in the layout before buckets, which
    /// `lua/upgrade_sale.lua` renames to bucket 0).
    pub fn buyers(&self) -> Key {
        self.key("buyers")
    }

    /// `sale:{ID}:stock` — where builds before the buyer buckets kept the remaining stock; read
    /// once by `lua/upgrade_sale.lua`, then deleted.
    pub fn legacy_stock(&self) -> Key {
        self.key("stock")
    }

    /// `sale:{ID}:buyers:<n>` — one buyer bucket.
    pub fn buyer_bucket(&self, n: u32) -> Key {
        self.key(&format!("buyers:{n}"))
    }

    /// The buyer bucket of a user whose [`user_hash`] this is, in a sale of `buckets` buckets.
    pub fn bucket_of(&self, hash: u32, buckets: u32) -> Key {
        self.buyer_bucket(if buckets <= 1 { 0 } else { hash % buckets })
    }

    /// Every buyer bucket of a sale of `buckets` buckets, in order (the admin scripts that
    /// count or delete them all are given them all).
    pub fn all_buckets(&self, buckets: u32) -> impl Iterator<Item = Key> + '_ {
        (0..buckets).map(|n| self.buyer_bucket(n))
    }

    /// `sale:{ID}:orders` — stream: one entry per unit sold (saleId, userId, orderNumber,
    /// purchaseTime, requestId), in purchase order.
    pub fn orders(&self) -> Key {
        self.key("orders")
    }

    /// `sale:{ID}:refused` — integer: purchase attempts refused.
    pub fn refused(&self) -> Key {
        self.key("refused")
    }

    /// `sale:{ID}:restocks` — hash: restock request token → units (a retried restock adds once).
    pub fn restocks(&self) -> Key {
        self.key("restocks")
    }

    /// `sale:{ID}:orders:dead` — stream: orders whose webhook failed every attempt.
    pub fn orders_dead(&self) -> Key {
        self.key("orders:dead")
    }

    /// `sale:{ID}:orders:retry` — stream: dead orders sent back for delivery (re-drive).
    pub fn orders_retry(&self) -> Key {
        self.key("orders:retry")
    }

    /// `sale:{ID}:orders:attempts` — hash: failed webhook attempts per undelivered entry.
    pub fn orders_attempts(&self) -> Key {
        self.key("orders:attempts")
    }

    /// `sale:{ID}:checkouts` — hash: orderNumber → order record (JSON; `lua/prelude.lua`,
    /// `read_order`), for checkout sales only.
    pub fn checkouts(&self) -> Key {
        self.key("checkouts")
    }

    /// `sale:{ID}:expiries` — sorted set: held orderNumbers scored by their hold's expiry (ms).
    pub fn expiries(&self) -> Key {
        self.key("expiries")
    }

    /// `sale:{ID}:payments` — sorted set: payment event ids already applied (Stripe's), scored
    /// by when; kept four days, past Stripe's three days of retries.
    pub fn payments(&self) -> Key {
        self.key("payments")
    }

    /// `sale:{ID}:queue` — hash: userId → waiting-room ticket ('p<rankKey>' for a join before
    /// the start, else the number of the join after it; `lua/queue_join.lua`).
    pub fn queue(&self) -> Key {
        self.key("queue")
    }

    /// `sale:{ID}:prequeue` — sorted set, every score 0: '<rankKey>:<userId>' of each buyer who
    /// joined before the start, so ordered by the draw.
    pub fn prequeue(&self) -> Key {
        self.key("prequeue")
    }

    /// `sale:{ID}:room` — hash: the waiting room's settings, draw and counters (rate, admitMs,
    /// opensMs, seed, commitment, pre, seq, used; `lua/prelude.lua`, room_lib).
    pub fn room(&self) -> Key {
        self.key("room")
    }

    /// `sale:{ID}:gate` — string with a TTL of at most 100 ms: while it exists
    /// `lua/purchase.lua` sells nothing, because instances are answering new users `SOLD_OUT`
    /// without Redis (`lua/sold_out.lua` sets it). Never deleted with the sale: it also holds
    /// back a sale created again under the same id until the instances' copies have lapsed.
    pub fn gate(&self) -> Key {
        self.key("gate")
    }

    /// The keys of the checkout scripts, in their order: config, checkouts, expiries, orders.
    pub fn checkout(&self) -> Vec<Key> {
        vec![
            self.config(),
            self.checkouts(),
            self.expiries(),
            self.orders(),
        ]
    }

    /// `sale:{ID}:rl:*` — the pattern of every attempt counter of the sale.
    pub fn attempts_pattern(&self) -> String {
        format!("{}rl:*", self.prefix)
    }

    /// Every fixed key of the sale, in the order the admin scripts take them.
    pub fn all_fixed(&self) -> MultipleKeys {
        MultipleKeys::from(vec![
            self.config(),
            self.buyers(),
            self.orders(),
            self.refused(),
            self.restocks(),
            self.orders_dead(),
            self.orders_retry(),
            self.orders_attempts(),
            self.checkouts(),
            self.expiries(),
            self.payments(),
            self.queue(),
            self.prequeue(),
            self.room(),
        ])
    }

    /// `sale:{ID}:rl:<userId>` — the user's attempt counter, in the sale's slot.
    pub fn attempts(&self, user: &str) -> Key {
        let mut suffix = String::with_capacity(3 + user.len());
        suffix.push_str("rl:");
        suffix.push_str(user);
        self.key(&suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_hash_is_the_first_32_bits_of_sha1() {
        // SHA-1("abc") = a9993e36 4706816a … (FIPS 180-2, appendix A.1).
        assert_eq!(user_hash("abc"), 0xa999_3e36);
        let keys = SaleKeys::new(&SaleId::parse("s").unwrap());
        assert_eq!(
            keys.bucket_of(0xa999_3e36, 10).as_str(),
            Some(format!("sale:{{s}}:buyers:{}", 0xa999_3e36_u32 % 10).as_str())
        );
        assert_eq!(
            keys.bucket_of(0xa999_3e36, 1).as_str(),
            Some("sale:{s}:buyers:0")
        );
    }

    #[test]
    fn every_key_carries_the_sale_hash_tag() {
        let keys = SaleKeys::new(&SaleId::parse("spring").unwrap());
        let user = "a@b.c";
        assert_eq!(keys.config().as_str(), Some("sale:{spring}:config"));
        assert_eq!(keys.buyers().as_str(), Some("sale:{spring}:buyers"));
        assert_eq!(
            keys.buyer_bucket(7).as_str(),
            Some("sale:{spring}:buyers:7")
        );
        assert_eq!(keys.attempts(user).as_str(), Some("sale:{spring}:rl:a@b.c"));
        let mut every = keys.all_fixed().inner();
        every.extend([
            keys.attempts(user),
            keys.buyer_bucket(3),
            keys.legacy_stock(),
        ]);
        let slots: Vec<u16> = every
            .iter()
            .map(|key| fred::util::redis_keyslot(key.as_bytes()))
            .collect();
        assert_eq!(slots.len(), 17);
        assert!(slots.iter().all(|slot| *slot == slots[0]), "{slots:?}");
    }
}
