//! Trusted buyers: verification of the shop's JWT (HS256 secret, a PEM public key, or a JWKS
//! fetched and cached), exposed to handlers as one function that names the buyer.
//!
//! Off by default. When on, the buyer is the token's `sub` claim (or `AUTH_USER_CLAIM`), never
//! what the request body says.

mod jwks;

use crate::domain::UserId;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use jwks::JwksCache;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::{fmt, sync::Arc, time::Duration};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// Where the verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// `AUTH_JWT_SECRET`: HS256.
    Secret(SecretString),
    /// `AUTH_JWT_PUBLIC_KEY`: a PEM public key (RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA).
    PublicKey(String),
    /// `AUTH_JWKS_URL`: the identity provider's key set, fetched at start-up and cached.
    Jwks(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Secret(_) => f.write_str("Secret(***)"),
            KeySource::PublicKey(_) => f.write_str("PublicKey(PEM)"),
            KeySource::Jwks(url) => write!(f, "Jwks({url})"),
        }
    }
}

/// `AUTH_*`: how tokens are checked.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub keys: KeySource,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The claim that names the buyer (`sub` by default).
    pub user_claim: String,
    /// How often the JWKS is fetched again in the background.
    pub jwks_refresh: Duration,
}

impl AuthSettings {
    /// `flashsale token USER`: a token this configuration accepts for `user`, valid for `ttl`
    /// (HS256 with `AUTH_JWT_SECRET`, with the configured issuer and audience). For local
    /// development only; with a public key or a JWKS only the identity provider can sign.
    pub fn dev_token(&self, user: &UserId, ttl: Duration) -> Result<String, String> {
        let KeySource::Secret(secret) = &self.keys else {
            return Err(
                "only AUTH_JWT_SECRET can mint tokens here (a public key or a JWKS \
                        belongs to the identity provider, which signs them)"
                    .into(),
            );
        };
        let mut claims = Map::new();
        claims.insert(self.user_claim.clone(), Value::from(user.as_str()));
        let now = chrono::Utc::now().timestamp();
        claims.insert("iat".into(), Value::from(now));
        claims.insert("exp".into(), Value::from(now + ttl.as_secs() as i64));
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), Value::from(issuer.as_str()));
        }
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), Value::from(audience.as_str()));
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.expose_secret().as_bytes()),
        )
        .map_err(|err| err.to_string())
    }
}

/// Why a token was refused. Logged at INFO (never the token); the client sees only 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot fetch the JWKS at {url}: {reason}")]
    Jwks { url: String, reason: String },
}

/// Checks tokens. Clones share the key cache.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<VerifierInner>,
}

struct VerifierInner {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
    user_claim: String,
}

enum Keys {
    /// One key and the one algorithm it may verify.
    Static(DecodingKey, Algorithm),
    Jwks(JwksCache),
}

impl Verifier {
    /// Builds the verifier; with a JWKS URL the key set is fetched now, before serving.
    pub async fn new(settings: &AuthSettings) -> Result<Self, AuthError> {
        let keys = match &settings.keys {
            KeySource::Secret(secret) => Keys::Static(
                DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                Algorithm::HS256,
            ),
            KeySource::PublicKey(pem) => {
                let (key, algorithm) = public_key(pem).map_err(AuthError::Invalid)?;
                Keys::Static(key, algorithm)
            }
            KeySource::Jwks(url) => {
                Keys::Jwks(JwksCache::fetch(url.clone(), settings.jwks_refresh).await?)
            }
        };
        Ok(Self {
            inner: Arc::new(VerifierInner {
                keys,
                issuer: settings.issuer.clone(),
                audience: settings.audience.clone(),
                user_claim: settings.user_claim.clone(),
            }),
        })
    }

    /// Starts the background refresh of a JWKS (nothing for a static key).
    pub fn spawn_refresh(&self) -> Option<tokio::task::JoinHandle<()>> {
        match &self.inner.keys {
            Keys::Jwks(cache) => Some(tokio::spawn(cache.clone().refresh_forever())),
            _ => None,
        }
    }

    /// The buyer a valid token names, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let (key, algorithm) = match &self.inner.keys {
            Keys::Static(key, algorithm) => (key.clone(), *algorithm),
            Keys::Jwks(cache) => cache.key_for(header.kid.as_deref()).await?,
        };
        // The algorithm is pinned by the key, never taken from the token: `none` and an HMAC
        // algorithm "signed" with a public key are refused here.
        if header.alg != algorithm {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not allowed for this key",
                header.alg
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // A configured issuer or audience must be in the token, not merely match when present:
        // a token minted for another application of the same provider often carries no `aud`
        // (Cognito's access tokens), and would otherwise pass.
        let mut required = vec!["exp"];
        if self.inner.issuer.is_some() {
            required.push("iss");
        }
        if self.inner.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        match &self.inner.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.inner.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let claims = decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?
            .claims;
        let user = claims
            .get(&self.inner.user_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AuthError::Invalid(format!("no string claim {:?}", self.inner.user_claim))
            })?;
        UserId::parse(user.to_owned())
            .map_err(|e| AuthError::Invalid(format!("claim {}: {e}", self.inner.user_claim)))
    }
}

/// A PEM public key and the one algorithm it verifies.
fn public_key(pem: &str) -> Result<(DecodingKey, Algorithm), String> {
    let pem = pem.trim().as_bytes();
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Ok((key, Algorithm::EdDSA));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok((key, Algorithm::ES256));
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((key, Algorithm::RS256));
    }
    Err("not a PEM public key (RSA, EC P-256 or Ed25519)".to_owned())
}

/// Validates a PEM public key at start-up, so a bad one stops the process naming its variable.
pub fn check_public_key(pem: &str) -> Result<(), String> {
    public_key(pem).map(|_| ())
}
