//! Configuration: the environment variables of SPEC §4, read with envy, then validated.
//!
//! Reading and validating are two steps: envy turns strings into typed optional fields (its
//! errors already name the variable), and [`Settings::from_vars`] applies defaults and checks
//! ranges, so every failure is one line that names the variable and what is wrong with it.

use crate::domain::SaleId;
use actix_web::http::header::HeaderName;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Deserialize;
use std::{fmt, net::IpAddr, num::NonZeroU32, time::Duration};

/// The most units a sale may hold; far above any real drop, low enough that counters never wrap.
const MAX_TOTAL_STOCK: u64 = 1_000_000_000;

/// Every environment variable the service reads (SPEC §4), `RUST_LOG` included. Deployment
/// files are checked against this list, so a typo there fails a test instead of a drop.
pub const VARIABLES: &[&str] = &[
    "HOST",
    "PORT",
    "REDIS_URL",
    "SALE_ID",
    "SALE_PRODUCT_NAME",
    "SALE_TOTAL_STOCK",
    "SALE_START",
    "SALE_END",
    "ADMIN_TOKEN",
    "RATE_LIMIT_PER_SECOND",
    "RATE_LIMIT_BURST",
    "USER_ATTEMPT_LIMIT",
    "USER_ATTEMPT_WINDOW_MS",
    "CLIENT_IP_HEADER",
    "CORS_ALLOWED_ORIGINS",
    "REDIS_POOL_SIZE",
    "REDIS_TIMEOUT_MS",
    "LOG_FORMAT",
    "RUST_LOG",
];

/// One line naming the variable and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn var(name: &str, problem: impl fmt::Display) -> Self {
        Self(format!("{name}: {problem}"))
    }
}

/// The variables as envy reads them: every one optional, typed, no defaults yet.
#[derive(Debug, Default, Deserialize)]
struct RawVars {
    host: Option<String>,
    port: Option<u16>,
    redis_url: Option<String>,
    sale_id: Option<String>,
    sale_product_name: Option<String>,
    sale_total_stock: Option<u64>,
    sale_start: Option<String>,
    sale_end: Option<String>,
    admin_token: Option<String>,
    rate_limit_per_second: Option<u32>,
    rate_limit_burst: Option<u32>,
    user_attempt_limit: Option<u32>,
    user_attempt_window_ms: Option<u64>,
    client_ip_header: Option<String>,
    cors_allowed_origins: Option<String>,
    redis_pool_size: Option<usize>,
    redis_timeout_ms: Option<u64>,
    log_format: Option<String>,
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
    pub admin_token: Option<Secret>,
    /// `None` when `RATE_LIMIT_PER_SECOND` is 0.
    pub ip_rate_limit: Option<IpRateLimit>,
    pub user_attempts: UserAttemptLimit,
    pub client_ip_header: Option<HeaderName>,
    pub cors: CorsOrigins,
    pub log_format: LogFormat,
    /// HTTP worker threads; `None` = actix-web's default (one per physical core). Not an
    /// environment variable: tests set it to keep many instances on one machine cheap.
    pub workers: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `None`: start an embedded local `redis-server` (SPEC §4).
    pub url: Option<RedisUrl>,
    pub pool_size: usize,
    pub timeout: Duration,
}

