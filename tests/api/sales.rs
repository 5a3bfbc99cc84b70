//! Many sales at once: `/api/sales/{saleId}/…` for any sale, `/api/sale/…` for `SALE_ID`.

use crate::helpers::{spawn_app_with, TestRedis};
use flashsale::{domain::SaleId, status_cache::StatusCache};
use std::time::Duration;

#[tokio::test]
async fn one_instance_serves_every_sale_and_the_alias_serves_sale_id() {
    // Arrange: two instances seed two sales; a third instance, seeding nothing, serves both.
    let redis = TestRedis::start().await;
    spawn_app_with(&redis, &[("SALE_ID", "spring"), ("SALE_TOTAL_STOCK", "2")]).await;
    spawn_app_with(&redis, &[("SALE_ID", "autumn"), ("SALE_TOTAL_STOCK", "1")]).await;
    let app = spawn_app_with(
        &redis,
        &[
            ("SALE_ID", "spring"),
            ("SALE_TOTAL_STOCK", ""),
            ("SALE_PRODUCT_NAME", ""),
            ("SALE_START", ""),
            ("SALE_END", ""),
        ],
    )
    .await;

    // Act
    let spring = app.purchase_in("spring", "ann").await;
    let alias = app.purchase("bea").await;
    let autumn = app.purchase_in("autumn", "ann").await;
    let autumn_again = app.purchase_in("autumn", "bea").await;
    let status = app.get("/api/sales/autumn/status").await;
    let user = app.get("/api/sales/spring/user/bea").await;

    // Assert
    assert_eq!(spring.code(), "PURCHASED");
    assert_eq!(alias.code(), "PURCHASED", "the alias is SALE_ID=spring");
    assert_eq!(alias.body["remainingStock"], 0);
    assert_eq!(autumn.code(), "PURCHASED", "one unit per buyer per sale");
    assert_eq!(autumn_again.code(), "SOLD_OUT");
    assert_eq!(status.body["totalStock"], 1);
    assert_eq!(user.body["orderNumber"], 2);
    assert_eq!(redis.buyers("spring").await.len(), 2);
    assert_eq!(redis.buyers("autumn").await.len(), 1);
}

#[tokio::test]
async fn an_unknown_sale_is_sale_not_found_on_every_route_and_writes_nothing() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[]).await;
    let digest = redis.digest().await;

    app.purchase_in("nope", "ann")
        .await
        .assert_error(404, "SALE_NOT_FOUND");
    app.get("/api/sales/nope/status")
        .await
        .assert_error(404, "SALE_NOT_FOUND");
    app.get("/api/sales/nope/user/ann")
        .await
        .assert_error(404, "SALE_NOT_FOUND");

    assert_eq!(redis.digest().await, digest);
}

#[tokio::test]
async fn an_invalid_sale_id_is_invalid_request_before_any_key_is_built() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[]).await;
    let digest = redis.digest().await;
    let too_long = "x".repeat(65);

    for sale in [
        "a%7Bb%7D",
        "a:b",
        "a.b",
        "%C3%A9",
        "a%20b",
        too_long.as_str(),
    ] {
        app.purchase_in(sale, "ann")
            .await
            .assert_error(400, "INVALID_REQUEST");
        app.get(&format!("/api/sales/{sale}/status"))
            .await
            .assert_error(400, "INVALID_REQUEST");
        app.get(&format!("/api/sales/{sale}/user/ann"))
            .await
            .assert_error(400, "INVALID_REQUEST");
    }

    assert_eq!(redis.digest().await, digest);
}

#[tokio::test]
async fn the_status_cache_stays_bounded_under_random_sale_ids() {
    // Arrange: a small bound, and many more distinct ids than it holds.
    let redis = TestRedis::start().await;
    let store = redis.store().await;
    let cache = StatusCache::new(Duration::from_secs(60), 100);

    // Act
    for n in 0..1_000 {
        let sale = SaleId::parse(&format!("random-{n}")).unwrap();
        let cached = cache.get(&store, &sale).await.unwrap();
        assert!(cached.snapshot.is_none());
    }

    // Assert
    let len = cache.len().await;
    assert!(len <= 100, "{len} entries");
}
