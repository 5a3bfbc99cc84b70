//! Configuration: the environment variables (README, Configuration), declared once in `Vars`
//! with their defaults, read with envy, then checked per subsystem into small validated types:
//! Redis, the sale, HTTP, identity and tokens, webhooks.
//!
//! Every failure is one line that names the variable and what is wrong with it.

mod auth;
mod http;
mod redis;
mod sale;
mod webhook;

pub use self::auth::{AdminToken, RoomSecret, StripeSecret};
pub use self::sale::SaleRoomVars;
pub use self::webhook::WebhookSettings;

use crate::{
    auth::AuthSettings,
    client_ip::ClientIp,
    domain::{CheckoutRules, SaleId, SaleSeed, UserIdCase},
    store::{RedisSettings, ReplicaWait, UserAttemptLimit},
};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;
use std::{fmt, net::IpAddr, num::NonZeroU32, ops::RangeInclusive, time::Duration};

/// Every environment variable the service reads: the fields of `Vars`, upper-cased,
/// plus `RUST_LOG`. Deployment files are checked against this list, so a typo there fails a
/// test instead of a drop.
pub fn variables() -> Vec<String> {
    serde_aux::serde_introspection::serde_introspect::<Vars>()
        .iter()
        .map(|field| field.to_uppercase())
        .chain(["RUST_LOG".to_owned()])
        .collect()
}

/// One line naming the variable and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn var(name: &str, problem: impl fmt::Display) -> Self {
        Self(format!("{name}: {problem}"))
    }

    /// envy ends its message with "provided by NAME"; put the name first, as everywhere else.
    fn from_envy(err: envy::Error) -> Self {
        let message = err.to_string();
        match message.rsplit_once(" provided by ") {
            Some((problem, name)) => Self::var(name.trim(), problem.trim()),
            None => Self(message),
        }
    }
}

/// The variables as envy reads them, with their defaults ([`Vars::default`]).
#[derive(Deserialize)]
#[serde(default)]
struct Vars {
    host: String,
    port: u16,
    redis_url: Option<String>,
    redis_pool_size: usize,
    redis_timeout_ms: u64,
    redis_health_check_ms: u64,
    redis_script_key_check: bool,
    redis_startup_timeout_ms: u64,
    client_timeout_ms: u64,
    purchase_wait_replicas: u32,
    purchase_wait_timeout_ms: u64,
    purchase_batch_max: usize,
    purchase_local_refusals: bool,
    max_connections: usize,
    sale_id: String,
    sale_product_name: Option<String>,
    sale_total_stock: Option<u64>,
    sale_start: Option<String>,
    sale_end: Option<String>,
    sale_hold_seconds: u64,
    sale_max_per_buyer: u64,
    /// 0: no waiting room.
    sale_waiting_room_admit_per_second: u64,
    sale_waiting_room_admission_seconds: u64,
    /// Unset: 15 minutes before the sale's start.
    sale_waiting_room_opens_at: Option<String>,
    waiting_room_secret: Option<SecretString>,
    admin_token: Option<SecretString>,
    rate_limit_per_second: u32,
    rate_limit_burst: u32,
    user_attempt_limit: u32,
    user_attempt_window_ms: u64,
    client_ip_header: Option<String>,
    client_ip_hops: usize,
    cors_allowed_origins: Option<String>,
    /// Unset: `json`, or `pretty` in local mode (no `REDIS_URL`), where a person reads it.
    log_format: Option<String>,
    auth_jwt_secret: Option<SecretString>,
    auth_jwt_public_key: Option<String>,
    auth_jwks_url: Option<String>,
    auth_jwt_issuer: Option<String>,
    auth_jwt_audience: Option<String>,
    auth_user_claim: String,
    auth_jwks_refresh_secs: u64,
    user_id_case: String,
    /// Unset: four fifths of `MAX_CONNECTIONS`, so purchases always have connections left.
    sse_max_streams: Option<usize>,
    sse_max_streams_per_client: usize,
    metrics_token: Option<SecretString>,
    metrics_port: Option<u16>,
    stripe_webhook_secret: Option<SecretString>,
    token_failures_per_minute: u32,
    order_webhook_url: Option<String>,
    order_webhook_secret: Option<SecretString>,
    order_webhook_timeout_ms: u64,
    order_webhook_max_attempts: u32,
    order_webhook_claim_idle_ms: u64,
    order_webhook_backoff_ms: u64,
    order_webhook_concurrency: usize,
}

