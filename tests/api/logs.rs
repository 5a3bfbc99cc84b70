//! Logs as an operator reads them: JSON lines, the request id on a failed request's line, and
//! no secrets anywhere.

use crate::helpers::{flashsale, wait_until_ready};
use flashsale::store::local_server::{free_port, LocalRedisServer, LocalServerOptions};
use std::{
    io::Read,
    process::{Command, Stdio},
    time::Duration,
};

#[tokio::test]
async fn a_failed_request_is_logged_as_json_with_its_request_id_and_no_secret_is_logged() {
    // Arrange: a Redis that requires a password, and an admin token; neither may reach the log.
    let redis = LocalRedisServer::start_with(LocalServerOptions {
        extra_args: vec!["--requirepass".into(), "hunter2-redis-password".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let port = free_port().unwrap();
    let mut child = flashsale()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env(
            "REDIS_URL",
            format!("redis://:hunter2-redis-password@127.0.0.1:{}", redis.port()),
        )
        .env("ADMIN_TOKEN", "admin-token-that-must-stay-secret")
        .env("SALE_TOTAL_STOCK", "3")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = crate::helpers::collect_stdout(&mut child);
    assert!(wait_until_ready(port).await);
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/sale/purchase");

    // Act: one purchase, one malformed request; then stop the service to flush its log.
    http.post(&url)
        .json(&serde_json::json!({"userId": "logged"}))
        .send()
        .await
        .unwrap();
    let bad = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    let request_id = bad.headers()["x-request-id"].to_str().unwrap().to_owned();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let log = rx.recv_timeout(Duration::from_secs(10)).unwrap();

    // Assert
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let failure = lines
        .iter()
        .find(|line| line["span"]["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no line for request {request_id}: {log}"));
    assert_eq!(failure["level"], "WARN");
    assert_eq!(failure["span"]["path"], "/api/sale/purchase");
    assert_eq!(failure["span"]["status"], 400);
    assert_eq!(
        failure["span"]["sale_id"], "default",
        "the span names the sale"
    );
    assert!(
        !log.contains("hunter2-redis-password"),
        "the Redis password leaked into the log"
    );
    assert!(
        !log.contains("admin-token-that-must-stay-secret"),
        "the admin token leaked into the log"
    );
    assert!(
        log.contains(&format!("redis://127.0.0.1:{}", redis.port())),
        "the Redis address is logged"
    );
}

#[test]
fn pretty_logs_are_for_people() {
    let port = free_port().unwrap();
    let mut child = flashsale()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "pretty")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("REDIS_TIMEOUT_MS", "200")
        .env("REDIS_STARTUP_TIMEOUT_MS", "1000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();

    // Retried for the start-up timeout, then one clear line.
    assert!(!status.success(), "no Redis at port 1");
    assert!(
        out.contains("start-up failed") && !out.trim_start().starts_with('{'),
        "{out}"
    );
    assert!(out.contains("Redis not reachable yet; retrying"), "{out}");
    assert!(
        err.trim()
            .starts_with("flashsale: cannot reach Redis at redis://127.0.0.1:1 (tried for")
            && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_token_is_logged_with_its_reason_and_never_the_token() {
    // Arrange
    let redis = LocalRedisServer::start().await.unwrap();
    let port = free_port().unwrap();
    let secret = "a-test-secret-of-at-least-32-characters";
    let mut child = flashsale()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("REDIS_URL", redis.url())
        .env("SALE_TOTAL_STOCK", "3")
        .env("AUTH_JWT_SECRET", secret)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = crate::helpers::collect_stdout(&mut child);
    assert!(wait_until_ready(port).await);
    let now = chrono::Utc::now().timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({ "sub": "eve", "exp": now - 3600 }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();

    // Act
    let reply = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/sale/purchase"))
        .bearer_auth(&expired)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let log = rx.recv_timeout(Duration::from_secs(10)).unwrap();

    // Assert
    assert_eq!(reply.status(), 401);
    let refused = log
        .lines()
        .find(|line| line.contains("bearer token refused"))
        .unwrap_or_else(|| panic!("no refusal logged: {log}"));
    let refused: serde_json::Value = serde_json::from_str(refused).unwrap();
    assert_eq!(refused["level"], "INFO");
    assert!(
        refused["reason"].as_str().unwrap().contains("Expired"),
        "{refused}"
    );
    assert!(!log.contains(&expired), "the token leaked into the log");
    assert!(!log.contains(secret), "the secret leaked into the log");
}
