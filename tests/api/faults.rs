//! Redis frozen, stopped, restarted or its script cache flushed: 503 while it lasts, then
//! purchases work again without restarting the service, and no retry takes a second unit.

use crate::helpers::{spawn_app_with, TestApp, TestRedis};
use fred::prelude::*;
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 300;
/// Generous on purpose: this bounds a hang, it does not measure speed.
const MARGIN: Duration = Duration::from_millis(1500);

async fn app_with_short_timeout(redis: &TestRedis) -> TestApp {
    spawn_app_with(redis, &[("REDIS_TIMEOUT_MS", &TIMEOUT_MS.to_string())]).await
}

/// Retries until the answer is not 503, as a client would (bounded).
async fn purchase_until_answered(app: &TestApp, user: &str, key: &str) -> crate::helpers::Reply {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = app.purchase_with_key(user, key).await;
        if reply.status != 503 || Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_frozen_redis_gives_503_within_the_timeout_and_the_retry_takes_one_unit() {
    // Arrange
    let redis = TestRedis::start().await;
    let app = app_with_short_timeout(&redis).await;
    assert_eq!(app.purchase("warmup").await.code(), "PURCHASED");
    redis.freeze();

    // Act
    let started = Instant::now();
    let during = app.purchase_with_key("yuki", "yuki-1").await;
    let elapsed = started.elapsed();
    let ready = app.get("/health/ready").await;
    redis.thaw();
    let after = purchase_until_answered(&app, "yuki", "yuki-1").await;

    // Assert
    during.assert_error(503, "SERVICE_UNAVAILABLE");
    assert_eq!(during.header("retry-after"), Some("1"));
    assert!(
        elapsed < Duration::from_millis(TIMEOUT_MS) + MARGIN,
        "answered after {elapsed:?}"
    );
    ready.assert_error(503, "SERVICE_UNAVAILABLE");
    // The frozen call may have run once Redis thawed; either way the retry is told PURCHASED.
    assert_eq!(after.code(), "PURCHASED", "{:?}", after.body);
    assert_eq!(redis.stock("default").await, Some(98));
    assert_eq!(redis.buyers("default").await.len(), 2);
    assert_eq!(app.get("/health/ready").await.status, 200);
}

#[tokio::test]
async fn a_stopped_redis_gives_503_and_after_its_restart_purchases_work_again() {
    // Batched (the default) and each purchase alone take different paths to Redis.
    for batch_max in ["64", "1"] {
        // Arrange: persist what is there, as a production Redis with AOF or RDB would.
        let mut redis = TestRedis::start().await;
        let app = spawn_app_with(
            &redis,
            &[
                ("REDIS_TIMEOUT_MS", &TIMEOUT_MS.to_string()),
                ("PURCHASE_BATCH_MAX", batch_max),
            ],
        )
        .await;
        app.purchase("before").await;
        redis.save().await;
        redis.stop().await;

        // Act: purchases while Redis is down, then Redis back with the same data.
        let started = Instant::now();
        let during = app.purchase("zoe").await;
        let elapsed = started.elapsed();
        let users: Vec<String> = (0..16).map(|i| format!("down-{i}")).collect();
        let others =
            futures_util::future::join_all(users.iter().map(|u| app.purchase_with_key(u, u))).await;
        redis.restart().await; // same data, empty script cache
        let reconnected = Instant::now() + Duration::from_secs(15);
        while app.get("/health/ready").await.status != 200 && Instant::now() < reconnected {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Time for anything fred had kept queued to be written, had it kept any.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let buyers_after_restart = redis.buyers("default").await;
        let after = purchase_until_answered(&app, "zoe", "zoe-1").await;

        // Assert: every purchase of the outage was told 503, within the timeout, and none of
        // them was made later (nothing had been sent; the buyers were told "not now").
        during.assert_error(503, "SERVICE_UNAVAILABLE");
        for reply in &others {
            reply.assert_error(503, "SERVICE_UNAVAILABLE");
        }
        assert!(
            elapsed < Duration::from_millis(TIMEOUT_MS) + MARGIN,
            "answered after {elapsed:?}"
        );
        assert_eq!(
            buyers_after_restart.keys().collect::<Vec<_>>(),
            ["before"],
            "batch max {batch_max}"
        );
        assert_eq!(after.code(), "PURCHASED", "{:?}", after.body);
        assert_eq!(after.body["orderNumber"], 2);
        assert_eq!(redis.stock("default").await, Some(98));
        assert_eq!(app.get("/health/ready").await.status, 200);
    }
}

#[tokio::test]
async fn after_script_flush_purchases_reload_the_script_and_work() {
    let redis = TestRedis::start().await;
    let app = app_with_short_timeout(&redis).await;
    app.purchase("a1").await;

    let _: () = redis
        .client
        .custom(fred::cmd!("SCRIPT"), vec!["FLUSH"])
        .await
        .unwrap();
    let reply = app.purchase("a2").await;
    let status = app.status().await;

    assert_eq!(reply.code(), "PURCHASED", "{:?}", reply.body);
    assert_eq!(status.status, 200);
    assert_eq!(redis.stock("default").await, Some(98));
}

#[tokio::test]
async fn readiness_reloads_scripts_that_redis_lost() {
    let redis = TestRedis::start().await;
    let app = app_with_short_timeout(&redis).await;
    let _: () = redis
        .client
        .custom(fred::cmd!("SCRIPT"), vec!["FLUSH"])
        .await
        .unwrap();

    let ready = app.get("/health/ready").await;

    assert_eq!(ready.status, 200);
    // The script as the app runs it: with the key check in front (REDIS_SCRIPT_KEY_CHECK).
    let sha = crate::helpers::checked(flashsale::store::scripts::PURCHASE_SOURCE)
        .sha1()
        .to_string();
    let exists: Vec<bool> = redis.client.script_exists(vec![sha]).await.unwrap();
    assert_eq!(exists, [true]);
}

/// Polls `/health` (bounded) until `check` holds; returns the last body.
async fn health_until(
    app: &TestApp,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let health = app.get("/health").await;
        if check(&health.body) || Instant::now() > deadline {
            return health.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn has_reason(health: &serde_json::Value, text: &str) -> bool {
    health["reasons"].as_array().is_some_and(|reasons| {
        reasons
            .iter()
            .any(|r| r.as_str().unwrap_or("").contains(text))
    })
}

#[tokio::test]
async fn a_full_redis_refuses_purchases_with_503_writes_nothing_and_health_says_why() {
    // Arrange: a sale with one buyer, then Redis at its memory limit (noeviction).
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("REDIS_HEALTH_CHECK_MS", "100")]).await;
    assert_eq!(app.purchase("before").await.code(), "PURCHASED");
    redis.config_set("maxmemory-policy", "noeviction").await;
    redis.config_set("maxmemory", "1").await;
    let digest = redis.digest().await;

    // Act
    let refused = app.purchase("during").await;
    let retried = app.purchase_with_key("during", "during-1").await;
    let health = health_until(&app, |h| {
        has_reason(h, "maxmemory") && has_reason(h, "purchases failing")
    })
    .await;

    // Assert: "not now", never a 500; nothing written; /health says why.
    refused.assert_error(503, "SERVICE_UNAVAILABLE");
    assert_eq!(refused.header("retry-after"), Some("1"));
    retried.assert_error(503, "SERVICE_UNAVAILABLE");
    assert_eq!(redis.digest().await, digest);
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(has_reason(&health, "% of maxmemory"), "{health}");
    assert!(
        has_reason(&health, "purchases failing: 2 answered 5xx"),
        "{health}"
    );
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("flashsale_redis_errors_total{kind=\"unavailable\"}"));

    // Room again: the retry with the same key buys, and the memory reason clears by itself.
    redis.config_set("maxmemory", "0").await;
    let after = app.purchase_with_key("during", "during-1").await;
    assert_eq!(after.code(), "PURCHASED", "{:?}", after.body);
    assert_eq!(redis.stock("default").await, Some(98));
    let health = health_until(&app, |h| !has_reason(h, "maxmemory")).await;
    assert!(!has_reason(&health, "maxmemory"), "{health}");
}

#[tokio::test]
async fn an_eviction_policy_set_at_run_time_is_noticed_and_its_removal_too() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("REDIS_HEALTH_CHECK_MS", "100")]).await;
    assert_eq!(app.get("/health").await.body["status"], "ok");

    redis.config_set("maxmemory-policy", "allkeys-lru").await;
    let evicting = health_until(&app, |h| h["status"] == "degraded").await;
    redis.config_set("maxmemory-policy", "noeviction").await;
    let calm = health_until(&app, |h| h["status"] == "ok").await;

    assert!(
        has_reason(&evicting, "maxmemory-policy is allkeys-lru"),
        "{evicting}"
    );
    assert_eq!(calm["reasons"], serde_json::json!([]), "{calm}");
    assert_eq!(app.get("/health/live").await.status, 200);
}

