//! Redis Cluster: a real three-primary cluster on loopback, `redis-cluster://` with a comma list.

use crate::helpers::{try_spawn_app, TestRedis};
use flashsale::store::local_server::{LocalRedisServer, LocalServerOptions};
use fred::prelude::*;
use std::{net::TcpListener, process::Command, time::Duration};

/// Three primaries, slots split by `redis-cli --cluster create`.
struct TestCluster {
    _nodes: Vec<LocalRedisServer>,
    _dirs: Vec<tempfile::TempDir>,
    ports: Vec<u16>,
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

impl TestCluster {
    async fn start() -> Self {
        let (mut nodes, mut dirs, mut ports) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
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
            .args(["--cluster-replicas", "0", "--cluster-yes"])
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
        cluster.wait_until_ok().await;
        cluster
    }

    async fn wait_until_ok(&self) {
        for _ in 0..100 {
            let all_ok = self.ports.iter().all(|port| {
                Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "cluster", "info"])
                    .output()
                    .is_ok_and(|out| {
                        String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok")
                    })
            });
            if all_ok {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cluster did not reach cluster_state:ok");
    }

    /// The URL a deployer writes: two of the nodes, comma-separated; fred discovers the rest.
    fn url(&self) -> String {
        format!(
            "redis-cluster://127.0.0.1:{},127.0.0.1:{}",
            self.ports[0], self.ports[1]
        )
    }

    async fn client(&self) -> Client {
        let client = Client::new(
            Config::from_url(&self.url().replace(",", "?node=")).unwrap(),
            None,
            None,
            None,
        );
        client.init().await.unwrap();
        client
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_in_different_slots_sell_through_one_cluster() {
    // Arrange: two sales whose hash tags fall in different slots, so on different primaries.
    let cluster = TestCluster::start().await;
    let redis = TestRedis::start().await; // only for base_env's other variables
    let mut apps = Vec::new();
    for (sale, stock) in [("spring", "3"), ("autumn", "2")] {
        let mut env = crate::helpers::base_env(&redis);
        env.insert("REDIS_URL".into(), cluster.url());
        env.insert("SALE_ID".into(), sale.into());
        env.insert("SALE_TOTAL_STOCK".into(), stock.into());
        apps.push(try_spawn_app(env).await.unwrap());
    }
    let slot = |sale: &str| fred::util::redis_keyslot(format!("sale:{{{sale}}}:stock").as_bytes());
    assert_ne!(
        slot("spring") / 5462,
        slot("autumn") / 5462,
        "the two sales live on different primaries"
    );

    // Act
    let mut codes = Vec::new();
    for user in ["c1", "c2", "c3", "c4"] {
        codes.push((
            apps[0].purchase(user).await.code().to_owned(),
            apps[1].purchase(user).await.code().to_owned(),
        ));
    }

    // Assert
    let spring: Vec<_> = codes.iter().map(|c| c.0.as_str()).collect();
    let autumn: Vec<_> = codes.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(spring, ["PURCHASED", "PURCHASED", "PURCHASED", "SOLD_OUT"]);
    assert_eq!(autumn, ["PURCHASED", "PURCHASED", "SOLD_OUT", "SOLD_OUT"]);
    let client = cluster.client().await;
    let spring_stock: i64 = client
        .get(crate::helpers::keys("spring").stock())
        .await
        .unwrap();
    let autumn_buyers: i64 = client
        .hlen(crate::helpers::keys("autumn").buyers())
        .await
        .unwrap();
    assert_eq!((spring_stock, autumn_buyers), (0, 2));
    assert_eq!(apps[1].user("c2").await.body["orderNumber"], 2);
    assert_eq!(apps[0].status().await.body["status"], "sold_out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_script_flush_on_every_primary_purchases_reload_and_work() {
    let cluster = TestCluster::start().await;
    let redis = TestRedis::start().await;
    let mut env = crate::helpers::base_env(&redis);
    env.insert("REDIS_URL".into(), cluster.url());
    let app = try_spawn_app(env).await.unwrap();
    app.purchase("before").await;

    for port in &cluster.ports {
        let flushed = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "script", "flush"])
            .status()
            .unwrap();
        assert!(flushed.success());
    }
    let reply = app.purchase("after").await;

    assert_eq!(reply.code(), "PURCHASED", "{:?}", reply.body);
    assert_eq!(reply.body["orderNumber"], 2);
}
