//! How the service meets clients: `HOST`, CORS, the per-IP limit, the client address header,
//! timeouts and connection caps, and the log format.

use super::{within, ConfigError, CorsOrigins, IpRateLimit, LogFormat, Vars};
use crate::client_ip::ClientIp;
use actix_web::http::header::HeaderName;
use std::{
    net::{IpAddr, ToSocketAddrs},
    num::{NonZeroU32, NonZeroUsize},
};

pub(super) fn log_format(vars: &Vars, local_mode: bool) -> Result<LogFormat, ConfigError> {
    match vars.log_format.as_deref().map(str::trim) {
        None if local_mode => Ok(LogFormat::Pretty),
        None | Some("json") => Ok(LogFormat::Json),
        Some("pretty") => Ok(LogFormat::Pretty),
        Some(other) => Err(ConfigError::var(
            "LOG_FORMAT",
            format!("must be json or pretty, got {other:?}"),
        )),
    }
}

/// `None` when `RATE_LIMIT_PER_SECOND` is 0.
pub(super) fn ip_rate_limit(vars: &Vars) -> Result<Option<IpRateLimit>, ConfigError> {
    let per_second = within(
        "RATE_LIMIT_PER_SECOND",
        vars.rate_limit_per_second,
        0..=1_000_000,
    )?;
    let Some(per_second) = NonZeroU32::new(per_second) else {
        return Ok(None);
    };
    let burst = NonZeroU32::new(vars.rate_limit_burst).ok_or_else(|| {
        ConfigError::var(
            "RATE_LIMIT_BURST",
            "must be at least 1 while RATE_LIMIT_PER_SECOND is on",
        )
    })?;
    Ok(Some(IpRateLimit { per_second, burst }))
}

/// `CLIENT_IP_HEADER` and `CLIENT_IP_HOPS` (how many trusted proxies append to the header).
pub(super) fn client_ip(vars: &Vars) -> Result<ClientIp, ConfigError> {
    let header = vars
        .client_ip_header
        .as_deref()
        .map(|name| {
            HeaderName::try_from(name.trim()).map_err(|_| {
                ConfigError::var("CLIENT_IP_HEADER", format!("not a header name: {name:?}"))
            })
        })
        .transpose()?;
    let hops = within("CLIENT_IP_HOPS", vars.client_ip_hops, 1..=16)?;
    Ok(ClientIp::new(
        header,
        NonZeroUsize::new(hops).unwrap_or(NonZeroUsize::MIN),
    ))
}

/// `SSE_MAX_STREAMS`: always below `MAX_CONNECTIONS`, so event streams can never take every
/// connection and leave purchases waiting; unset, four fifths of it.
pub(super) fn sse_max_streams(vars: &Vars) -> Result<usize, ConfigError> {
    let connections = vars.max_connections;
    match vars.sse_max_streams {
        None => Ok(connections * 4 / 5),
        Some(streams) if streams < connections => Ok(streams),
        Some(streams) => Err(ConfigError::var(
            "SSE_MAX_STREAMS",
            format!(
                "must be below MAX_CONNECTIONS ({connections}), so purchases always have a \
                 connection (got {streams})"
            ),
        )),
    }
}

/// An IP address, or a host name such as `localhost` resolved once at start-up.
pub(super) fn host(value: &str) -> Result<IpAddr, ConfigError> {
    let value = value.trim();
    if let Ok(ip) = value.parse() {
        return Ok(ip);
    }
    let mut addresses = (value, 0)
        .to_socket_addrs()
        .map_err(|_| ConfigError::var("HOST", format!("not an IP address or host: {value:?}")))?
        .map(|address| address.ip())
        .collect::<Vec<_>>();
    // `localhost` resolves to ::1 and 127.0.0.1; IPv4 first, as most tools expect.
    addresses.sort_by_key(|ip| !ip.is_ipv4());
    addresses
        .into_iter()
        .next()
        .ok_or_else(|| ConfigError::var("HOST", format!("{value:?} resolves to no address")))
}

pub(super) fn cors_origins(value: Option<&str>) -> Result<CorsOrigins, ConfigError> {
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

/// `METRICS_PORT`: 1–65535 and not `PORT` (the public listener never serves metrics without
/// the token).
pub(super) fn metrics_port(vars: &Vars) -> Result<Option<u16>, ConfigError> {
    match vars.metrics_port {
        None => Ok(None),
        Some(0) => Err(ConfigError::var("METRICS_PORT", "must be 1 to 65535")),
        Some(port) if port == vars.port => Err(ConfigError::var(
            "METRICS_PORT",
            "must differ from PORT (it serves /metrics without the token)",
        )),
        Some(port) => Ok(Some(port)),
    }
}