#[tokio::test]
async fn an_eviction_policy_that_cannot_be_read_is_a_reason() {
    // A Redis user that may do everything the service needs but INFO (as some managed plans).
    let redis = TestRedis::start().await;
    let url = redis.url_without("noinfo", &["info"]).await;
    let app = spawn_app_with(
        &redis,
        &[
            ("REDIS_URL", url.as_str()),
            ("REDIS_HEALTH_CHECK_MS", "100"),
        ],
    )
    .await;

    let health = health_until(&app, |h| h["status"] == "degraded").await;

    assert!(
        has_reason(
            &health,
            "the eviction policy cannot be read: INFO memory was refused"
        ),
        "{health}"
    );
    // It still sells: only the report is degraded.
    assert_eq!(app.purchase("still-sells").await.code(), "PURCHASED");
}

#[tokio::test]
async fn start_up_waits_for_a_redis_that_comes_up_late() {
    use crate::helpers::{flashsale, wait_until_ready};
    use flashsale::store::local_server::{free_port, LocalRedisServer, LocalServerOptions};

    // Arrange: the service starts first, pointed at a Redis that is not there yet.
    let (redis_port, port) = (free_port().unwrap(), free_port().unwrap());
    let mut child = flashsale()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("REDIS_URL", format!("redis://127.0.0.1:{redis_port}"))
        .env("REDIS_TIMEOUT_MS", "300")
        .env("SALE_TOTAL_STOCK", "5")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Act: Redis comes up 1.5 s later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let alive_while_waiting = child.try_wait().unwrap().is_none();
    let _redis = LocalRedisServer::start_with(LocalServerOptions {
        port: Some(redis_port),
        ..Default::default()
    })
    .await
    .unwrap();
    let ready = wait_until_ready(port).await;
    let bought = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/sale/purchase"))
        .json(&serde_json::json!({"userId": "early-bird"}))
        .send()
        .await
        .unwrap()
        .status();
    let _ = child.kill();
    let _ = child.wait();

    // Assert
    assert!(alive_while_waiting, "start-up gave up at once");
    assert!(ready);
    assert_eq!(bought, 200);
}
