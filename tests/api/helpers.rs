//! Test harness: a real `redis-server` per test on a free port, apps on port 0, typed helpers
//! for the HTTP API and for reading Redis state back.

use chrono::{Duration as ChronoDuration, Utc};
use flashsale::{
    config::Settings,
    startup::Application,
    store::local_server::{LocalRedisServer, LocalServerOptions},
};
use fred::prelude::*;
use reqwest::{Response, StatusCode};
use serde_json::Value as Json;
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};
use tempfile::TempDir;

/// A private Redis for one test, plus a plain client to inspect it.
pub struct TestRedis {
    server: Option<LocalRedisServer>,
    port: u16,
    dir: TempDir,
    pub client: Client,
}

impl TestRedis {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Self::spawn(None, &dir).await;
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
            client,
        }
    }

    async fn spawn(port: Option<u16>, dir: &TempDir) -> LocalRedisServer {
        LocalRedisServer::start_with(LocalServerOptions {
            port,
            data_dir: Some(dir.path().to_owned()),
            // DEBUG DIGEST lets tests prove that a request wrote nothing at all.
            extra_args: vec!["--enable-debug-command".into(), "yes".into()],
        })
        .await
        .expect("redis-server starts (is it installed?)")
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
        self.server = Some(Self::spawn(Some(self.port), &self.dir).await);
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

    /// A digest of the whole dataset: equal digests mean nothing was written.
    pub async fn digest(&self) -> String {
        self.client
            .custom(fred::cmd!("DEBUG"), vec!["DIGEST"])
            .await
            .expect("DEBUG DIGEST")
    }

    pub async fn stock(&self, sale: &str) -> Option<i64> {
        self.client
            .get(format!("sale:{{{sale}}}:stock"))
            .await
            .unwrap()
    }

    pub async fn buyers(&self, sale: &str) -> BTreeMap<String, String> {
        self.client
            .hgetall(format!("sale:{{{sale}}}:buyers"))
            .await
            .unwrap()
    }

    pub async fn config(&self, sale: &str) -> BTreeMap<String, String> {
        self.client
            .hgetall(format!("sale:{{{sale}}}:config"))
            .await
            .unwrap()
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

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// A running app instance.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

/// The environment every test app starts from: a live sale of 100 units that began a minute
/// ago, the per-IP limit off (all test traffic comes from 127.0.0.1).
pub fn base_env(redis: &TestRedis) -> BTreeMap<String, String> {
    let now = Utc::now();
    BTreeMap::from(
        [
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", "0".to_owned()),
            ("REDIS_URL", redis.url()),
            ("RATE_LIMIT_PER_SECOND", "0".to_owned()),
            ("REDIS_TIMEOUT_MS", "500".to_owned()),
            ("SALE_PRODUCT_NAME", "Test sneaker".to_owned()),
            ("SALE_TOTAL_STOCK", "100".to_owned()),
            (
                "SALE_START",
                (now - ChronoDuration::minutes(1)).to_rfc3339(),
            ),
            ("SALE_END", (now + ChronoDuration::hours(1)).to_rfc3339()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    )
}

/// An app with the base environment.
pub async fn spawn_app(redis: &TestRedis) -> TestApp {
    spawn_app_with(redis, &[]).await
}

/// An app with the base environment plus `overrides`; an empty value unsets a variable.
pub async fn spawn_app_with(redis: &TestRedis, overrides: &[(&str, &str)]) -> TestApp {
    let mut env = base_env(redis);
    for (name, value) in overrides {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    try_spawn_app(env).await.expect("app starts")
}

/// An app with no sale configured (the base environment's `SALE_*` unset).
pub async fn spawn_app_without_sale(redis: &TestRedis) -> TestApp {
    let no_sale = [
        ("SALE_TOTAL_STOCK", ""),
        ("SALE_START", ""),
        ("SALE_END", ""),
        ("SALE_PRODUCT_NAME", ""),
    ];
    spawn_app_with(redis, &no_sale).await
}

pub async fn try_spawn_app(env: BTreeMap<String, String>) -> Result<TestApp, String> {
    let mut settings = Settings::from_vars(env).map_err(|e| e.to_string())?;
    settings.workers = Some(1);
    let app = Application::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    Ok(TestApp {
        address,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
        handle,
    })
}

/// Polls `GET /health/ready` on a port until it answers 200 (bounded); whether it did.
pub async fn wait_until_ready(port: u16) -> bool {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        let ready = http
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await;
        if ready.is_ok_and(|reply| reply.status() == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A response read whole: status, headers and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Json,
}

impl Reply {
    async fn read(response: Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("body is not JSON ({status}): {text:?}"));
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the SPEC's error shape: `{"success":false,"code","message"}` with this status.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        assert_eq!(self.body["success"], false, "{:?}", self.body);
        assert_eq!(self.code(), code, "{:?}", self.body);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{:?}",
            self.body
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn status(&self) -> Reply {
        Reply::read(
            self.http
                .get(self.url("/api/sale/status"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn purchase(&self, user: &str) -> Reply {
        let body = serde_json::json!({ "userId": user });
        Reply::read(
            self.http
                .post(self.url("/api/sale/purchase"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn purchase_with_key(&self, user: &str, key: &str) -> Reply {
        let body = serde_json::json!({ "userId": user });
        let request = self
            .http
            .post(self.url("/api/sale/purchase"))
            .header("Idempotency-Key", key);
        Reply::read(request.json(&body).send().await.unwrap()).await
    }

    pub async fn user(&self, user: &str) -> Reply {
        Reply::read(
            self.http
                .get(self.url(&format!("/api/sale/user/{user}")))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::read(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    /// A purchase with a raw body and content type, for malformed input.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self.http.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    /// A CORS preflight for a purchase from `origin`.
    pub async fn preflight(
        &self,
        origin: &str,
        request_headers: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(reqwest::Method::OPTIONS, self.url("/api/sale/purchase"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST");
        if let Some(headers) = request_headers {
            request = request.header("Access-Control-Request-Headers", headers);
        }
        request.send().await.unwrap()
    }

    /// `GET /api/sale/status` from a browser page on `origin`.
    pub async fn status_from_origin(&self, origin: &str) -> reqwest::Response {
        self.http
            .get(self.url("/api/sale/status"))
            .header("Origin", origin)
            .send()
            .await
            .unwrap()
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

// ---- the binary, run as a user runs it ----

pub fn flashsale() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flashsale"));
    // A clean environment: no REDIS_URL, no SALE_* from the developer's shell.
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

/// Reads JSON log lines until `message` appears; returns all lines read.
pub fn wait_for_log(child: &mut Child, message: &str) -> Vec<serde_json::Value> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining after the caller stops listening, so the child never hits a broken pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("log line is JSON: {line}"));
        let done = json["message"] == message;
        lines.push(json);
        if done {
            return lines;
        }
    }
    panic!("no {message:?} in the log: {lines:?}");
}

pub fn is_alive(pid: u64) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}
