//! One delivery: the signed POST of an order's event, its retries with back-off, and what is
//! recorded in Redis after each attempt.

use super::Shared;
use crate::{
    config::WebhookSettings,
    domain::{rfc3339_ms, SaleId},
    store::{webhooks::FailedAttempt, OrderEntry, PendingOrder, StoreError},
};
use rand::Rng;
use secrecy::ExposeSecret;
use serde::Serialize;
use std::{fmt::Write as _, sync::Arc, time::Duration};
use tokio::sync::OwnedSemaphorePermit;

/// The longest back-off between two attempts, whatever the base.
const BACKOFF_MAX: Duration = Duration::from_secs(600);

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`: the value of `Flashsale-Signature`.
pub fn signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(unix_seconds.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let mut value = format!("t={unix_seconds},v1=");
    for byte in tag.as_ref() {
        let _ = write!(value, "{byte:02x}");
    }
    value
}

/// The JSON body of one delivery. It is the same on every attempt; receivers dedupe on
/// `eventId` (also in the `Flashsale-Event-Id` header).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderEvent {
    /// The order's id in `sale:{ID}:orders`; the same across re-deliveries and re-drives.
    pub event_id: String,
    /// `order.created` (a sale without holds), or a checkout's `order.reserved`,
    /// `order.confirmed`, `order.released` or `order.refund_required` (README, Checkout).
    #[serde(rename = "type")]
    pub kind: String,
    pub sale_id: String,
    pub user_id: String,
    pub order_number: i64,
    /// Units in the order.
    pub quantity: i64,
    /// When the order was placed, by Redis's clock (RFC 3339, ms).
    pub purchase_time: String,
    /// When this event happened, by Redis's clock (RFC 3339, ms).
    pub event_time: String,
    /// `expired` or `cancelled` (released); `resold` or `reordered` (refund required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The `X-Request-Id` of the request that caused the event (empty for the sweeper).
    pub request_id: String,
}

impl OrderEvent {
    fn new(order: &OrderEntry) -> Self {
        Self {
            event_id: order.event_id.clone(),
            kind: order.kind.clone(),
            sale_id: order.sale_id.clone(),
            user_id: order.user_id.clone(),
            order_number: order.order_number,
            quantity: order.quantity,
            purchase_time: rfc3339_ms(order.purchase_ms),
            event_time: rfc3339_ms(order.event_ms),
            reason: order.reason.clone(),
            request_id: order.request_id.clone(),
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("receiver answered {0}")]
    Status(u16),
    #[error("no answer within ORDER_WEBHOOK_TIMEOUT_MS")]
    Timeout,
    #[error("{0}")]
    Request(String),
}

impl AttemptError {
    fn metric(&self) -> &'static str {
        match self {
            AttemptError::Status(_) => "status",
            AttemptError::Timeout => "timeout",
            AttemptError::Request(_) => "error",
        }
    }
}

/// Delivers one order until a 2xx, its last attempt, or the loss of its claim.
pub(super) async fn deliver(
    shared: Arc<Shared>,
    sale: SaleId,
    order: PendingOrder,
    _slot: OwnedSemaphorePermit,
) {
    let event = OrderEvent::new(&order.order);
    let body = match serde_json::to_vec(&event) {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(sale_id = %sale, event_id = %event.event_id, error = %err, "webhooks: cannot encode order");
            return;
        }
    };
    let mut failed = order.attempts;
    loop {
        let result = post(&shared, &body, &event.event_id, failed + 1).await;
        let error = match result {
            Ok(()) => {
                crate::metrics::webhook_attempt("ok");
                crate::metrics::webhook_delivery("delivered");
                if let Err(err) = shared.store.webhook_done(&sale, &order).await {
                    // Delivered but not acknowledged: it is claimed and sent again later (at
                    // least once), and the receiver dedupes it by its event id.
                    tracing::warn!(sale_id = %sale, event_id = %event.event_id, error = %err, "webhooks: delivered but not acknowledged");
                }
                return;
            }
            Err(error) => error,
        };
        crate::metrics::webhook_attempt(error.metric());
        let recorded = shared
            .store
            .webhook_failed(
                &sale,
                &shared.consumer,
                &order,
                shared.settings.max_attempts,
                &error.to_string(),
            )
            .await;
        match recorded {
            Ok(FailedAttempt::Counted(attempts)) => {
                tracing::info!(sale_id = %sale, event_id = %event.event_id, attempts, error = %error, "webhooks: attempt failed; retrying");
                failed = attempts;
                tokio::time::sleep(backoff(&shared.settings, attempts)).await;
            }
            Ok(FailedAttempt::Dead) => {
                crate::metrics::webhook_delivery("dead");
                tracing::warn!(sale_id = %sale, event_id = %event.event_id, error = %error, "webhooks: order moved to the dead-letter stream after its last attempt");
                return;
            }
            Ok(FailedAttempt::Lost) => return,
            Err(err) => {
                // The order stays pending with this consumer and is claimed again when idle.
                log_store_error(&sale, &err);
                return;
            }
        }
    }
}

fn log_store_error(sale: &SaleId, err: &StoreError) {
    tracing::warn!(sale_id = %sale, error = %err, "webhooks: cannot record an attempt; the order will be claimed again");
}

/// One signed POST.
async fn post(
    shared: &Shared,
    body: &[u8],
    event_id: &str,
    attempt: u32,
) -> Result<(), AttemptError> {
    let now = chrono::Utc::now().timestamp();
    let signed = signature(shared.settings.secret.expose_secret(), now, body);
    let response = shared
        .http
        .post(shared.settings.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Flashsale-Event-Id", event_id)
        .header("Flashsale-Signature", signed)
        .header("Flashsale-Attempt", attempt)
        .body(body.to_vec())
        .send()
        .await;
    match response {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(AttemptError::Status(response.status().as_u16())),
        Err(err) if err.is_timeout() => Err(AttemptError::Timeout),
        // Without the URL (it may carry a token of the receiver's), with the causes ("error
        // sending request" alone does not say that the connection was refused).
        Err(err) => {
            let err = err.without_url();
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                let _ = write!(message, ": {cause}");
                source = cause.source();
            }
            Err(AttemptError::Request(message))
        }
    }
}

/// The wait after the `failures`-th failure: the base doubled each time, at most
/// `BACKOFF_MAX`, and short enough that the order is not claimed away meanwhile; a random
/// half of it is dropped (jitter) so retries of many orders spread out.
fn backoff(settings: &WebhookSettings, failures: u32) -> Duration {
    let ceiling = BACKOFF_MAX.min(settings.claim_idle.saturating_sub(settings.timeout) / 2);
    let full = settings
        .backoff
        .saturating_mul(1 << failures.saturating_sub(1).min(20))
        .min(ceiling);
    full.mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn settings(backoff_ms: u64, claim_idle_ms: u64) -> WebhookSettings {
        WebhookSettings {
            url: reqwest::Url::parse("http://127.0.0.1:9/").unwrap(),
            secret: SecretString::from("0123456789abcdef"),
            timeout: Duration::from_millis(1_000),
            max_attempts: 5,
            claim_idle: Duration::from_millis(claim_idle_ms),
            backoff: Duration::from_millis(backoff_ms),
            concurrency: 4,
        }
    }

    #[test]
    fn signature_is_hmac_sha256_of_time_dot_body() {
        // Reference value: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_below_the_claim() {
        let settings = settings(100, 60_000);
        for failures in 1..=6 {
            let full = Duration::from_millis(100 * (1 << (failures - 1)));
            let wait = backoff(&settings, failures);
            assert!(wait >= full / 2 && wait <= full, "{failures}: {wait:?}");
        }
        let capped = backoff(&settings, 40);
        assert!(capped <= Duration::from_millis(29_500), "{capped:?}");
    }
}
