//! The waiting room's rules (README, Waiting room): its settings, one read of its counters, and
//! where a buyer at a position stands at a moment on Redis's clock, and the draw that orders the
//! pre-queue. No Redis, no HTTP.

use super::{hex, unhex};
use ring::{digest, hmac};

/// A sale's draw: 32 random bytes, kept secret in the sale's config until the start, and the
/// SHA-256 of those bytes, published from the sale's creation (README, Waiting room: the draw).
pub struct Draw {
    /// Hex of the 32 bytes.
    pub seed: String,
    /// Hex of SHA-256(seed bytes).
    pub commitment: String,
}

impl Draw {
    pub fn fresh() -> Self {
        let mut bytes = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut bytes);
        Self {
            seed: hex(&bytes),
            commitment: hex(digest::digest(&digest::SHA256, &bytes).as_ref()),
        }
    }
}

/// A pre-queue buyer's rank key: hex of HMAC-SHA256 keyed with the seed's bytes over the
/// userId. The pre-queue's order is the order of these keys; anyone with the published seed
/// and the list of pre-queue buyers recomputes it. `None` for a seed that is not hex.
pub fn rank_key(seed: &str, user: &str) -> Option<String> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &unhex(seed)?);
    Some(hex(hmac::sign(&key, user.as_bytes()).as_ref()))
}

/// A sale's waiting room as the operator sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingRoom {
    admit_per_second: u32,
    admission_seconds: u32,
    /// When joining opens (Unix ms); joins before the sale's start form the pre-queue.
    opens_ms: i64,
}

impl WaitingRoom {
    pub const MAX_ADMIT_PER_SECOND: u64 = 100_000;
    pub const MIN_ADMISSION_SECONDS: u64 = 10;
    pub const MAX_ADMISSION_SECONDS: u64 = 3_600;
    /// Joining opens this long before the start unless the operator says when.
    pub const DEFAULT_OPENS_BEFORE_MS: i64 = 15 * 60 * 1000;
    pub const DEFAULT_ADMISSION_SECONDS: u64 = 120;
    pub const RATE_RULE: &'static str = "must be 1 to 100000";
    pub const ADMISSION_RULE: &'static str = "must be 10 to 3600";
    pub const OPENS_RULE: &'static str = "must not be after the sale's start";

    /// A room from raw values, each checked by its own rule (the error names the field).
    /// `opens_ms` must not be after `start_ms`.
    pub fn new(
        admit_per_second: u64,
        admission_seconds: u64,
        opens_ms: i64,
        start_ms: i64,
    ) -> Result<Self, (&'static str, &'static str)> {
        if !(1..=Self::MAX_ADMIT_PER_SECOND).contains(&admit_per_second) {
            return Err(("admitPerSecond", Self::RATE_RULE));
        }
        if !(Self::MIN_ADMISSION_SECONDS..=Self::MAX_ADMISSION_SECONDS).contains(&admission_seconds)
        {
            return Err(("admissionSeconds", Self::ADMISSION_RULE));
        }
        if opens_ms > start_ms {
            return Err(("opensAt", Self::OPENS_RULE));
        }
        Ok(Self {
            admit_per_second: admit_per_second as u32,
            admission_seconds: admission_seconds as u32,
            opens_ms,
        })
    }

    pub fn admit_per_second(&self) -> u32 {
        self.admit_per_second
    }

    pub fn admission_ms(&self) -> i64 {
        i64::from(self.admission_seconds) * 1000
    }

    pub fn opens_ms(&self) -> i64 {
        self.opens_ms
    }
}

/// One read of a room: its settings, its draw and its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSnapshot {
    pub admit_per_second: i64,
    pub admission_ms: i64,
    pub opens_ms: i64,
    /// SHA-256 of the draw's seed (hex), published from the sale's creation.
    pub draw_commitment: String,
    /// The seed (hex), published once the sale has started; `None` before.
    pub draw_seed: Option<String>,
    /// Buyers who joined before the start (the pre-queue), and after it.
    pub pre_queued: i64,
    pub joined_after: i64,
    /// Orders placed with an admission.
    pub admissions_used: i64,
}

