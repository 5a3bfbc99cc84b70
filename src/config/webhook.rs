//! `ORDER_WEBHOOK_*`: delivering every order to the shop's URL.

use super::{within, ConfigError, Vars};
use secrecy::{ExposeSecret, SecretString};
use std::{fmt, time::Duration};

/// Order webhooks (`ORDER_WEBHOOK_*`, README "Orders to fulfilment").
#[derive(Clone)]
pub struct WebhookSettings {
    pub url: reqwest::Url,
    /// The HMAC-SHA256 key of `Flashsale-Signature`.
    pub secret: SecretString,
    /// One POST's whole time, connecting included.
    pub timeout: Duration,
    /// Attempts before an order moves to the dead-letter stream.
    pub max_attempts: u32,
    /// How long an order stays pending with a consumer before another instance claims it.
    pub claim_idle: Duration,
    /// The first back-off after a failed attempt; it doubles (with jitter) on each failure.
    pub backoff: Duration,
    /// Deliveries in flight per instance.
    pub concurrency: usize,
}

impl WebhookSettings {
    /// The URL as logs and `Debug` show it: a password in its userinfo and the value of every
    /// query parameter (receivers often take a token there) replaced by `***`.
    pub fn url_for_logs(&self) -> String {
        let mut url = self.url.clone();
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        if url.query().is_some() {
            let names: Vec<String> = url
                .query_pairs()
                .map(|(name, _)| name.into_owned())
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(names.iter().map(|name| (name.as_str(), "***")));
        }
        url.to_string()
    }
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url_for_logs())
            .field("secret", &"***")
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("claim_idle", &self.claim_idle)
            .field("backoff", &self.backoff)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

pub(super) fn read(vars: &Vars) -> Result<Option<WebhookSettings>, ConfigError> {
    let Some(url) = &vars.order_webhook_url else {
        if vars.order_webhook_secret.is_some() {
            return Err(ConfigError::var(
                "ORDER_WEBHOOK_SECRET",
                "is set but ORDER_WEBHOOK_URL is not",
            ));
        }
        return Ok(None);
    };
    let url = reqwest::Url::parse(url.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| {
            ConfigError::var(
                "ORDER_WEBHOOK_URL",
                format!("not an http:// or https:// URL: {:?}", url.trim()),
            )
        })?;
    let secret = match &vars.order_webhook_secret {
        None => {
            return Err(ConfigError::var(
                "ORDER_WEBHOOK_SECRET",
                "must be set with ORDER_WEBHOOK_URL (receivers check the signature with it)",
            ))
        }
        // A short key makes the signature guessable offline from one delivery.
        Some(secret) if secret.expose_secret().len() < 16 => {
            return Err(ConfigError::var(
                "ORDER_WEBHOOK_SECRET",
                "must be at least 16 characters",
            ))
        }
        Some(secret) => secret.clone(),
    };
    let timeout_ms = within(
        "ORDER_WEBHOOK_TIMEOUT_MS",
        vars.order_webhook_timeout_ms,
        100..=60_000,
    )?;
    // A delivery still running when its order is claimed would be sent twice; the claim waits
    // for at least two whole attempts.
    let claim_idle_ms = within(
        "ORDER_WEBHOOK_CLAIM_IDLE_MS",
        vars.order_webhook_claim_idle_ms,
        (2 * timeout_ms).max(1_000)..=86_400_000,
    )?;
    Ok(Some(WebhookSettings {
        url,
        secret,
        timeout: Duration::from_millis(timeout_ms),
        max_attempts: within(
            "ORDER_WEBHOOK_MAX_ATTEMPTS",
            vars.order_webhook_max_attempts,
            1..=100,
        )?,
        claim_idle: Duration::from_millis(claim_idle_ms),
        backoff: Duration::from_millis(within(
            "ORDER_WEBHOOK_BACKOFF_MS",
            vars.order_webhook_backoff_ms,
            10..=600_000,
        )?),
        concurrency: within(
            "ORDER_WEBHOOK_CONCURRENCY",
            vars.order_webhook_concurrency,
            1..=1_024,
        )?,
    }))
}