/// The defaults (README, Configuration), in one place.
impl Default for Vars {
    fn default() -> Self {
        Self {
            host: "::".to_owned(),
            port: 8080,
            redis_url: None,
            redis_pool_size: 4,
            redis_timeout_ms: 2000,
            redis_health_check_ms: 5_000,
            redis_script_key_check: false,
            redis_startup_timeout_ms: 30_000,
            client_timeout_ms: 5_000,
            purchase_wait_replicas: 0,
            purchase_wait_timeout_ms: 0,
            purchase_batch_max: 64,
            purchase_local_refusals: true,
            max_connections: 10_000,
            sale_id: "default".to_owned(),
            sale_product_name: None,
            sale_total_stock: None,
            sale_start: None,
            sale_end: None,
            sale_hold_seconds: 0,
            sale_max_per_buyer: 1,
            sale_waiting_room_admit_per_second: 0,
            sale_waiting_room_admission_seconds: 120,
            sale_waiting_room_opens_at: None,
            waiting_room_secret: None,
            admin_token: None,
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            user_attempt_limit: 10,
            user_attempt_window_ms: 10_000,
            client_ip_header: None,
            client_ip_hops: 1,
            cors_allowed_origins: None,
            log_format: None,
            auth_jwt_secret: None,
            auth_jwt_public_key: None,
            auth_jwks_url: None,
            auth_jwt_issuer: None,
            auth_jwt_audience: None,
            auth_user_claim: "sub".to_owned(),
            auth_jwks_refresh_secs: 300,
            user_id_case: "sensitive".to_owned(),
            sse_max_streams: None,
            sse_max_streams_per_client: 32,
            metrics_token: None,
            metrics_port: None,
            stripe_webhook_secret: None,
            token_failures_per_minute: 10,
            order_webhook_url: None,
            order_webhook_secret: None,
            order_webhook_timeout_ms: 5_000,
            order_webhook_max_attempts: 10,
            order_webhook_claim_idle_ms: 60_000,
            order_webhook_backoff_ms: 1_000,
            order_webhook_concurrency: 16,
        }
    }
}

