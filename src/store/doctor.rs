//! `flashsale doctor`: what the README's "What production Redis needs" asks of a Redis, read
//! from that Redis: reachability and round trip, version, scripts, eviction, persistence,
//! cluster, replicas and TLS. Read-only but for `SCRIPT LOAD` of the service's own scripts.

use super::{RedisUrl, Store, StoreError};
use crate::domain::SaleId;
use fred::{prelude::*, types::InfoKind};
use std::time::{Duration, Instant};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Works, with a risk the operator should know.
    Warn,
    /// The service would not be correct (or would not run) on this Redis.
    Blocker,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Blocker => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub text: String,
}

fn finding(level: Level, text: impl Into<String>) -> Finding {
    Finding {
        level,
        text: text.into(),
    }
}

/// `field:value` lines of an `INFO` section.
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

impl Store {
    async fn info(&self, kind: InfoKind) -> Result<String, StoreError> {
        self.command(|client| {
            let kind = kind.clone();
            async move { client.info(Some(kind)).await }
        })
        .await
    }

    /// Checks this Redis for the service; the first finding that cannot reach Redis ends it.
    pub async fn doctor(&self, url: &RedisUrl) -> Vec<Finding> {
        let mut report = Vec::new();
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let ping: Result<String, _> = self
                .command(|client| async move { client.ping(None).await })
                .await;
            if let Err(err) = ping {
                report.push(finding(
                    Level::Blocker,
                    format!("cannot reach Redis: {err}"),
                ));
                return report;
            }
            times.push(started.elapsed());
        }
        times.sort();
        let median = times.get(2).copied().unwrap_or(Duration::ZERO);
        let level = if median > Duration::from_millis(5) {
            Level::Warn
        } else {
            Level::Ok
        };
        report.push(finding(
            level,
            format!(
                "connected, round trip {:.2} ms (median of 5 PINGs; every purchase pays one)",
                median.as_secs_f64() * 1000.0
            ),
        ));

        let server = self.info(InfoKind::Server).await.unwrap_or_default();
        let version = info_field(&server, "valkey_version")
            .or_else(|| info_field(&server, "redis_version"))
            .unwrap_or("unknown");
        let name = info_field(&server, "server_name").unwrap_or("redis");
        let mode = info_field(&server, "redis_mode").unwrap_or("standalone");
        let major_minor: Vec<u32> = version
            .split('.')
            .take(2)
            .filter_map(|part| part.parse().ok())
            .collect();
        let level = match major_minor.as_slice() {
            [major, _] if *major >= 6 => Level::Ok,
            // Streams (the order stream) came with 5.0.
            [5, _] => Level::Warn,
            _ => Level::Blocker,
        };
        report.push(finding(level, format!("{name} {version} ({mode})")));

        // A read-only EVALSHA of the status script, on a sale id nobody uses.
        let probe = SaleId::parse("flashsale-doctor-probe").map_err(StoreError::Unexpected);
        match self.load_scripts().await {
            Ok(()) => match async { self.status(&probe.clone()?).await }.await {
                Ok(_) => report.push(finding(
                    Level::Ok,
                    "scripts: SCRIPT LOAD and EVALSHA allowed",
                )),
                Err(err) => report.push(finding(
                    Level::Blocker,
                    format!("scripts: EVALSHA refused: {err}"),
                )),
            },
            Err(err) => report.push(finding(
                Level::Blocker,
                format!("scripts: SCRIPT LOAD refused: {err}"),
            )),
        }

        match self.memory_info().await {
            Ok(memory) => match memory.policy.as_deref() {
                Some("noeviction") => report.push(finding(
                    Level::Ok,
                    format!(
                        "maxmemory-policy noeviction, maxmemory {}",
                        if memory.max_bytes == 0 {
                            "unlimited".to_owned()
                        } else {
                            format!("{} MB", memory.max_bytes / 1_000_000)
                        }
                    ),
                )),
                Some(policy) => report.push(finding(
                    Level::Blocker,
                    format!(
                        "maxmemory-policy {policy}: eviction can delete a sale's stock and \
                         buyers; set noeviction"
                    ),
                )),
                None => report.push(finding(
                    Level::Blocker,
                    "maxmemory-policy cannot be read: make sure it is noeviction",
                )),
            },
            Err(err) => report.push(finding(
                Level::Blocker,
                format!("INFO memory cannot be read: {err}"),
            )),
        }

        let persistence = self.info(InfoKind::Persistence).await.unwrap_or_default();
        let fsync: Option<String> = self
            .command(|client| async move {
                client
                    .custom::<Vec<String>, _>(fred::cmd!("CONFIG"), vec!["GET", "appendfsync"])
                    .await
            })
            .await
            .ok()
            .and_then(|pair| pair.get(1).cloned());
        match info_field(&persistence, "aof_enabled") {
            Some("1") => {
                let fsync = fsync.unwrap_or_else(|| "not readable".to_owned());
                let level = if fsync == "always" {
                    Level::Ok
                } else {
                    Level::Warn
                };
                report.push(finding(
                    level,
                    format!(
                        "persistence: AOF on, appendfsync {fsync} (always loses no \
                         acknowledged purchase on a crash; everysec may lose the last second)"
                    ),
                ));
            }
            _ => report.push(finding(
                Level::Warn,
                "persistence: AOF off: a crash loses every purchase since the last snapshot",
            )),
        }

        if mode == "cluster" || url.is_cluster() {
            let cluster: Result<String, _> = self
                .command(|client| async move { client.cluster_info().await })
                .await;
            let cluster = cluster.unwrap_or_default();
            let state = info_field(&cluster, "cluster_state").unwrap_or("unknown");
            let slots = info_field(&cluster, "cluster_slots_ok").unwrap_or("0");
            let level = if state == "ok" && slots == "16384" {
                Level::Ok
            } else {
                Level::Blocker
            };
            report.push(finding(
                level,
                format!("cluster: state {state}, {slots} of 16384 slots served"),
            ));
        }

        let replication = self.info(InfoKind::Replication).await.unwrap_or_default();
        let role = info_field(&replication, "role").unwrap_or("unknown");
        let replicas = info_field(&replication, "connected_slaves").unwrap_or("0");
        report.push(finding(
            if role == "master" {
                Level::Ok
            } else {
                Level::Blocker
            },
            format!(
                "role {role}, {replicas} replica(s) connected (PURCHASE_WAIT_REPLICAS makes a \
                 purchase wait for them; replication is asynchronous otherwise)"
            ),
        ));

        let shown = url.to_string();
        let tls = shown.starts_with("rediss");
        let loopback = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|host| shown.contains(&format!("://{host}:")));
        report.push(finding(
            if tls || loopback {
                Level::Ok
            } else {
                Level::Warn
            },
            if tls {
                "TLS: on".to_owned()
            } else if loopback {
                "TLS: off (loopback)".to_owned()
            } else {
                "TLS: off: purchases and the password cross the network in clear (rediss://)"
                    .to_owned()
            },
        ));
        report
    }
}
