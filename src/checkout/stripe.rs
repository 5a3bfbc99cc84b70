//! Stripe's signed webhook events, as Stripe documents them
//! (<https://docs.stripe.com/webhooks#verify-manually>): the `Stripe-Signature` header
//! `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` (several `v1` allowed, other
//! schemes ignored), checked over the raw body before it is parsed, within a tolerance, in
//! constant time; then the Checkout Session events that confirm or cancel an order.

use crate::domain::{hex, SaleId};
use serde::Deserialize;

/// How far a signature's timestamp may be from now: Stripe's own libraries' default.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why an event was refused before anything was read from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header, or no t= and v1= in it")]
    Malformed,
    #[error("the signature's timestamp is more than {TOLERANCE_SECONDS} s from now")]
    Stale,
    #[error("no v1 signature matches")]
    Mismatch,
}

/// Checks `header` over the raw `body` with the endpoint's signing secret at `now` (Unix s).
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let expected = hex(context.sign().as_ref());
    // Every candidate is compared in full, so the time taken says nothing about which matched.
    let matched = signatures.iter().fold(false, |found, candidate| {
        constant_time_eq::constant_time_eq(candidate.as_bytes(), expected.as_bytes()) | found
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// An event, as much of it as flashsale reads.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: Session,
}

/// A Checkout Session, as much of it as flashsale reads.
#[derive(Debug, Default, Deserialize)]
pub struct Session {
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default)]
    pub payment_status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub sale_id: Option<String>,
    pub order_number: Option<String>,
}

/// What an event asks of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Confirm,
    Cancel,
}

impl Event {
    /// What this event asks, or `None` for an event flashsale does not act on (answered 200,
    /// nothing written: Stripe retries anything else). A completed session that is not paid
    /// yet (a delayed payment method) waits for `async_payment_succeeded` or `_failed`.
    pub fn intent(&self) -> Option<Intent> {
        let paid = matches!(
            self.data.object.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        );
        match self.kind.as_str() {
            "checkout.session.completed" if paid => Some(Intent::Confirm),
            "checkout.session.async_payment_succeeded" => Some(Intent::Confirm),
            "checkout.session.expired" | "checkout.session.async_payment_failed" => {
                Some(Intent::Cancel)
            }
            _ => None,
        }
    }

    /// The order the session pays for: `metadata.saleId` and `metadata.orderNumber`, else
    /// `client_reference_id` as `<saleId>:<orderNumber>`.
    pub fn order(&self) -> Option<(SaleId, u64)> {
        let session = &self.data.object;
        let (sale, order) = match &session.metadata {
            Some(Metadata {
                sale_id: Some(sale),
                order_number: Some(order),
            }) => (sale.as_str(), order.as_str()),
            _ => session.client_reference_id.as_deref()?.split_once(':')?,
        };
        let order = order.parse::<u64>().ok().filter(|n| *n >= 1)?;
        Some((SaleId::parse(sale).ok()?, order))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let mut payload = t.to_string().into_bytes();
        payload.push(b'.');
        payload.extend_from_slice(body);
        hex(ring::hmac::sign(&key, &payload).as_ref())
    }

    #[test]
    fn a_signature_is_checked_as_stripe_documents() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign("whsec_test", 1_000, body);
        let header = format!("t=1000,v1={good}");
        assert_eq!(verify("whsec_test", &header, body, 1_100), Ok(()));
        // Several v1 (a rolled secret), and a v0 scheme that is ignored.
        let rolled = format!("t=1000,v1={},v1={good},v0=abc", "0".repeat(64));
        assert_eq!(verify("whsec_test", &rolled, body, 1_000), Ok(()));
        assert_eq!(
            verify("whsec_other", &header, body, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_test", &header, br#"{"id":"evt_2"}"#, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_test", &header, body, 1_301),
            Err(SignatureError::Stale)
        );
        for bad in ["", "t=1000", &format!("v1={good}"), "t=x,v1=00"] {
            assert_eq!(
                verify("whsec_test", bad, body, 1_000),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_order_comes_from_metadata_or_the_client_reference() {
        let event = |object: &str| -> Event {
            serde_json::from_str(&format!(
                r#"{{"id":"evt","type":"checkout.session.completed","data":{{"object":{object}}}}}"#
            ))
            .unwrap()
        };
        let by_metadata =
            event(r#"{"metadata":{"saleId":"drop","orderNumber":"7"},"payment_status":"paid"}"#);
        assert_eq!(
            by_metadata.order().map(|(s, n)| (s.to_string(), n)),
            Some(("drop".into(), 7))
        );
        assert_eq!(by_metadata.intent(), Some(Intent::Confirm));
        let by_reference = event(r#"{"client_reference_id":"drop:9","payment_status":"unpaid"}"#);
        assert_eq!(by_reference.order().map(|(_, n)| n), Some(9));
        assert_eq!(by_reference.intent(), None);
        assert!(event(r#"{"client_reference_id":"drop:0"}"#)
            .order()
            .is_none());
        assert!(
            event(r#"{"metadata":{"saleId":"bad id!","orderNumber":"1"}}"#)
                .order()
                .is_none()
        );
    }
}
