//! The JWKS cache: keys by `kid`, fetched at start-up, refreshed in the background and on an
//! unknown `kid` (at most every [`MIN_REFETCH`]); an outage keeps the last good keys.

use super::AuthError;
use jsonwebtoken::{
    jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm},
    Algorithm, DecodingKey,
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

/// An unknown `kid` fetches the set again at most this often, so forged kids cannot hammer the
/// identity provider.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

type KeyMap = HashMap<String, (DecodingKey, Algorithm)>;

#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    refresh_every: Duration,
    http: reqwest::Client,
    keys: RwLock<Arc<KeyMap>>,
    last_fetch: Mutex<Instant>,
}

impl JwksCache {
    /// Fetches the set once; start-up fails when it cannot.
    pub async fn fetch(url: String, refresh_every: Duration) -> Result<Self, AuthError> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            // The keys come from the URL set, never from wherever it points (an https → http
            // redirect would let anyone on the path serve keys).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::Jwks {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let keys = download(&http, &url).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                url,
                refresh_every,
                http,
                keys: RwLock::new(Arc::new(keys)),
                last_fetch: Mutex::new(Instant::now()),
            }),
        })
    }

    /// The key for a token's `kid` (a set of one key may be used without a `kid`).
    pub async fn key_for(&self, kid: Option<&str>) -> Result<(DecodingKey, Algorithm), AuthError> {
        if let Some(found) = self.lookup(kid) {
            return Ok(found);
        }
        // An unknown kid may be a key the provider just rotated in: fetch again, rate-limited.
        if self.claim_refetch() {
            self.refresh().await;
        }
        self.lookup(kid)
            .ok_or_else(|| AuthError::Invalid(format!("no key for kid {kid:?}")))
    }

    fn lookup(&self, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
        let keys = self.inner.keys.read().ok()?.clone();
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    /// Whether this caller may fetch now (the last fetch is older than [`MIN_REFETCH`]).
    fn claim_refetch(&self) -> bool {
        let Ok(mut last) = self.inner.last_fetch.lock() else {
            return false;
        };
        if last.elapsed() < MIN_REFETCH {
            return false;
        }
        *last = Instant::now();
        true
    }

    /// Fetches the set; on failure the last good keys stay.
    async fn refresh(&self) {
        match download(&self.inner.http, &self.inner.url).await {
            Ok(keys) => {
                if let Ok(mut current) = self.inner.keys.write() {
                    *current = Arc::new(keys);
                }
            }
            Err(err) => tracing::warn!(error = %err, "JWKS refresh failed; keeping the last keys"),
        }
    }

    pub async fn refresh_forever(self) {
        let mut tick = tokio::time::interval(self.inner.refresh_every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Ok(mut last) = self.inner.last_fetch.lock() {
                *last = Instant::now();
            }
            self.refresh().await;
        }
    }
}

/// A key set is a few kilobytes; this bounds what a broken or hostile endpoint can make us hold.
const MAX_JWKS_BYTES: usize = 256 * 1024;

async fn download(http: &reqwest::Client, url: &str) -> Result<KeyMap, AuthError> {
    let error = |reason: String| AuthError::Jwks {
        url: url.to_owned(),
        reason,
    };
    let mut response = http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| error(e.to_string()))?;
    if response.status().is_redirection() {
        return Err(error(format!(
            "answered {} (a redirect, not followed): set AUTH_JWKS_URL to the final URL",
            response.status()
        )));
    }
    // Read at most MAX_JWKS_BYTES, whatever Content-Length says (or does not).
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error(e.to_string()))? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(error(format!(
                "the key set is larger than {MAX_JWKS_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let set: JwkSet = serde_json::from_slice(&body).map_err(|e| error(e.to_string()))?;
    let keys: KeyMap = set
        .keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            Some((kid, (DecodingKey::from_jwk(jwk).ok()?, algorithm(jwk)?)))
        })
        .collect();
    if keys.is_empty() {
        return Err(error("the set holds no usable public key".to_owned()));
    }
    Ok(keys)
}

/// The one algorithm a key may verify: its `alg` when it names an asymmetric one, else the
/// usual one for its type. Symmetric keys in a JWKS are ignored.
fn algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let declared = match jwk.common.key_algorithm {
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
        Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
        Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::ES384) => Some(Algorithm::ES384),
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        Some(_) => return None,
        None => None,
    };
    let usual = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => return None,
    };
    Some(declared.unwrap_or(usual))
}
