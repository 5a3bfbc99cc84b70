//! What a hostile client or a careless deployment could do, and what stops it (README,
//! Security): odd methods that would grow metrics and logs, one client holding every event
//! stream, spoofed client addresses, guessed tokens, credentials in logs, spreadsheet formulas
//! in exports, a cursor Redis refuses, and a key-set URL that redirects or never ends.

use crate::helpers::{
    flashsale, spawn_app_with, try_spawn_app, wait_until_ready, Reply, TestApp, TestRedis,
};
use actix_web::{web, App, HttpResponse, HttpServer};
use flashsale::store::local_server::{free_port, LocalRedisServer};
use futures::StreamExt;
use std::{
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const ADMIN: &str = "an-admin-token-for-tests";

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn request_series(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|line| line.starts_with("flashsale_http_requests_total{"))
        .count()
}

/// Sends `count` requests with made-up methods of about 1 KB, half to a route that exists
/// (405) and half to one that does not (404), 32 at a time.
async fn odd_methods(http: &reqwest::Client, base: &str, from: usize, count: usize) {
    let padding = "X".repeat(1_000);
    let requests = futures::stream::iter(from..from + count).map(|n| {
        let method = reqwest::Method::from_bytes(format!("{padding}{n}").as_bytes()).unwrap();
        let path = if n % 2 == 0 {
            "/api/sale/status"
        } else {
            "/nope"
        };
        http.request(method, format!("{base}{path}")).send()
    });
    let answers: Vec<_> = requests.buffer_unordered(32).collect().await;
    for answer in answers {
        assert!(
            matches!(answer.unwrap().status().as_u16(), 404 | 405),
            "an odd method is a 404 or a 405"
        );
    }
}

/// The binary, as deployed, with its own Redis, JSON logs on a pipe and `env` on top.
struct Binary {
    child: std::process::Child,
    port: u16,
    log: std::sync::mpsc::Receiver<String>,
    _redis: LocalRedisServer,
}

