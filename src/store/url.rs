//! `REDIS_URL`, parsed once at start-up into fred's connection config.

use fred::types::config::{Config, ServerConfig};
use std::fmt;

/// A parsed Redis URL. It may hold a password, so `Debug` and `Display` show only the scheme
/// and the hosts.
#[derive(Clone)]
pub struct RedisUrl {
    config: Config,
    shown: String,
}

impl RedisUrl {
    /// Accepts `redis://`, `rediss://` (TLS), `redis-cluster://` and `rediss-cluster://`, where
    /// the cluster forms take a comma-separated list of `host:port` seed nodes.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        const SCHEMES: [&str; 4] = ["redis", "rediss", "redis-cluster", "rediss-cluster"];
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !scheme.is_some_and(|scheme| SCHEMES.contains(&scheme)) {
            return Err(
                "must start with redis://, rediss://, redis-cluster:// or rediss-cluster://"
                    .to_owned(),
            );
        }
        let config = Config::from_url(&fred_url(url)).map_err(|err| {
            // fred's message names the part that is wrong; the URL itself may hold a password.
            format!("not a valid Redis URL: {}", err.details())
        })?;
        let hosts: Vec<String> = match &config.server {
            ServerConfig::Centralized { server } => {
                vec![format!("{}:{}", server.host, server.port)]
            }
            ServerConfig::Clustered { hosts, .. } => hosts
                .iter()
                .map(|server| format!("{}:{}", server.host, server.port))
                .collect(),
            _ => Vec::new(),
        };
        if hosts.is_empty() || hosts.iter().any(|host| host.starts_with(':')) {
            return Err("names no host".to_owned());
        }
        let shown = format!("{}://{}", scheme.unwrap_or_default(), hosts.join(","));
        Ok(Self { config, shown })
    }

    /// fred's config for this URL.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.config.server, ServerConfig::Clustered { .. })
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.shown)
    }
}

/// fred reads extra cluster nodes from `?node=` query parameters; README, Configuration, lists them
/// comma-separated (`redis-cluster://a:7000,b:7001`), so the list is rewritten into that form.
fn fred_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    let mut hosts = hosts.split(',');
    let first = hosts.next().unwrap_or_default();
    let extra: Vec<String> = hosts.map(|host| format!("node={host}")).collect();
    if extra.is_empty() {
        return url.to_owned();
    }
    let separator = if tail.contains('?') { '&' } else { '?' };
    format!(
        "{scheme}://{userinfo}{first}{tail}{separator}{}",
        extra.join("&")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_separated_cluster_nodes_become_node_parameters() {
        assert_eq!(
            fred_url("redis-cluster://:pw@a:7000,b:7001,c:7002"),
            "redis-cluster://:pw@a:7000?node=b:7001&node=c:7002"
        );
        assert_eq!(
            fred_url("redis://localhost:6379/0"),
            "redis://localhost:6379/0"
        );
    }

    #[test]
    fn the_url_never_shows_its_password() {
        let url = RedisUrl::parse("rediss://user:hunter2@db.example.com:6380/0").unwrap();
        assert_eq!(url.to_string(), "rediss://db.example.com:6380");
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn cluster_urls_list_every_seed_node() {
        let url = RedisUrl::parse("redis-cluster://a:7000,b:7001").unwrap();
        assert!(url.is_cluster());
        let shown = url.to_string();
        assert!(shown.starts_with("redis-cluster://"), "{shown}");
        assert!(
            shown.contains("a:7000") && shown.contains("b:7001"),
            "{shown}"
        );
        assert!(!RedisUrl::parse("redis://a:7000").unwrap().is_cluster());
        assert!(RedisUrl::parse("rediss-cluster://a:7000,b:7001")
            .unwrap()
            .is_cluster());
    }

    #[test]
    fn a_bad_port_or_scheme_is_refused_at_parse_time() {
        for bad in [
            "redis://127.0.0.1:abc",
            "http://localhost",
            "redis://",
            "redis-cluster://a:1,b:x",
        ] {
            assert!(RedisUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