impl RoomSnapshot {
    /// Everyone who joined.
    pub fn queued(&self) -> i64 {
        self.pre_queued + self.joined_after
    }

    /// How many positions the room has let in by `now_ms`: `admitPerSecond` at the start, and
    /// `admitPerSecond` more each second after it, on Redis's clock (never more than joined).
    /// Computed, never stored, so no instance has to be alive for admission to advance.
    pub fn admitted_at(&self, start_ms: i64, now_ms: i64) -> i64 {
        if now_ms < start_ms {
            return 0;
        }
        let rate = self.admit_per_second.max(1);
        let grown = (now_ms - start_ms).saturating_mul(rate) / 1000;
        rate.saturating_add(grown).min(self.queued())
    }

    /// When position `position` is (or was) let in: the first moment `admitted_at` reaches it.
    pub fn admitted_from(&self, start_ms: i64, position: i64) -> i64 {
        let rate = self.admit_per_second.max(1);
        if position <= rate {
            return start_ms;
        }
        // The least t with rate + floor(t * rate / 1000) >= position.
        let needed = (position - rate).saturating_mul(1000);
        start_ms + (needed + rate - 1) / rate
    }
}

/// Where a buyer stands in the room at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Joined before the start: the place is drawn at the start.
    PreQueue,
    /// In line; `unlikely` when everyone ahead buying would leave nothing.
    Waiting {
        position: i64,
        ahead: i64,
        wait_seconds: i64,
        unlikely: bool,
    },
    /// Let in: may buy until `expires_ms` (Redis's clock) with an admission.
    Admitted {
        position: i64,
        expires_ms: i64,
    },
    /// Was let in, and the admission lapsed.
    Expired {
        position: i64,
    },
    /// Nothing is left to buy (no stock, nothing held): the room has stopped admitting.
    SoldOut,
    Ended,
}

