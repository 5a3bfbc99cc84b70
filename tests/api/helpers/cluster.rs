//! A real local Redis Cluster: three primaries (`redis-server --cluster-enabled yes`, joined with
//! `redis-cli --cluster create`), optionally a replica of each, and the operations the tests
//! put it through: which node owns a slot, moving a slot, a manual failover.

use flashsale::store::local_server::{LocalRedisServer, LocalServerOptions};
use fred::prelude::*;
use std::{
    net::TcpListener,
    process::Command,
    time::{Duration, Instant},
};

/// The slot of a sale's keys (their hash tag is the sale id).
pub fn slot_of_sale(sale: &str) -> u16 {
    fred::util::redis_keyslot(super::keys(sale).config().as_bytes())
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub id: String,
    pub port: u16,
    pub primary: bool,
    /// For a replica, the id of its primary.
    pub primary_id: Option<String>,
    pub slots: Vec<(u16, u16)>,
}

pub struct TestCluster {
    _nodes: Vec<LocalRedisServer>,
    _dirs: Vec<tempfile::TempDir>,
    pub ports: Vec<u16>,
}

/// A port whose cluster bus port (port + 10000) is free too.
fn cluster_port() -> u16 {
    for _ in 0..200 {
        let port = 20_000 + rand::random::<u16>() % 10_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port pair for a cluster node");
}

/// `redis-cli -p <port> <args…>`, its stdout.
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed (redis-tools)");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl TestCluster {
    /// Three primaries and `replicas` replicas of each (0 or 1).
    pub async fn start(replicas: usize) -> Self {
        let (mut nodes, mut dirs, mut ports) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 * (1 + replicas) {
            let dir = tempfile::tempdir().unwrap();
            let node = LocalRedisServer::start_with(LocalServerOptions {
                port: Some(cluster_port()),
                data_dir: Some(dir.path().to_owned()),
                extra_args: ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
                    .map(str::to_owned)
                    .to_vec(),
            })
            .await
            .unwrap();
            ports.push(node.port());
            nodes.push(node);
            dirs.push(dir);
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli is installed (redis-tools)");
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self {
            _nodes: nodes,
            _dirs: dirs,
            ports,
        };
        cluster.wait_until_settled(replicas).await;
        cluster
    }

    /// Until every node says `cluster_state:ok`, knows every other node, and every replica is
    /// in sync with its primary.
    pub async fn wait_until_settled(&self, replicas_per_primary: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let states_ok = self
                .ports
                .iter()
                .all(|port| cli(*port, &["cluster", "info"]).contains("cluster_state:ok"));
            let nodes = self.nodes_info();
            let replicas_up = nodes.iter().filter(|n| !n.primary).all(|replica| {
                cli(replica.port, &["info", "replication"]).contains("master_link_status:up")
            });
            let count_ok = nodes.iter().filter(|n| !n.primary).count() == 3 * replicas_per_primary;
            if states_ok && replicas_up && count_ok && nodes.len() == self.ports.len() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cluster did not settle: {:?}", self.nodes_info());
    }

    /// The URL a deployer writes: two of the nodes, comma-separated; fred discovers the rest.
    pub fn url(&self) -> String {
        format!(
            "redis-cluster://127.0.0.1:{},127.0.0.1:{}",
            self.ports[0], self.ports[1]
        )
    }

    /// A plain cluster client to read state back.
    pub async fn client(&self) -> Client {
        let url = format!(
            "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}",
            self.ports[0], self.ports[1]
        );
        let client = Builder::from_config(Config::from_url(&url).unwrap())
            .with_performance_config(|perf| perf.default_command_timeout = Duration::from_secs(5))
            .build()
            .unwrap();
        client.init().await.unwrap();
        client
    }

    /// `CLUSTER NODES` as one node sees it.
    pub fn nodes_info(&self) -> Vec<NodeInfo> {
        let text = cli(self.ports[0], &["cluster", "nodes"]);
        text.lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let port = fields
                    .get(1)?
                    .split(['@', ','])
                    .next()?
                    .rsplit(':')
                    .next()?;
                let flags = fields.get(2)?;
                if flags.contains("fail") && !flags.contains("pfail") {
                    return None;
                }
                let slots = fields
                    .iter()
                    .skip(8)
                    .filter(|slot| !slot.starts_with('['))
                    .filter_map(|range| match range.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => range.parse().ok().map(|slot| (slot, slot)),
                    })
                    .collect();
                Some(NodeInfo {
                    id: fields[0].to_owned(),
                    port: port.parse().ok()?,
                    primary: flags.contains("master"),
                    primary_id: (fields.get(3)? != &"-").then(|| fields[3].to_owned()),
                    slots,
                })
            })
            .collect()
    }

    /// The primary that serves `slot` now.
    pub fn owner_of(&self, slot: u16) -> NodeInfo {
        self.nodes_info()
            .into_iter()
            .find(|node| node.primary && node.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
    }

    pub fn primaries(&self) -> Vec<NodeInfo> {
        self.nodes_info()
            .into_iter()
            .filter(|n| n.primary)
            .collect()
    }

    /// `count` sale ids (`prefix-N`) whose slots fall on each primary, in turn.
    pub fn sales_on_every_primary(&self, prefix: &str, per_primary: usize) -> Vec<String> {
        let primaries = self.primaries();
        let mut chosen: Vec<Vec<String>> = vec![Vec::new(); primaries.len()];
        for n in 0.. {
            if chosen.iter().all(|sales| sales.len() == per_primary) {
                break;
            }
            let sale = format!("{prefix}-{n}");
            let owner = self.owner_of(slot_of_sale(&sale));
            let index = primaries.iter().position(|p| p.id == owner.id).unwrap();
            if chosen[index].len() < per_primary {
                chosen[index].push(sale);
            }
        }
        chosen.concat()
    }

    /// Moves `slot` to the primary `to`, the way `redis-cli --cluster reshard` does: IMPORTING
    /// and MIGRATING, the keys moved a few at a time with MIGRATE (slowly, so that purchases
    /// run during the move), then the new owner announced to every primary.
    pub async fn migrate_slot(&self, slot: u16, to: &NodeInfo) {
        let from = self.owner_of(slot);
        let slot_text = slot.to_string();
        assert_eq!(
            cli(
                to.port,
                &["cluster", "setslot", &slot_text, "importing", &from.id]
            ),
            "OK"
        );
        assert_eq!(
            cli(
                from.port,
                &["cluster", "setslot", &slot_text, "migrating", &to.id]
            ),
            "OK"
        );
        loop {
            let keys = cli(from.port, &["cluster", "getkeysinslot", &slot_text, "2"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let port = to.port.to_string();
            let mut args = vec!["migrate", "127.0.0.1", &port, "", "0", "5000", "keys"];
            args.extend(keys.iter().copied());
            let moved = cli(from.port, &args);
            assert!(moved == "OK" || moved == "NOKEY", "MIGRATE: {moved}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for node in self.primaries() {
            cli(
                node.port,
                &["cluster", "setslot", &slot_text, "node", &to.id],
            );
        }
    }

    /// A manual `CLUSTER FAILOVER` of the primary serving `slot`: its replica takes over once
    /// it has every write (the safe kind). Returns the new primary.
    pub async fn fail_over(&self, slot: u16) -> NodeInfo {
        let old = self.owner_of(slot);
        let replica = self
            .nodes_info()
            .into_iter()
            .find(|node| node.primary_id.as_deref() == Some(old.id.as_str()))
            .expect("the primary has a replica");
        assert_eq!(cli(replica.port, &["cluster", "failover"]), "OK");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let owner = self.owner_of(slot);
            if owner.id == replica.id && cli(replica.port, &["role"]).starts_with("master") {
                return owner;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the replica did not take over: {:?}", self.nodes_info());
    }
}
