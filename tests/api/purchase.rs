//! `POST /api/sale/purchase`: every outcome, with the Redis state it leaves.

use crate::helpers::{
    purchase_script, spawn_app, spawn_app_with, spawn_app_without_sale, Buy, TestRedis,
};
use fred::prelude::*;

#[tokio::test]
async fn a_first_purchase_takes_one_unit_and_records_the_buyer() {
    // Arrange
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    // Act
    let reply = app.purchase("alice@example.com").await;

    // Assert
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["success"], true);
    assert_eq!(reply.code(), "PURCHASED");
    assert_eq!(reply.body["remainingStock"], 99);
    assert_eq!(reply.body["orderNumber"], 1);
    let purchase_time = reply.body["purchaseTime"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(purchase_time).is_ok(),
        "{purchase_time}"
    );
    assert!(purchase_time.ends_with('Z'), "UTC: {purchase_time}");
    assert_eq!(redis.stock("default").await, Some(99));
    let buyers = redis.buyers("default").await;
    assert_eq!(buyers.len(), 1);
    assert!(buyers["alice@example.com"].contains(":1:"), "{buyers:?}");
}

#[tokio::test]
async fn a_second_purchase_by_the_same_user_is_already_purchased_and_takes_nothing() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let first = app.purchase("bob").await;

    let second = app.purchase("bob").await;

    assert_eq!(second.status, 409);
    assert_eq!(second.body["success"], false);
    assert_eq!(second.code(), "ALREADY_PURCHASED");
    assert_eq!(second.body["purchaseTime"], first.body["purchaseTime"]);
    assert_eq!(second.body["orderNumber"], 1);
    assert_eq!(second.body["remainingStock"], 99);
    assert_eq!(redis.stock("default").await, Some(99));
    assert_eq!(redis.buyers("default").await.len(), 1);
}

#[tokio::test]
async fn order_numbers_follow_the_order_of_buyers() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let numbers: Vec<_> = [
        app.purchase("u1").await,
        app.purchase("u2").await,
        app.purchase("u3").await,
    ]
    .iter()
    .map(|r| r.body["orderNumber"].as_i64().unwrap())
    .collect();

    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(redis.stock("default").await, Some(97));
}

#[tokio::test]
async fn when_the_last_unit_is_gone_the_next_buyer_gets_sold_out() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("SALE_TOTAL_STOCK", "1")]).await;
    assert_eq!(app.purchase("first").await.code(), "PURCHASED");

    let reply = app.purchase("second").await;

    assert_eq!(reply.status, 410);
    assert_eq!(reply.code(), "SOLD_OUT");
    assert_eq!(reply.body["success"], false);
    assert_eq!(reply.body["remainingStock"], 0);
    assert!(reply.body.get("orderNumber").is_none());
    assert_eq!(redis.stock("default").await, Some(0));
    assert_eq!(
        redis.buyers("default").await.keys().collect::<Vec<_>>(),
        ["first"]
    );
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_answers_purchased_again_and_takes_one_unit() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let first = app.purchase_with_key("carol", "3f6c1d2e-retry-key").await;

    let retry = app.purchase_with_key("carol", "3f6c1d2e-retry-key").await;

    assert_eq!(first.code(), "PURCHASED");
    assert_eq!(retry.status, 200, "{:?}", retry.body);
    assert_eq!(retry.code(), "PURCHASED");
    assert_eq!(retry.body["orderNumber"], first.body["orderNumber"]);
    assert_eq!(retry.body["purchaseTime"], first.body["purchaseTime"]);
    assert_eq!(redis.stock("default").await, Some(99));
    assert_eq!(redis.buyers("default").await.len(), 1);
}

#[tokio::test]
async fn a_different_request_of_a_buyer_is_already_purchased_even_with_its_own_key() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    app.purchase_with_key("dave", "key-one").await;

    let other = app.purchase_with_key("dave", "key-two").await;

    assert_eq!(other.status, 409);
    assert_eq!(other.code(), "ALREADY_PURCHASED");
    assert_eq!(redis.stock("default").await, Some(99));
}

#[tokio::test]
async fn the_retry_of_a_purchase_is_purchased_even_after_the_sale_sold_out() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("SALE_TOTAL_STOCK", "1")]).await;
    let first = app.purchase_with_key("erin", "erin-attempt-1").await;
    assert_eq!(app.purchase("frank").await.code(), "SOLD_OUT");

    let retry = app.purchase_with_key("erin", "erin-attempt-1").await;

    assert_eq!(retry.code(), "PURCHASED");
    assert_eq!(retry.body["orderNumber"], first.body["orderNumber"]);
    assert_eq!(redis.stock("default").await, Some(0));
}