/// The validated configuration of one instance.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    pub redis: RedisSettings,
    pub sale_id: SaleId,
    /// The sale to create at start-up if it does not exist yet (`SALE_TOTAL_STOCK` set).
    pub sale_seed: Option<SaleSeed>,
    /// `SALE_HOLD_SECONDS`, `SALE_MAX_PER_BUYER`: also the rules of local mode's demo sale.
    pub sale_checkout: CheckoutRules,
    /// `SALE_WAITING_ROOM_*`: the waiting room of that sale, and of local mode's demo sale.
    pub sale_room: SaleRoomVars,
    /// `WAITING_ROOM_SECRET`: signs admissions and queue tickets; needed by every instance that
    /// serves a sale with a waiting room.
    pub room_secret: Option<RoomSecret>,
    /// Whether `SALE_START` / `SALE_END` were given (else they default to now and now + 1 h,
    /// which differ from a stored sale on every restart and say nothing).
    pub sale_window_given: bool,
    pub admin_token: Option<AdminToken>,
    /// `None` when `RATE_LIMIT_PER_SECOND` is 0.
    pub ip_rate_limit: Option<IpRateLimit>,
    pub user_attempts: UserAttemptLimit,
    /// `CLIENT_IP_HEADER` and `CLIENT_IP_HOPS`: where a client's address comes from.
    pub client_ip: ClientIp,
    pub cors: CorsOrigins,
    pub log_format: LogFormat,
    /// JWT verification (`AUTH_*`); `None` = off, the buyer is the body's `userId`.
    pub auth: Option<AuthSettings>,
    pub user_id_case: UserIdCase,
    /// `SSE_MAX_STREAMS`: concurrent event streams per instance.
    pub sse_max_streams: usize,
    /// `SSE_MAX_STREAMS_PER_CLIENT`: concurrent event streams per client address.
    pub sse_max_streams_per_client: usize,
    /// `METRICS_TOKEN`: when set, `/metrics` needs it as a bearer token.
    pub metrics_token: Option<AdminToken>,
    /// `METRICS_PORT`: a second listener serving only `GET /metrics`, without the token, for
    /// a scraper on a private network (Fly.io's `[metrics]`), never to be exposed publicly.
    pub metrics_port: Option<u16>,
    /// `STRIPE_WEBHOOK_SECRET`: `POST /api/payments/stripe/webhook` exists only when set.
    pub stripe_secret: Option<StripeSecret>,
    /// `TOKEN_FAILURES_PER_MINUTE`: wrong admin or metrics tokens an address may send a minute
    /// before it is refused; `None` = no limit.
    pub token_failures_per_minute: Option<NonZeroU32>,
    /// `PURCHASE_WAIT_*`: answer `PURCHASED` only once replicas have the write; `None` = off.
    pub replica_wait: Option<ReplicaWait>,
    /// `PURCHASE_BATCH_MAX`: the most purchases of one sale one script call decides (1 = each
    /// purchase alone; README, Batched decisions).
    pub purchase_batch_max: usize,
    /// `PURCHASE_LOCAL_REFUSALS`: once a sale is sold out, each instance refuses new users
    /// itself, without Redis and without counting them as attempts (README, "Refused without
    /// Redis"); `false` = every refusal is decided in Redis.
    pub purchase_local_refusals: bool,
    /// `CLIENT_TIMEOUT_MS`: a client's time to send a request's headers, and then its body.
    pub client_timeout: Duration,
    /// `MAX_CONNECTIONS`: open connections per instance; more wait in the listen backlog.
    pub max_connections: usize,
    /// `ORDER_WEBHOOK_*`: deliver every order to a URL; `None` = off.
    pub webhook: Option<WebhookSettings>,
    /// HTTP worker threads; `None` = one per available core (at most one per Redis
    /// connection). Not an environment variable: tests set it to keep many instances cheap.
    pub workers: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin access (no CORS headers at all).
    None,
    Any,
    List(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// `value` if it lies in `range`, else an error naming the variable.
fn within<T>(name: &str, value: T, range: RangeInclusive<T>) -> Result<T, ConfigError>
where
    T: PartialOrd + fmt::Display,
{
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::var(
            name,
            format!("must be {} to {} (got {value})", range.start(), range.end()),
        ))
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests pass their own instead of touching the process's).
    pub fn from_vars<I>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        // An empty variable (`REDIS_URL=` in a compose file) means unset, as it does for most tools.
        let vars = vars
            .into_iter()
            .filter(|(_, value)| !value.trim().is_empty());
        let vars: Vars = envy::from_iter(vars).map_err(ConfigError::from_envy)?;
        Self::validate(vars, Utc::now())
    }

    /// Each subsystem reads and checks its own variables.
    fn validate(vars: Vars, now: DateTime<Utc>) -> Result<Self, ConfigError> {
        let redis = redis::read(&vars)?;
        Ok(Settings {
            host: http::host(&vars.host)?,
            port: vars.port,
            log_format: http::log_format(&vars, redis.url.is_none())?,
            ip_rate_limit: http::ip_rate_limit(&vars)?,
            client_ip: http::client_ip(&vars)?,
            cors: http::cors_origins(vars.cors_allowed_origins.as_deref())?,
            client_timeout: Duration::from_millis(within(
                "CLIENT_TIMEOUT_MS",
                vars.client_timeout_ms,
                100..=600_000,
            )?),
            max_connections: within("MAX_CONNECTIONS", vars.max_connections, 1..=1_000_000)?,
            sse_max_streams: http::sse_max_streams(&vars)?,
            sse_max_streams_per_client: within(
                "SSE_MAX_STREAMS_PER_CLIENT",
                vars.sse_max_streams_per_client,
                1..=1_000_000,
            )?,
            replica_wait: redis::replica_wait(&vars)?,
            purchase_batch_max: within("PURCHASE_BATCH_MAX", vars.purchase_batch_max, 1..=1000)?,
            purchase_local_refusals: vars.purchase_local_refusals,
            redis,
            sale_id: sale::sale_id(&vars)?,
            sale_checkout: sale::checkout(&vars)?,
            sale_room: sale::room_vars(&vars)?,
            room_secret: auth::room_secret(&vars)?,
            sale_seed: sale::seed(&vars, now)?,
            sale_window_given: vars.sale_start.is_some() || vars.sale_end.is_some(),
            user_attempts: sale::user_attempts(&vars)?,
            admin_token: auth::admin_token(&vars)?,
            metrics_token: auth::metrics_token(&vars)?,
            metrics_port: http::metrics_port(&vars)?,
            stripe_secret: auth::stripe_secret(&vars)?,
            token_failures_per_minute: NonZeroU32::new(within(
                "TOKEN_FAILURES_PER_MINUTE",
                vars.token_failures_per_minute,
                0..=10_000,
            )?),
            auth: auth::read(&vars)?,
            user_id_case: auth::user_id_case(&vars)?,
            webhook: webhook::read(&vars)?,
            workers: None,
        })
    }
}

#[cfg(test)]
mod tests;
