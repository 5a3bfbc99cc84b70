//! App instances on port 0 with typed helpers for the HTTP API, and the replies they read.

use super::redis::TestRedis;
use chrono::{Duration as ChronoDuration, Utc};
use flashsale::{config::Settings, startup::Application};
use reqwest::{Response, StatusCode};
use serde_json::Value as Json;
use std::{collections::BTreeMap, time::Duration};

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
            // Every script call of every test checks that each key it touches is in KEYS.
            ("REDIS_SCRIPT_KEY_CHECK", "true".to_owned()),
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
    log_errors();
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

/// Logs the in-process apps' ERROR lines (a 500's cause, a bad record) through the test
/// harness, which shows them beside a failing test's assertion and swallows them otherwise:
/// without a subscriber, a rare 500 under a fault leaves nothing to read. `TEST_LOG` takes a
/// `RUST_LOG`-style filter for more.
fn log_errors() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .with_ansi(false)
            .try_init();
    });
}

/// A response read whole: status, headers and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Json,
}

impl Reply {
    pub async fn read(response: Response) -> Self {
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

    /// A purchase in a named sale, through `/api/sales/{sale}/purchase`.
    pub async fn purchase_in(&self, sale: &str, user: &str) -> Reply {
        let body = serde_json::json!({ "userId": user });
        let url = self.url(&format!("/api/sales/{sale}/purchase"));
        Reply::read(self.http.post(url).json(&body).send().await.unwrap()).await
    }

    /// A purchase in a named sale with an `Idempotency-Key`.
    pub async fn purchase_in_with_key(&self, sale: &str, user: &str, key: &str) -> Reply {
        let body = serde_json::json!({ "userId": user });
        let url = self.url(&format!("/api/sales/{sale}/purchase"));
        let request = self.http.post(url).header("Idempotency-Key", key);
        Reply::read(request.json(&body).send().await.unwrap()).await
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

    /// `GET /metrics` as text (no token).
    pub async fn metrics_text(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
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