impl Binary {
    async fn start(env: &[(&str, &str)]) -> Self {
        let redis = LocalRedisServer::start().await.unwrap();
        let port = free_port().unwrap();
        let mut command = flashsale();
        command
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("REDIS_URL", format!("redis://127.0.0.1:{}", redis.port()))
            .env("SALE_TOTAL_STOCK", "3")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let log = crate::helpers::collect_stdout(&mut child);
        assert!(wait_until_ready(port).await);
        Self {
            child,
            port,
            log,
            _redis: redis,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops it (SIGTERM) and returns all it logged.
    fn stop(mut self) -> String {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap();
        self.log.recv_timeout(Duration::from_secs(10)).unwrap()
    }
}

#[tokio::test]
async fn ten_thousand_odd_methods_leave_the_series_the_logs_and_the_memory_flat() {
    // Arrange
    let binary = Binary::start(&[("RATE_LIMIT_PER_SECOND", "0")]).await;
    let http = reqwest::Client::new();
    let base = binary.url("");
    let metrics = || async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };

    // Act: a warm-up (its own scrape included), then the measured ten thousand.
    odd_methods(&http, &base, 0, 1_000).await;
    metrics().await;
    let pid = binary.child.id();
    let (series_before, rss_before) = (request_series(&metrics().await), rss_kb(pid));
    odd_methods(&http, &base, 1_000, 10_000).await;
    let after = metrics().await;
    let rss_after = rss_kb(pid);
    let log = binary.stop();

    // Assert: one `OTHER` series per route and status, memory flat, no log line carrying a
    // method (ten thousand distinct ones, 1 KB each, were sent).
    assert_eq!(request_series(&after), series_before, "{after}");
    assert!(after.contains(r#"method="OTHER""#), "{after}");
    assert!(after.len() < 100_000, "/metrics is {} bytes", after.len());
    assert!(
        rss_after < rss_before + 8 * 1024,
        "RSS grew from {rss_before} kB to {rss_after} kB"
    );
    assert!(!log.contains("XXXXXXXXXX"), "a method reached the log");
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a log line of {longest} bytes");
}

#[tokio::test]
async fn credentials_never_reach_the_log_and_wrong_tokens_are_logged_at_a_bounded_rate() {
    // Arrange: a webhook URL with a password and a token in its query.
    let binary = Binary::start(&[
        ("ADMIN_TOKEN", ADMIN),
        (
            "ORDER_WEBHOOK_URL",
            "http://hooks:hunter2-password@127.0.0.1:9/orders?token=s3cret-query-token",
        ),
        ("ORDER_WEBHOOK_SECRET", "whsec-0123456789abcdef"),
    ])
    .await;
    let http = reqwest::Client::new();

    // Act: thirty guesses at the admin token from one address.
    let mut statuses = Vec::new();
    for n in 0..30 {
        let reply = http
            .get(binary.url("/api/admin/sales"))
            .bearer_auth(format!("guess-number-{n:04}-of-thirty"))
            .send()
            .await
            .unwrap();
        statuses.push(reply.status().as_u16());
    }
    let log = binary.stop();

    // Assert
    assert_eq!(&statuses[..10], [401; 10]);
    assert_eq!(&statuses[10..], [429; 20]);
    let refusals = log
        .lines()
        .filter(|line| line.contains("missing or wrong bearer token"))
        .count();
    assert_eq!(refusals, 10, "one log line per counted failure, no more");
    let on = log
        .lines()
        .find(|line| line.contains("order webhooks on"))
        .expect("the start-up line");
    assert!(
        on.contains("hooks:***@127.0.0.1:9/orders?token=***"),
        "{on}"
    );
    assert!(!log.contains("hunter2-password") && !log.contains("s3cret-query-token"));
}

#[tokio::test]
async fn after_ten_wrong_tokens_an_address_is_refused_before_its_token_is_compared() {
    // Arrange
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[
            ("ADMIN_TOKEN", ADMIN),
            ("METRICS_TOKEN", "a-metrics-token-for-tests"),
        ],
    )
    .await;
    let admin = |token: &str| {
        app.http
            .get(app.url("/api/admin/sales"))
            .bearer_auth(token)
            .send()
    };

    // Act: ten wrong tokens spread over /metrics and the admin API, then the right ones.
    for n in 0..5 {
        let metrics = app
            .http
            .get(app.url("/metrics"))
            .bearer_auth(format!("wrong-{n}"))
            .send()
            .await
            .unwrap();
        assert_eq!(metrics.status(), 401);
        assert_eq!(admin(&format!("wrong-{n}")).await.unwrap().status(), 401);
    }
    let right_admin = Reply::read(admin(ADMIN).await.unwrap()).await;
    let right_metrics = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("a-metrics-token-for-tests")
        .send()
        .await
        .unwrap();

    // Assert: even the right token waits out the minute, so a correct guess looks the same.
    right_admin.assert_error(429, "RATE_LIMITED");
    let retry_after: u64 = right_admin.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(right_metrics.status(), 429);
}

/// `count` event streams opened from this test's one address; their answers' statuses.
async fn open_streams(app: &TestApp, count: usize) -> (Vec<reqwest::Response>, Vec<u16>) {
    let mut open = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..count {
        let reply = app
            .http
            .get(app.url("/api/sale/events"))
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        statuses.push(reply.status().as_u16());
        if reply.status() == 200 {
            open.push(reply);
        }
    }
    (open, statuses)
}

#[tokio::test]
async fn one_client_cannot_hold_every_connection_with_event_streams() {
    // Arrange: eight connections; streams default to four fifths of them.
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("MAX_CONNECTIONS", "8")]).await;

    // Act: eight streams from one address, then a purchase.
    let (_open, statuses) = open_streams(&app, 8).await;
    let started = Instant::now();
    let bought = app.purchase("while-streaming").await;

