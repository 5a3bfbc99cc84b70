//! The sale window, judged by Redis's clock; outside it nothing is taken and only the refusal
//! is counted.

use crate::helpers::{keys, spawn_app_with, TestRedis};
use chrono::{Duration as ChronoDuration, Utc};
use fred::prelude::*;

#[tokio::test]
async fn before_the_start_a_purchase_is_sale_not_started_and_only_counts_the_refusal() {
    let now = Utc::now();
    let redis = TestRedis::start().await;
    let start = (now + ChronoDuration::hours(1)).to_rfc3339();
    let end = (now + ChronoDuration::hours(2)).to_rfc3339();
    let app = spawn_app_with(&redis, &[("SALE_START", &start), ("SALE_END", &end)]).await;
    let digest = redis.digest().await;

    let reply = app.purchase("quinn").await;

    assert_eq!(reply.status, 403);
    assert_eq!(reply.code(), "SALE_NOT_STARTED");
    assert_eq!(reply.body["success"], false);
    assert_eq!(reply.body["remainingStock"], 100);
    let refused: i64 = redis
        .client
        .getdel(keys("default").refused())
        .await
        .unwrap();
    assert_eq!(refused, 1, "the refusal is counted");
    assert_eq!(redis.digest().await, digest, "nothing else written");
}

#[tokio::test]
async fn after_the_end_a_purchase_is_sale_ended_and_only_counts_the_refusal() {
    let now = Utc::now();
    let redis = TestRedis::start().await;
    let start = (now - ChronoDuration::hours(2)).to_rfc3339();
    let end = (now - ChronoDuration::hours(1)).to_rfc3339();
    let app = spawn_app_with(&redis, &[("SALE_START", &start), ("SALE_END", &end)]).await;
    let digest = redis.digest().await;

    let reply = app.purchase("rita").await;

    assert_eq!(reply.status, 410);
    assert_eq!(reply.code(), "SALE_ENDED");
    let refused: i64 = redis
        .client
        .getdel(keys("default").refused())
        .await
        .unwrap();
    assert_eq!(refused, 1, "the refusal is counted");
    assert_eq!(redis.digest().await, digest, "nothing else written");
}

#[tokio::test]
async fn the_window_opens_on_the_redis_clock() {
    // The sale starts 1.5 s from now: refused before, sold after, with no instance clock involved.
    let now = Utc::now();
    let redis = TestRedis::start().await;
    let start = (now + ChronoDuration::milliseconds(1500)).to_rfc3339();
    let app = spawn_app_with(&redis, &[("SALE_START", &start), ("SALE_END", "")]).await;

    assert_eq!(app.purchase("sam").await.code(), "SALE_NOT_STARTED");
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    assert_eq!(app.purchase("sam").await.code(), "PURCHASED");
}

#[tokio::test]
async fn a_buyer_who_retries_after_the_end_is_still_told_they_hold_the_unit() {
    let redis = TestRedis::start().await;
    let end = (Utc::now() + ChronoDuration::milliseconds(800)).to_rfc3339();
    let start = (Utc::now() - ChronoDuration::minutes(1)).to_rfc3339();
    let app = spawn_app_with(&redis, &[("SALE_START", &start), ("SALE_END", &end)]).await;
    app.purchase_with_key("tess", "tess-1").await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;

    assert_eq!(
        app.purchase_with_key("tess", "tess-1").await.code(),
        "PURCHASED"
    );
    assert_eq!(app.purchase("tess").await.code(), "ALREADY_PURCHASED");
    assert_eq!(app.purchase("uma").await.code(), "SALE_ENDED");
}

#[tokio::test]
async fn restarting_with_the_same_sale_variables_leaves_a_live_sale_as_it_was() {
    // Arrange: a sale with some buyers.
    let redis = TestRedis::start().await;
    let start = (Utc::now() - ChronoDuration::minutes(1)).to_rfc3339();
    let env = [("SALE_START", start.as_str()), ("SALE_END", "")];
    let first = spawn_app_with(&redis, &env).await;
    for user in ["v1", "v2", "v3"] {
        first.purchase(user).await;
    }
    let config = redis.config("default").await;
    let digest = redis.digest().await;
    first.stop().await;

    // Act: the same instance again, and another one with a different stock.
    let again = spawn_app_with(&redis, &env).await;
    let _other = spawn_app_with(&redis, &[("SALE_TOTAL_STOCK", "5000")]).await;

    // Assert
    assert_eq!(redis.digest().await, digest);
    assert_eq!(redis.config("default").await, config);
    assert_eq!(redis.stock("default").await, Some(97));
    assert_eq!(again.purchase("v4").await.body["orderNumber"], 4);
}

#[tokio::test]
async fn each_sale_id_keeps_its_own_keys() {
    let redis = TestRedis::start().await;
    let spring = spawn_app_with(&redis, &[("SALE_ID", "spring"), ("SALE_TOTAL_STOCK", "3")]).await;
    let autumn = spawn_app_with(&redis, &[("SALE_ID", "autumn"), ("SALE_TOTAL_STOCK", "7")]).await;

    spring.purchase("w").await;

    assert_eq!(redis.stock("spring").await, Some(2));
    assert_eq!(redis.stock("autumn").await, Some(7));
    assert_eq!(autumn.user("w").await.body["hasPurchased"], false);
    assert_eq!(autumn.status().await.body["totalStock"], 7);
}
