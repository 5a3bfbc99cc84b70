//! The waiting room's signatures: admissions and queue tickets, which any instance checks
//! with `WAITING_ROOM_SECRET` alone, without Redis.

use crate::{
    config::RoomSecret,
    domain::{hex, unhex},
};
use ring::hmac;

/// What a queue ticket says: who joined which sale, and where they are. (A pre-queue buyer's
/// rank key is not in it: shown before the start, it would tell them roughly where the draw
/// put them.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub user: String,
    /// 0 for a pre-queue buyer before the draw.
    pub position: i64,
}

/// Signs and checks admissions and tickets with `WAITING_ROOM_SECRET`.
#[derive(Clone)]
pub struct Signer {
    key: hmac::Key,
}

impl Signer {
    pub fn new(secret: &RoomSecret) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose()),
        }
    }

    /// The message a tag covers: its kind and fields, one per line (no field holds a newline:
    /// sale ids and userIds are validated, the rest are numbers and hex).
    fn message(parts: &[&str]) -> Vec<u8> {
        parts.join("\n").into_bytes()
    }

    fn tag(&self, parts: &[&str]) -> String {
        hex(hmac::sign(&self.key, &Self::message(parts)).as_ref())
    }

    /// Whether `tag` (hex) signs `parts`, compared in constant time.
    fn verify(&self, parts: &[&str], tag: &str) -> bool {
        unhex(tag).is_some_and(|tag| hmac::verify(&self.key, &Self::message(parts), &tag).is_ok())
    }

    /// An admission: `<expiresMs>.<tag>`, the tag over the sale, the buyer and the expiry. The
    /// same buyer at the same place always gets the same admission.
    pub fn admission(&self, sale: &str, user: &str, expires_ms: i64) -> String {
        let expires = expires_ms.to_string();
        let tag = self.tag(&["admission", sale, user, &expires]);
        format!("{expires}.{tag}")
    }

    /// The expiry of an admission signed for this sale and buyer; `None` when it is not one
    /// (missing parts, forged, or another buyer's or sale's). The expiry itself is judged by the
    /// purchase script, on Redis's clock.
    pub fn check_admission(&self, token: &str, sale: &str, user: &str) -> Option<i64> {
        let (expires, tag) = token.split_once('.')?;
        let expires_ms = expires.parse::<i64>().ok().filter(|ms| *ms > 0)?;
        self.verify(&["admission", sale, user, expires], tag)
            .then_some(expires_ms)
    }

    /// A queue ticket: `<position>~<userId>~<tag>` (`~` is in no field), the tag over the sale
    /// and the rest. It names the buyer of a queue stream, since a browser's
    /// `EventSource` cannot send a bearer token.
    pub fn ticket(&self, sale: &str, ticket: &Ticket) -> String {
        let position = ticket.position.to_string();
        let tag = self.tag(&["ticket", sale, &ticket.user, &position]);
        format!("{position}~{}~{tag}", ticket.user)
    }

    /// The ticket this text is, if this service signed it for this sale.
    pub fn check_ticket(&self, text: &str, sale: &str) -> Option<Ticket> {
        let mut parts = text.split('~');
        let (position, user, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let value = position.parse::<i64>().ok().filter(|p| *p >= 0)?;
        self.verify(&["ticket", sale, user, position], tag)
            .then(|| Ticket {
                user: user.to_owned(),
                position: value,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn signer(secret: &str) -> Signer {
        Signer::new(&RoomSecret::for_tests(SecretString::from(secret)))
    }

    #[test]
    fn admissions_bind_sale_buyer_and_expiry() {
        let signer = signer(&"k".repeat(32));
        let token = signer.admission("spring", "alice", 1_000);
        assert_eq!(
            signer.check_admission(&token, "spring", "alice"),
            Some(1_000)
        );
        assert_eq!(signer.check_admission(&token, "spring", "bob"), None);
        assert_eq!(signer.check_admission(&token, "autumn", "alice"), None);
        let later = token.replacen("1000", "9000", 1);
        assert_eq!(signer.check_admission(&later, "spring", "alice"), None);
        let other = signer_of_other_secret().admission("spring", "alice", 1_000);
        assert_eq!(signer.check_admission(&other, "spring", "alice"), None);
        for junk in ["", ".", "1000", "1000.", "x.abcd", "-5.00", "1000.zz"] {
            assert_eq!(
                signer.check_admission(junk, "spring", "alice"),
                None,
                "{junk}"
            );
        }
    }

    fn signer_of_other_secret() -> Signer {
        signer(&"j".repeat(32))
    }

    #[test]
    fn tickets_round_trip_and_refuse_changes() {
        let signer = signer(&"k".repeat(32));
        let ticket = Ticket {
            user: "a.b@c".into(),
            position: 0,
        };
        let text = signer.ticket("spring", &ticket);
        assert_eq!(signer.check_ticket(&text, "spring"), Some(ticket.clone()));
        assert_eq!(signer.check_ticket(&text, "autumn"), None);
        assert_eq!(
            signer.check_ticket(&text.replacen('0', "1", 1), "spring"),
            None
        );
        assert_eq!(signer.check_ticket(&format!("{text}~"), "spring"), None);
    }
}