    // Assert
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 503, 503]);
    assert_eq!(bought.code(), "PURCHASED");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the purchase waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn streams_per_client_address_are_capped() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("SSE_MAX_STREAMS_PER_CLIENT", "2")]).await;

    let (open, statuses) = open_streams(&app, 3).await;
    drop(open);
    // The slots come back when the streams close.
    let deadline = Instant::now() + Duration::from_secs(3);
    let again = loop {
        let (open, statuses) = open_streams(&app, 2).await;
        if statuses == [200, 200] || Instant::now() > deadline {
            break (open, statuses);
        }
        drop(open);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(again.1, [200, 200]);
}

#[tokio::test]
async fn only_the_entry_the_trusted_proxy_added_keys_the_per_ip_limit() {
    // Arrange: behind one proxy that appends the peer it saw to X-Forwarded-For.
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[
            ("CLIENT_IP_HEADER", "X-Forwarded-For"),
            ("RATE_LIMIT_PER_SECOND", "1"),
            ("RATE_LIMIT_BURST", "5"),
        ],
    )
    .await;

    // Act: one client rotating the entry it writes itself.
    let mut allowed = 0;
    for n in 0..49 {
        let reply = app
            .http
            .get(app.url("/api/sale/status"))
            .header(
                "X-Forwarded-For",
                format!("10.0.{}.{}, 203.0.113.7", n / 250, n % 250),
            )
            .send()
            .await
            .unwrap();
        allowed += usize::from(reply.status() == 200);
    }

    // Assert
    assert_eq!(allowed, 5, "the burst of one client, not 49 clients");
}

#[tokio::test]
async fn cells_a_spreadsheet_would_run_are_quoted_in_the_buyers_export() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("ADMIN_TOKEN", ADMIN)]).await;
    for user in ["+4512345678", "-2+3", "@cmd", "plain"] {
        assert_eq!(app.purchase(user).await.code(), "PURCHASED");
    }

    let csv = app
        .http
        .get(app.url("/api/admin/sales/default/buyers"))
        .bearer_auth(ADMIN)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let users: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap())
        .collect();
    assert_eq!(users, ["'+4512345678", "'-2+3", "'@cmd", "plain"]);
}

#[tokio::test]
async fn the_last_possible_cursor_is_a_400_not_a_redis_error() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("ADMIN_TOKEN", ADMIN)]).await;
    let digest = redis.digest().await;

    for page in ["buyers", "orders/dead"] {
        let reply = app
            .http
            .get(app.url(&format!(
                "/api/admin/sales/default/{page}?cursor=18446744073709551615-18446744073709551615"
            )))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        Reply::read(reply)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    assert_eq!(redis.digest().await, digest);
}

/// A local key-set endpoint: `/redirect` answers 302 to `/jwks.json`, `/huge` a 300 KB body.
fn key_server() -> (String, actix_web::dev::ServerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/redirect",
                web::get().to(|| async {
                    HttpResponse::Found()
                        .insert_header(("Location", "/jwks.json"))
                        .finish()
                }),
            )
            .route(
                "/jwks.json",
                web::get()
                    .to(|| async { HttpResponse::Ok().json(serde_json::json!({"keys": []})) }),
            )
            .route(
                "/huge",
                web::get().to(|| async {
                    let padding = "x".repeat(300 * 1024);
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(format!(r#"{{"keys":[],"padding":"{padding}"}}"#))
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (base, handle)
}

#[tokio::test]
async fn a_key_set_that_redirects_or_never_ends_is_refused_at_start_up() {
    let redis = TestRedis::start().await;
    let (base, server) = key_server();

    let mut errors = Vec::new();
    for path in ["/redirect", "/huge"] {
        let mut env = crate::helpers::base_env(&redis);
        env.insert("AUTH_JWKS_URL".into(), format!("{base}{path}"));
        let started = try_spawn_app(env).await;
        errors.push(started.err().expect("start-up refuses the key set"));
    }

    assert!(errors[0].contains("redirect"), "{}", errors[0]);
    assert!(errors[1].contains("larger than"), "{}", errors[1]);
    server.stop(false).await;
}