impl Standing {
    pub fn as_str(&self) -> &'static str {
        match self {
            Standing::PreQueue => "pre_queue",
            Standing::Waiting {
                unlikely: false, ..
            } => "waiting",
            Standing::Waiting { unlikely: true, .. } => "unlikely",
            Standing::Admitted { .. } => "admitted",
            Standing::Expired { .. } => "expired",
            Standing::SoldOut => "sold_out",
            Standing::Ended => "ended",
        }
    }

    /// Where the buyer at `position` (0: not drawn yet) stands at `now_ms`, given the sale's
    /// window, stock and room. One function for the join answer, polling and every stream.
    pub fn at(
        position: i64,
        window: (i64, i64),
        stock: (i64, i64),
        room: &RoomSnapshot,
        now_ms: i64,
    ) -> Self {
        let (start_ms, end_ms) = window;
        let (remaining, held) = stock;
        if now_ms >= end_ms {
            return Standing::Ended;
        }
        if now_ms < start_ms || position <= 0 {
            return Standing::PreQueue;
        }
        if remaining <= 0 && held <= 0 {
            return Standing::SoldOut;
        }
        let admitted = room.admitted_at(start_ms, now_ms);
        if position <= admitted {
            let expires_ms = room.admitted_from(start_ms, position) + room.admission_ms;
            if now_ms >= expires_ms {
                return Standing::Expired { position };
            }
            return Standing::Admitted {
                position,
                expires_ms: expires_ms.min(end_ms),
            };
        }
        let ahead = position - 1 - admitted;
        Standing::Waiting {
            position,
            ahead,
            // Whole seconds until admitted_at reaches the position.
            wait_seconds: ((room.admitted_from(start_ms, position) - now_ms).max(0) + 999) / 1000,
            // Units that could still go to someone: those left and those held. Everyone ahead
            // of this buyer who has not bought yet may take one first.
            unlikely: position - 1 - room.admissions_used >= remaining + held,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draw_commits_to_its_seed() {
        let draw = Draw::fresh();
        assert_eq!(draw.seed.len(), 64);
        let bytes = unhex(&draw.seed).unwrap();
        assert_eq!(
            draw.commitment,
            hex(digest::digest(&digest::SHA256, &bytes).as_ref())
        );
        assert_ne!(Draw::fresh().seed, draw.seed);
        // HMAC-SHA256 of the RFC 4231 test case 2, with the key given as hex.
        assert_eq!(
            rank_key(&hex(b"Jefe"), "what do ya want for nothing?").unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(rank_key("not hex", "a"), None);
    }

    fn room(rate: i64, pre: i64, after: i64, used: i64) -> RoomSnapshot {
        RoomSnapshot {
            admit_per_second: rate,
            admission_ms: 60_000,
            opens_ms: 0,
            draw_commitment: String::new(),
            draw_seed: None,
            pre_queued: pre,
            joined_after: after,
            admissions_used: used,
        }
    }

    #[test]
    fn admission_grows_at_the_rate_from_the_start() {
        let room = room(10, 0, 1_000, 0);
        assert_eq!(room.admitted_at(1_000, 999), 0);
        assert_eq!(room.admitted_at(1_000, 1_000), 10);
        assert_eq!(room.admitted_at(1_000, 1_099), 10);
        assert_eq!(room.admitted_at(1_000, 1_100), 11);
        assert_eq!(room.admitted_at(1_000, 11_000), 110);
        assert_eq!(
            room.admitted_at(1_000, 1_000_000),
            1_000,
            "never past who joined"
        );
        for position in 1..=200 {
            let from = room.admitted_from(1_000, position);
            assert!(room.admitted_at(1_000, from) >= position, "{position}");
            assert!(
                from == 1_000 || room.admitted_at(1_000, from - 1) < position,
                "{position}: {from} is the first moment"
            );
        }
    }

    #[test]
    fn a_buyer_waits_is_admitted_then_lapses() {
        let room = room(1, 0, 10, 0);
        let at = |position, now| Standing::at(position, (0, 100_000), (5, 0), &room, now);
        assert_eq!(at(1, -1), Standing::PreQueue);
        assert_eq!(
            at(1, 0),
            Standing::Admitted {
                position: 1,
                expires_ms: 60_000
            }
        );
        assert_eq!(
            at(3, 0),
            Standing::Waiting {
                position: 3,
                ahead: 1,
                wait_seconds: 2,
                unlikely: false
            }
        );
        assert_eq!(at(1, 60_000), Standing::Expired { position: 1 });
        assert_eq!(at(1, 100_000), Standing::Ended);
        // Five units, nobody bought yet: the sixth in line could only buy if someone ahead
        // does not.
        assert!(matches!(at(6, 0), Standing::Waiting { unlikely: true, .. }));
        assert_eq!(
            Standing::at(3, (0, 100_000), (0, 0), &room, 0),
            Standing::SoldOut
        );
        // Units in unpaid holds may come back: not sold out yet.
        assert!(matches!(
            Standing::at(3, (0, 100_000), (0, 1), &room, 0),
            Standing::Waiting { .. }
        ));
    }

    #[test]
    fn room_rules_name_their_field() {
        assert!(WaitingRoom::new(1, 10, 0, 0).is_ok());
        for (rate, seconds, opens, field) in [
            (0, 60, 0, "admitPerSecond"),
            (100_001, 60, 0, "admitPerSecond"),
            (5, 9, 0, "admissionSeconds"),
            (5, 3_601, 0, "admissionSeconds"),
            (5, 60, 1, "opensAt"),
        ] {
            assert_eq!(
                WaitingRoom::new(rate, seconds, opens, 0).map_err(|e| e.0),
                Err(field)
            );
        }
    }
}
