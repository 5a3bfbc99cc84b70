//! `flashsale doctor`: run as an operator runs it, against a real Redis set up right, set up
//! wrong (eviction, no AOF, scripts refused by an ACL) and away.

use crate::helpers::{flashsale, TestRedis};

/// Runs `flashsale doctor` against `url`: its exit code and what it printed.
fn doctor(url: &str) -> (i32, String) {
    let out = flashsale()
        .arg("doctor")
        .env("REDIS_URL", url)
        .env("REDIS_TIMEOUT_MS", "500")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn a_redis_set_up_right_passes_and_one_that_evicts_fails() {
    // Arrange: AOF with appendfsync always, noeviction.
    let redis = TestRedis::start_with(&["--appendonly", "yes", "--appendfsync", "always"]).await;
    redis.config_set("maxmemory-policy", "noeviction").await;

    // Act
    let (code, out) = doctor(&redis.url());

    // Assert
    assert_eq!(code, 0, "{out}");
    for line in [
        "ok    connected, round trip ",
        "ok    scripts: SCRIPT LOAD and EVALSHA allowed",
        "ok    maxmemory-policy noeviction, maxmemory unlimited",
        "ok    persistence: AOF on, appendfsync always",
        "ok    role master, 0 replica(s) connected",
        "ok    TLS: off (loopback)",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
    assert!(out.ends_with("0 blocker(s), 0 warning(s)\n"), "{out}");

    // The same Redis, now evicting and without AOF.
    redis.config_set("maxmemory-policy", "allkeys-lru").await;
    redis.config_set("appendonly", "no").await;
    let (code, out) = doctor(&redis.url());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  maxmemory-policy allkeys-lru: eviction can delete"),
        "{out}"
    );
    assert!(out.contains("warn  persistence: AOF off"), "{out}");
    assert!(out.ends_with("1 blocker(s), 1 warning(s)\n"), "{out}");
}

#[tokio::test]
async fn scripts_refused_by_an_acl_and_a_redis_that_is_away_are_blockers() {
    let redis = TestRedis::start().await;
    let url = redis
        .url_without("noscripts", &["script", "evalsha", "eval"])
        .await;

    let (code, out) = doctor(&url);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  scripts: SCRIPT LOAD refused"), "{out}");
    assert!(
        !out.contains("noscripts-a-long-password"),
        "the password is never shown"
    );

    // Nothing listens on port 1.
    let (code, out) = doctor("redis://127.0.0.1:1");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  cannot reach Redis"), "{out}");
}
