//! `AUTH_*`, `USER_ID_CASE` and the tokens of ours (`ADMIN_TOKEN`, `METRICS_TOKEN`): who a
//! buyer is, and who may operate the service.

use super::{within, ConfigError, Vars};
use crate::{
    auth::{AuthSettings, KeySource},
    domain::UserIdCase,
};
use secrecy::{ExposeSecret, SecretString};
use std::{fmt, time::Duration};

/// A bearer token of ours (`ADMIN_TOKEN`, `METRICS_TOKEN`): never shown by `Debug`, never logged.
#[derive(Clone)]
pub struct AdminToken(SecretString);

impl AdminToken {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// `STRIPE_WEBHOOK_SECRET`: the signing secret of the shop's Stripe webhook endpoint
/// (`whsec_…`); never shown by `Debug`, never logged.
#[derive(Clone, Debug)]
pub struct StripeSecret(AdminToken);

impl StripeSecret {
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// `WAITING_ROOM_SECRET`: the key every instance signs admissions and queue tickets with
/// (README, Waiting room); at least 32 characters, never shown by `Debug`, never logged.
#[derive(Clone)]
pub struct RoomSecret(SecretString);

impl RoomSecret {
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }

    #[cfg(test)]
    pub fn for_tests(secret: SecretString) -> Self {
        Self(secret)
    }
}

impl fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomSecret(***)")
    }
}

pub(super) fn room_secret(vars: &Vars) -> Result<Option<RoomSecret>, ConfigError> {
    match &vars.waiting_room_secret {
        None => {
            if vars.sale_waiting_room_admit_per_second > 0 {
                return Err(ConfigError::var(
                    "WAITING_ROOM_SECRET",
                    "must be set when SALE_WAITING_ROOM_ADMIT_PER_SECOND turns the waiting room \
                     on (it signs admissions; every instance needs the same one)",
                ));
            }
            Ok(None)
        }
        Some(secret) if secret.expose_secret().trim().chars().count() < 32 => Err(
            ConfigError::var("WAITING_ROOM_SECRET", "must be at least 32 characters"),
        ),
        Some(secret) => Ok(Some(RoomSecret(secret.clone()))),
    }
}

pub(super) fn stripe_secret(vars: &Vars) -> Result<Option<StripeSecret>, ConfigError> {
    Ok(token("STRIPE_WEBHOOK_SECRET", vars.stripe_webhook_secret.clone())?.map(StripeSecret))
}

pub(super) fn user_id_case(vars: &Vars) -> Result<UserIdCase, ConfigError> {
    match vars.user_id_case.trim() {
        "sensitive" => Ok(UserIdCase::Sensitive),
        "insensitive" => Ok(UserIdCase::Insensitive),
        other => Err(ConfigError::var(
            "USER_ID_CASE",
            format!("must be sensitive or insensitive, got {other:?}"),
        )),
    }
}

pub(super) fn metrics_token(vars: &Vars) -> Result<Option<AdminToken>, ConfigError> {
    token("METRICS_TOKEN", vars.metrics_token.clone())
}

/// `AUTH_*`: exactly one key source, or none (verification off).
pub(super) fn read(vars: &Vars) -> Result<Option<AuthSettings>, ConfigError> {
    let mut sources = Vec::new();
    if let Some(secret) = &vars.auth_jwt_secret {
        // HS256 with a short secret can be brute-forced offline from one token.
        if secret.expose_secret().len() < 32 {
            return Err(ConfigError::var(
                "AUTH_JWT_SECRET",
                "must be at least 32 characters",
            ));
        }
        sources.push(("AUTH_JWT_SECRET", KeySource::Secret(secret.clone())));
    }
    if let Some(pem) = &vars.auth_jwt_public_key {
        // A PEM in an environment variable often arrives with literal "\n"s.
        let pem = pem.replace("\\n", "\n");
        crate::auth::check_public_key(&pem)
            .map_err(|e| ConfigError::var("AUTH_JWT_PUBLIC_KEY", e))?;
        sources.push(("AUTH_JWT_PUBLIC_KEY", KeySource::PublicKey(pem)));
    }
    if let Some(url) = &vars.auth_jwks_url {
        let url =
            jwks_url(url.trim()).map_err(|problem| ConfigError::var("AUTH_JWKS_URL", problem))?;
        sources.push(("AUTH_JWKS_URL", KeySource::Jwks(url)));
    }
    let keys = match sources.len() {
        0 => {
            for (name, set) in [
                ("AUTH_JWT_ISSUER", vars.auth_jwt_issuer.is_some()),
                ("AUTH_JWT_AUDIENCE", vars.auth_jwt_audience.is_some()),
            ] {
                if set {
                    return Err(ConfigError::var(
                        name,
                        "is set but no key is (AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL)",
                    ));
                }
            }
            return Ok(None);
        }
        1 => sources.remove(0).1,
        _ => {
            return Err(ConfigError::var(
                sources[1].0,
                format!("set together with {}; choose one key source", sources[0].0),
            ))
        }
    };
    let user_claim = vars.auth_user_claim.trim().to_owned();
    if user_claim.is_empty() {
        return Err(ConfigError::var("AUTH_USER_CLAIM", "must name a claim"));
    }
    Ok(Some(AuthSettings {
        keys,
        issuer: vars.auth_jwt_issuer.clone(),
        audience: vars.auth_jwt_audience.clone(),
        user_claim,
        jwks_refresh: Duration::from_secs(within(
            "AUTH_JWKS_REFRESH_SECS",
            vars.auth_jwks_refresh_secs,
            1..=86_400,
        )?),
    }))
}

pub(super) fn admin_token(vars: &Vars) -> Result<Option<AdminToken>, ConfigError> {
    token("ADMIN_TOKEN", vars.admin_token.clone())
}

/// A bearer token of ours, at least 16 characters: a short one is guessable, and the route it
/// guards would be the weakest point of the service.
fn token(name: &str, token: Option<SecretString>) -> Result<Option<AdminToken>, ConfigError> {
    match token {
        None => Ok(None),
        Some(token) if token.expose_secret().len() < 16 => {
            Err(ConfigError::var(name, "must be at least 16 characters"))
        }
        Some(token) => Ok(Some(AdminToken(token))),
    }
}

/// An `https://` URL, or `http://` to a loopback host (tests): the host is judged on the parsed
/// URL, so `http://localhost@idp.example/` (userinfo) or `http://localhost.idp.example/` are
/// not loopback.
fn jwks_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|err| format!("not a URL ({err}): {text:?}"))?;
    let loopback = url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    let plain_loopback = url.scheme() == "http" && loopback && url.username().is_empty();
    if (url.scheme() == "https" && url.host().is_some()) || plain_loopback {
        Ok(url.to_string())
    } else {
        Err("must be an https:// URL (http:// only for a loopback host, for tests)".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::jwks_url;

    #[test]
    fn plain_http_only_to_a_loopback_host_judged_on_the_parsed_url() {
        for good in [
            "https://idp.example.com/.well-known/jwks.json",
            "http://127.0.0.1:9000/jwks.json",
            "http://localhost:9000/jwks.json",
            "http://[::1]:9000/jwks.json",
        ] {
            assert!(jwks_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://idp.example.com/jwks.json",
            "http://localhost@idp.example.com/jwks.json",
            "http://localhost.idp.example.com/jwks.json",
            "http://127.0.0.1.idp.example.com/jwks.json",
            "ftp://localhost/jwks.json",
            "not a url",
        ] {
            assert!(jwks_url(bad).is_err(), "{bad}");
        }
    }
}