#[tokio::test]
async fn the_purchase_script_run_twice_with_one_token_takes_one_unit() {
    // fred re-sends an in-flight EVALSHA after a reconnect: the same script call, same ARGV,
    // here a batch of two purchases.
    let redis = TestRedis::start().await;
    let _app = spawn_app(&redis).await;
    let buys = [
        Buy::new("gus", "0123456789abcdef"),
        Buy::new("hal", "fedcba9876543210"),
    ];

    let first = purchase_script(&redis.client, "default", &buys, 10, 10_000).await;
    let second = purchase_script(&redis.client, "default", &buys, 10, 10_000).await;

    // Each retry is answered PURCHASED with its own order (the stock it reports is today's).
    let codes_and_orders = |answers: &[fred::types::Value]| -> Vec<(String, i64)> {
        answers
            .iter()
            .map(|answer| {
                let items = answer.clone().into_array();
                (items[0].as_string().unwrap(), items[3].as_i64().unwrap())
            })
            .collect()
    };
    assert_eq!(
        codes_and_orders(&first),
        [("PURCHASED".to_owned(), 1), ("PURCHASED".to_owned(), 2)]
    );
    assert_eq!(codes_and_orders(&second), codes_and_orders(&first));
    assert_eq!(redis.stock("default").await, Some(98));
    let orders: i64 = redis
        .client
        .xlen(crate::helpers::keys("default").orders())
        .await
        .unwrap();
    assert_eq!(orders, 2, "the re-run adds no second order");
}

#[tokio::test]
async fn a_user_who_keeps_trying_after_sell_out_is_rate_limited_with_retry_after() {
    let redis = TestRedis::start().await;
    // Refusals answered by an instance alone are not attempts (batch.rs tests those): here
    // every refusal is decided in Redis.
    let app = spawn_app_with(
        &redis,
        &[
            ("SALE_TOTAL_STOCK", "0"),
            ("USER_ATTEMPT_LIMIT", "3"),
            ("USER_ATTEMPT_WINDOW_MS", "60000"),
            ("PURCHASE_LOCAL_REFUSALS", "false"),
        ],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(app.purchase("hank").await.code(), "SOLD_OUT");
    }

    let reply = app.purchase("hank").await;

    assert_eq!(reply.status, 429);
    assert_eq!(reply.code(), "RATE_LIMITED");
    assert_eq!(reply.body["success"], false);
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Counted per user: another user is not limited.
    assert_eq!(app.purchase("ivy").await.code(), "SOLD_OUT");
    let ttl: i64 = redis
        .client
        .pttl(crate::helpers::keys("default").attempts("hank"))
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "the counter expires: {ttl}");
}

#[tokio::test]
async fn the_attempt_limit_is_shared_by_all_instances() {
    let redis = TestRedis::start().await;
    let env = [("SALE_TOTAL_STOCK", "0"), ("USER_ATTEMPT_LIMIT", "2")];
    let (a, b) = (
        spawn_app_with(&redis, &env).await,
        spawn_app_with(&redis, &env).await,
    );

    a.purchase("jo").await;
    b.purchase("jo").await;
    let third = a.purchase("jo").await;

    assert_eq!(third.code(), "RATE_LIMITED");
}

#[tokio::test]
async fn a_zero_attempt_limit_turns_the_user_limit_off() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[("SALE_TOTAL_STOCK", "0"), ("USER_ATTEMPT_LIMIT", "0")],
    )
    .await;

    for _ in 0..15 {
        assert_eq!(app.purchase("kim").await.code(), "SOLD_OUT");
    }
    assert!(!redis.keys().await.iter().any(|k| k.contains(":rl:")));
}

#[tokio::test]
async fn purchase_without_a_sale_is_sale_not_found_and_writes_nothing() {
    let redis = TestRedis::start().await;
    let app = spawn_app_without_sale(&redis).await;

    let reply = app.purchase("lee").await;

    reply.assert_error(404, "SALE_NOT_FOUND");
    assert!(redis.keys().await.is_empty());
}

#[tokio::test]
async fn the_per_ip_limit_answers_json_429_with_retry_after() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "2")],
    )
    .await;
    app.status().await;
    app.status().await;

    let limited = app.purchase("mo").await;

    limited.assert_error(429, "RATE_LIMITED");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert!(
        redis.buyers("default").await.is_empty(),
        "the limited request never reached Redis"
    );
    // Health probes are never limited.
    assert_eq!(app.get("/health/live").await.status, 200);
}

#[tokio::test]
async fn the_client_ip_header_keys_the_per_ip_limit_when_configured() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[
            ("RATE_LIMIT_PER_SECOND", "1"),
            ("RATE_LIMIT_BURST", "1"),
            ("CLIENT_IP_HEADER", "Fly-Client-IP"),
        ],
    )
    .await;
    let status_from = |ip: &'static str| {
        app.http
            .get(app.url("/api/sale/status"))
            .header("Fly-Client-IP", ip)
            .send()
    };

    let first_a = status_from("203.0.113.1").await.unwrap().status();
    let second_a = status_from("203.0.113.1").await.unwrap().status();
    let first_b = status_from("203.0.113.2").await.unwrap().status();

    assert_eq!(
        (first_a.as_u16(), second_a.as_u16(), first_b.as_u16()),
        (200, 429, 200)
    );
}

#[tokio::test]
async fn x_forwarded_for_is_not_trusted_by_default() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "1")],
    )
    .await;
    let status_from = |ip: &'static str| {
        app.http
            .get(app.url("/api/sale/status"))
            .header("X-Forwarded-For", ip)
            .send()
    };

    status_from("198.51.100.1").await.unwrap();
    let spoofed = status_from("198.51.100.2").await.unwrap();

    assert_eq!(spoofed.status(), 429);
}
