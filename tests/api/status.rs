//! `GET /api/sale/status`.

use crate::helpers::{spawn_app, spawn_app_with, spawn_app_without_sale, TestRedis};
use chrono::{DateTime, Duration as ChronoDuration, Utc};

#[tokio::test]
async fn an_active_sale_reports_its_config_stock_and_the_redis_clock() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    app.purchase("a").await;

    let reply = app.status().await;

    assert_eq!(reply.status, 200);
    let body = &reply.body;
    assert_eq!(body["status"], "active");
    assert_eq!(body["productName"], "Test sneaker");
    assert_eq!(body["totalStock"], 100);
    assert!(
        body["remainingStock"] == 99 || body["remainingStock"] == 100,
        "≤100 ms cache: {body}"
    );
    let time = |field: &str| DateTime::parse_from_rfc3339(body[field].as_str().unwrap()).unwrap();
    assert!(time("startTime") < time("serverTime") && time("serverTime") < time("endTime"));
    let redis_now = redis.now_ms().await;
    assert!((time("serverTime").timestamp_millis() - redis_now).abs() < 2_000);
}

#[tokio::test]
async fn status_follows_the_sale_through_sold_out() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("SALE_TOTAL_STOCK", "1")]).await;
    app.purchase("only").await;
    tokio::time::sleep(std::time::Duration::from_millis(150)).await; // past the cache's 100 ms

    let reply = app.status().await;

    assert_eq!(reply.body["status"], "sold_out");
    assert_eq!(reply.body["remainingStock"], 0);
}

#[tokio::test]
async fn a_sale_that_has_not_started_is_upcoming_and_one_that_closed_is_ended() {
    let now = Utc::now();
    let redis = TestRedis::start().await;
    let later = [
        ("SALE_START", (now + ChronoDuration::hours(1)).to_rfc3339()),
        ("SALE_END", (now + ChronoDuration::hours(2)).to_rfc3339()),
    ];
    let upcoming = spawn_app_with(&redis, &later.each_ref().map(|(k, v)| (*k, v.as_str()))).await;
    assert_eq!(upcoming.status().await.body["status"], "upcoming");

    let other = TestRedis::start().await;
    let past = [
        ("SALE_START", (now - ChronoDuration::hours(2)).to_rfc3339()),
        ("SALE_END", (now - ChronoDuration::hours(1)).to_rfc3339()),
    ];
    let ended = spawn_app_with(&other, &past.each_ref().map(|(k, v)| (*k, v.as_str()))).await;
    assert_eq!(ended.status().await.body["status"], "ended");
}

#[tokio::test]
async fn status_without_a_sale_is_sale_not_found() {
    let redis = TestRedis::start().await;
    let app = spawn_app_without_sale(&redis).await;

    app.status().await.assert_error(404, "SALE_NOT_FOUND");
}

#[tokio::test]
async fn a_burst_of_status_polls_costs_redis_a_handful_of_calls() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let calls_before = redis.evalsha_calls().await;

    let polls = (0..200).map(|_| app.status());
    let replies = futures::future::join_all(polls).await;

    assert!(replies.iter().all(|r| r.status == 200));
    let calls = redis.evalsha_calls().await - calls_before;
    assert!(
        calls <= 20,
        "200 polls in well under 2 s should cost a few reads, took {calls}"
    );
}