/// A Redis URL. It may hold a password, so `Debug` and `Display` show only scheme and hosts.
#[derive(Clone)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Accepts `redis://`, `rediss://`, `redis-cluster://` and `rediss-cluster://`.
    pub fn parse(url: &str) -> Result<Self, String> {
        const SCHEMES: [&str; 4] = [
            "redis://",
            "rediss://",
            "redis-cluster://",
            "rediss-cluster://",
        ];
        if !SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
            return Err(format!(
                "must start with redis://, rediss:// or redis-cluster:// (got {})",
                RedisUrl(url.to_owned())
            ));
        }
        let url = RedisUrl(url.to_owned());
        if url.hosts().is_empty() {
            return Err(format!("names no host (got {url})"));
        }
        Ok(url)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_cluster(&self) -> bool {
        self.scheme().ends_with("-cluster")
    }

    fn scheme(&self) -> &str {
        self.0.split("://").next().unwrap_or_default()
    }

    /// The `host:port` part, without credentials, path or query.
    fn hosts(&self) -> &str {
        let rest = self
            .0
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, hosts)| hosts)
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.hosts())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleSeed {
    pub product_name: String,
    pub total_stock: u64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl SaleSeed {
    /// The sale of local mode: 100 units, starting now, ending in one hour.
    pub fn demo(now: DateTime<Utc>) -> Self {
        Self {
            product_name: "Demo product".to_owned(),
            total_stock: 100,
            start: now,
            end: now + ChronoDuration::hours(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

/// Purchase attempts per user per window, enforced inside the purchase script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserAttemptLimit {
    /// 0 = off.
    pub limit: u32,
    pub window_ms: u64,
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
        let raw: RawVars = envy::from_iter(vars).map_err(|err| ConfigError(err.to_string()))?;
        Self::validate(raw, Utc::now())
    }

    fn validate(raw: RawVars, now: DateTime<Utc>) -> Result<Self, ConfigError> {
        let host = match raw.host.as_deref() {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(host) => host
                .trim()
                .parse()
                .map_err(|_| ConfigError::var("HOST", format!("not an IP address: {host:?}")))?,
        };

        let url = raw
            .redis_url
            .as_deref()
            .map(|url| RedisUrl::parse(url.trim()).map_err(|e| ConfigError::var("REDIS_URL", e)))
            .transpose()?;
        let pool_size = raw.redis_pool_size.unwrap_or(4);
        if !(1..=256).contains(&pool_size) {
            return Err(ConfigError::var("REDIS_POOL_SIZE", "must be 1 to 256"));
        }
        let timeout_ms = raw.redis_timeout_ms.unwrap_or(2000);
        if !(10..=60_000).contains(&timeout_ms) {
            return Err(ConfigError::var("REDIS_TIMEOUT_MS", "must be 10 to 60000"));
        }

        let sale_id = match raw.sale_id.as_deref() {
            None => SaleId::default(),
            Some(id) => SaleId::parse(id).map_err(|e| ConfigError::var("SALE_ID", e))?,
        };

        let ip_rate_limit = match raw.rate_limit_per_second.unwrap_or(50) {
            0 => None,
            per_second if per_second > 1_000_000 => {
                return Err(ConfigError::var(
                    "RATE_LIMIT_PER_SECOND",
                    "must be at most 1000000 (0 turns it off)",
                ))
            }
            per_second => {
                let burst = raw.rate_limit_burst.unwrap_or(100);
                Some(IpRateLimit {
                    per_second: NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN),
                    burst: NonZeroU32::new(burst).ok_or_else(|| {
                        ConfigError::var(
                            "RATE_LIMIT_BURST",
                            "must be at least 1 while RATE_LIMIT_PER_SECOND is on",
                        )
                    })?,
                })
            }
        };
        let user_attempts = UserAttemptLimit {
            limit: raw.user_attempt_limit.unwrap_or(10),
            window_ms: raw.user_attempt_window_ms.unwrap_or(10_000),
        };
        if user_attempts.limit > 0 && !(1..=86_400_000).contains(&user_attempts.window_ms) {
            return Err(ConfigError::var(
                "USER_ATTEMPT_WINDOW_MS",
                "must be 1 to 86400000",
            ));
        }

        let client_ip_header = raw
            .client_ip_header
            .as_deref()
            .map(|name| {
                HeaderName::try_from(name.trim()).map_err(|_| {
                    ConfigError::var("CLIENT_IP_HEADER", format!("not a header name: {name:?}"))
                })
            })
            .transpose()?;

        Ok(Settings {
            host,
            port: raw.port.unwrap_or(8080),
            redis: RedisSettings {
                url,
                pool_size,
                timeout: Duration::from_millis(timeout_ms),
            },
            sale_id,
            sale_seed: sale_seed(&raw, now)?,
            admin_token: admin_token(raw.admin_token)?,
            ip_rate_limit,
            user_attempts,
            client_ip_header,
            cors: cors_origins(raw.cors_allowed_origins.as_deref())?,
            log_format: match raw.log_format.as_deref().map(str::trim) {
                None | Some("json") => LogFormat::Json,
                Some("pretty") => LogFormat::Pretty,
                Some(other) => {
                    return Err(ConfigError::var(
                        "LOG_FORMAT",
                        format!("must be json or pretty, got {other:?}"),
                    ))
                }
            },
            workers: None,
        })
    }
}

fn sale_seed(raw: &RawVars, now: DateTime<Utc>) -> Result<Option<SaleSeed>, ConfigError> {
    let Some(total_stock) = raw.sale_total_stock else {
        for (name, value) in [
            ("SALE_PRODUCT_NAME", &raw.sale_product_name),
            ("SALE_START", &raw.sale_start),
            ("SALE_END", &raw.sale_end),
        ] {
            if value.is_some() {
                return Err(ConfigError::var(
                    name,
                    "is set but SALE_TOTAL_STOCK is not (it creates the sale)",
                ));
            }
        }
        return Ok(None);
    };
    if total_stock > MAX_TOTAL_STOCK {
        return Err(ConfigError::var(
            "SALE_TOTAL_STOCK",
            format!("must be at most {MAX_TOTAL_STOCK}"),
        ));
    }
    let product_name = raw
        .sale_product_name
        .clone()
        .unwrap_or_else(|| "Flash sale item".to_owned());
    if product_name.chars().count() > 200 || product_name.chars().any(char::is_control) {
        return Err(ConfigError::var(
            "SALE_PRODUCT_NAME",
            "must be at most 200 characters, none of them control",
        ));
    }
    let start = match &raw.sale_start {
        None => now,
        Some(text) => parse_time("SALE_START", text)?,
    };
    let end = match &raw.sale_end {
        None => start + ChronoDuration::hours(1),
        Some(text) => parse_time("SALE_END", text)?,
    };
    if end <= start {
        return Err(ConfigError::var("SALE_END", "must be after SALE_START"));
    }
    Ok(Some(SaleSeed {
        product_name,
        total_stock,
        start,
        end,
    }))
}

fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, ConfigError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.with_timezone(&Utc))
        .map_err(|err| ConfigError::var(name, format!("not an RFC 3339 time ({err}): {text:?}")))
}

