//! A real `redis-server` per test on a free port, and a plain client to read its state back
//! with the crate's own key names.

use flashsale::{
    domain::SaleId,
    store::{
        keys::SaleKeys,
        local_server::{LocalRedisServer, LocalServerOptions},
        RedisUrl, Store,
    },
};
use fred::prelude::*;
use std::{collections::BTreeMap, num::NonZeroUsize, process::Command, time::Duration};
use tempfile::TempDir;

/// The key names of a sale, as the service builds them.
pub fn keys(sale: &str) -> SaleKeys {
    SaleKeys::new(&SaleId::parse(sale).expect("a valid sale id"))
}

/// A sale's buyers as Redis holds them: every buyer bucket read (`sale:{ID}:buyers:<n>`).
/// Works on a plain client and on a cluster client alike (all buckets share the sale's slot).
pub async fn sale_buyers<C: HashesInterface + Sync>(
    client: &C,
    sale: &str,
) -> BTreeMap<String, String> {
    let keys = keys(sale);
    let buckets: Option<u32> = client.hget(keys.config(), "buyerBuckets").await.unwrap();
    let reads = (0..buckets.unwrap_or(0))
        .map(|n| client.hgetall::<BTreeMap<String, String>, _>(keys.buyer_bucket(n)));
    let mut buyers = BTreeMap::new();
    for bucket in futures::future::join_all(reads).await {
        buyers.extend(bucket.unwrap());
    }
    buyers
}

/// A sale's remaining stock as Redis holds it (totalStock − sold); `None` without the sale.
pub async fn sale_stock<C: HashesInterface + Sync>(client: &C, sale: &str) -> Option<i64> {
    let (total, sold): (Option<i64>, Option<i64>) = client
        .hmget(keys(sale).config(), vec!["totalStock", "sold"])
        .await
        .unwrap();
    Some(total? - sold?)
}

/// A private Redis for one test, plus a plain client to inspect it.
pub struct TestRedis {
    server: Option<LocalRedisServer>,
    port: u16,
    dir: TempDir,
    /// Arguments added to every start of this server (restarts too).
    args: Vec<String>,
    pub client: Client,
}

impl TestRedis {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server with extra `redis-server` arguments (`--appendonly yes`, `--replicaof …`).
    pub async fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        let server = Self::spawn(None, &dir, &args).await;
        let port = server.port();
        let config = Config::from_url(&format!("redis://127.0.0.1:{port}")).unwrap();
        let client = Builder::from_config(config)
            .with_performance_config(|perf| perf.default_command_timeout = Duration::from_secs(5))
            .set_policy(ReconnectPolicy::new_constant(0, 50))
            .build()
            .unwrap();
        client.init().await.expect("test client connects");
        Self {
            server: Some(server),
            port,
            dir,
            args,
            client,
        }
    }

    async fn spawn(port: Option<u16>, dir: &TempDir, args: &[String]) -> LocalRedisServer {
        // DEBUG DIGEST lets tests prove that a request wrote nothing at all.
        let mut extra_args = vec!["--enable-debug-command".to_owned(), "yes".to_owned()];
        extra_args.extend_from_slice(args);
        LocalRedisServer::start_with(LocalServerOptions {
            port,
            data_dir: Some(dir.path().to_owned()),
            extra_args,
        })
        .await
        .expect("redis-server starts (is it installed?)")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.server
            .as_ref()
            .and_then(LocalRedisServer::pid)
            .expect("redis is running")
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing, like a hung host.
    pub fn freeze(&self) {
        signal(self.pid(), "-STOP");
    }

    pub fn thaw(&self) {
        signal(self.pid(), "-CONT");
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// Starts Redis again on the same port and directory: it loads what `SAVE` wrote, with an
    /// empty script cache, as after a real restart or failover.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.server = Some(Self::spawn(Some(self.port), &self.dir, &self.args).await);
        self.wait_for_client().await;
    }

    async fn wait_for_client(&self) {
        for _ in 0..100 {
            if self.client.ping::<String>(None).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("test client did not reconnect");
    }

    pub async fn save(&self) {
        let _: () = self
            .client
            .custom(fred::cmd!("SAVE"), Vec::<String>::new())
            .await
            .unwrap();
    }

    /// `CONFIG SET name value`.
    pub async fn config_set(&self, name: &str, value: &str) {
        let _: () = self
            .client
            .custom(fred::cmd!("CONFIG"), vec!["SET", name, value])
            .await
            .unwrap();
    }

    /// A URL for a new ACL user that may run every command but `denied` (as a managed plan or
    /// an operator's ACL can forbid some), on every key and channel.
    pub async fn url_without(&self, user: &str, denied: &[&str]) -> String {
        let password = format!("{user}-a-long-password");
        let mut rules = vec![
            "SETUSER".to_owned(),
            user.to_owned(),
            "on".to_owned(),
            format!(">{password}"),
            "~*".to_owned(),
            "&*".to_owned(),
            "+@all".to_owned(),
        ];
        rules.extend(denied.iter().map(|command| format!("-{command}")));
        let _: () = self.client.custom(fred::cmd!("ACL"), rules).await.unwrap();
        format!("redis://{user}:{password}@127.0.0.1:{}", self.port())
    }

    /// A digest of the whole dataset: equal digests mean nothing was written.
    pub async fn digest(&self) -> String {
        self.client
            .custom(fred::cmd!("DEBUG"), vec!["DIGEST"])
            .await
            .expect("DEBUG DIGEST")
    }

    pub async fn stock(&self, sale: &str) -> Option<i64> {
        sale_stock(&self.client, sale).await
    }

    pub async fn buyers(&self, sale: &str) -> BTreeMap<String, String> {
        sale_buyers(&self.client, sale).await
    }

    /// `EVALSHA` calls this Redis has served so far (`INFO commandstats`).
    pub async fn evalsha_calls(&self) -> u64 {
        let info: String = self
            .client
            .info(Some(fred::types::InfoKind::CommandStats))
            .await
            .unwrap();
        info.lines()
            .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |calls| calls.parse().unwrap())
    }

    pub async fn config(&self, sale: &str) -> BTreeMap<String, String> {
        self.client.hgetall(keys(sale).config()).await.unwrap()
    }

    /// Redis's clock, in Unix milliseconds.
    pub async fn now_ms(&self) -> i64 {
        let time: Vec<String> = self
            .client
            .custom(fred::cmd!("TIME"), Vec::<String>::new())
            .await
            .unwrap();
        time[0].parse::<i64>().unwrap() * 1000 + time[1].parse::<i64>().unwrap() / 1000
    }

    /// The service's own store on this Redis, connected and with its scripts loaded.
    pub async fn store(&self) -> Store {
        let url = RedisUrl::parse(&self.url()).unwrap();
        let store =
            Store::new(&url, Duration::from_secs(2), NonZeroUsize::MIN).with_key_check(true);
        store.connect_and_wait().await.unwrap();
        store.load_scripts().await.unwrap();
        store
    }

    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .client
            .custom(fred::cmd!("KEYS"), vec!["*"])
            .await
            .unwrap();
        keys.sort();
        keys
    }
}

/// Sends a signal to a process (`-STOP`, `-CONT`, `-TERM`).
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}