fn admin_token(token: Option<String>) -> Result<Option<Secret>, ConfigError> {
    match token {
        None => Ok(None),
        // A short token is guessable; the admin API would be the weakest point of the service.
        Some(token) if token.len() < 16 => Err(ConfigError::var(
            "ADMIN_TOKEN",
            "must be at least 16 characters",
        )),
        Some(token) => Ok(Some(Secret(token))),
    }
}

fn cors_origins(value: Option<&str>) -> Result<CorsOrigins, ConfigError> {
    let Some(value) = value else {
        return Ok(CorsOrigins::None);
    };
    if value.trim() == "*" {
        return Ok(CorsOrigins::Any);
    }
    let origins = value
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && origin
                    .split_once("://")
                    .is_some_and(|(_, host)| !host.is_empty() && !host.contains('/'));
            if valid {
                Ok(origin.to_owned())
            } else {
                Err(ConfigError::var(
                    "CORS_ALLOWED_ORIGINS",
                    format!("{origin:?} is not an origin like https://shop.example.com"),
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CorsOrigins::List(origins))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn the_variable_list_names_every_field_read() {
        // envy maps FIELD_NAME to field_name; RUST_LOG is read by the log filter instead.
        let debug = format!("{:?}", RawVars::default());
        for name in VARIABLES.iter().filter(|name| **name != "RUST_LOG") {
            assert!(
                debug.contains(&format!("{}:", name.to_lowercase())),
                "{name}"
            );
        }
        assert_eq!(debug.matches(": None").count(), VARIABLES.len() - 1);
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.port, 8080);
        assert_eq!(s.host.to_string(), "0.0.0.0");
        assert!(s.redis.url.is_none());
        assert_eq!(s.redis.pool_size, 4);
        assert_eq!(s.redis.timeout, Duration::from_millis(2000));
        assert_eq!(s.sale_id.as_str(), "default");
        assert!(s.sale_seed.is_none());
        let limit = s.ip_rate_limit.unwrap();
        assert_eq!((limit.per_second.get(), limit.burst.get()), (50, 100));
        assert_eq!(
            s.user_attempts,
            UserAttemptLimit {
                limit: 10,
                window_ms: 10_000
            }
        );
        assert_eq!(s.cors, CorsOrigins::None);
        assert_eq!(s.log_format, LogFormat::Json);
        assert!(s.client_ip_header.is_none());
    }

    #[test]
    fn every_invalid_value_names_its_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("HOST", "not-an-ip"),
            ("REDIS_URL", "http://localhost"),
            ("REDIS_POOL_SIZE", "0"),
            ("REDIS_TIMEOUT_MS", "5"),
            ("SALE_ID", "bad{id}"),
            ("SALE_TOTAL_STOCK", "-1"),
            ("RATE_LIMIT_PER_SECOND", "x"),
            ("USER_ATTEMPT_LIMIT", "1.5"),
            ("CLIENT_IP_HEADER", "bad header"),
            ("CORS_ALLOWED_ORIGINS", "shop.example.com"),
            ("LOG_FORMAT", "xml"),
            ("ADMIN_TOKEN", "short"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn sale_seed_defaults_to_one_hour_from_now() {
        let now = Utc::now();
        let raw = RawVars {
            sale_total_stock: Some(5),
            ..RawVars::default()
        };
        let seed = Settings::validate(raw, now).unwrap().sale_seed.unwrap();
        assert_eq!(seed.total_stock, 5);
        assert_eq!(seed.start, now);
        assert_eq!(seed.end, now + ChronoDuration::hours(1));
    }

    #[test]
    fn sale_end_must_follow_start() {
        let err = settings(&[
            ("SALE_TOTAL_STOCK", "5"),
            ("SALE_START", "2030-01-01T10:00:00Z"),
            ("SALE_END", "2030-01-01T09:00:00Z"),
        ])
        .unwrap_err();
        assert!(err.to_string().starts_with("SALE_END"));
    }

    #[test]
    fn sale_fields_without_stock_are_refused() {
        let err = settings(&[("SALE_START", "2030-01-01T10:00:00Z")]).unwrap_err();
        assert!(err.to_string().starts_with("SALE_START"));
    }

    #[test]
    fn redis_url_never_shows_its_password() {
        let url = RedisUrl::parse("rediss://user:hunter2@db.example.com:6380/0").unwrap();
        assert_eq!(url.to_string(), "rediss://db.example.com:6380");
        assert!(!format!("{url:?}").contains("hunter2"));
        let s = settings(&[
            ("REDIS_URL", "redis://:hunter2@localhost:6379"),
            ("ADMIN_TOKEN", "0123456789abcdef"),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("0123456789abcdef"),
            "{debug}"
        );
    }

    #[test]
    fn cluster_urls_are_recognised() {
        assert!(RedisUrl::parse("redis-cluster://a:7000,b:7001")
            .unwrap()
            .is_cluster());
        assert!(!RedisUrl::parse("redis://a:7000").unwrap().is_cluster());
    }

    #[test]
    fn zero_turns_the_limits_off() {
        let s = settings(&[("RATE_LIMIT_PER_SECOND", "0"), ("USER_ATTEMPT_LIMIT", "0")]).unwrap();
        assert!(s.ip_rate_limit.is_none());
        assert_eq!(s.user_attempts.limit, 0);
    }

    #[test]
    fn cors_origins_parse() {
        assert_eq!(
            settings(&[("CORS_ALLOWED_ORIGINS", "*")]).unwrap().cors,
            CorsOrigins::Any
        );
        assert_eq!(
            settings(&[(
                "CORS_ALLOWED_ORIGINS",
                "https://a.example, http://localhost:3000"
            )])
            .unwrap()
            .cors,
            CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let s = settings(&[("REDIS_URL", ""), ("PORT", " ")]).unwrap();
        assert!(s.redis.url.is_none());
        assert_eq!(s.port, 8080);
    }
}
