//! Many sales at once: `/api/sales/{saleId}/…` for any sale, `/api/sale/…` for `SALE_ID`.

use crate::helpers::{spawn_app, spawn_app_with, TestRedis};
use flashsale::{domain::SaleId, status_cache::StatusCache};
use fred::prelude::*;
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
    let len = cache.entry_count().await;
    assert!(len <= 100, "{len} entries");
}

#[tokio::test]
async fn a_sale_stored_by_an_earlier_build_is_moved_to_buckets_at_start_up_and_keeps_its_buyers() {
    // Arrange: the layout of earlier builds, written by hand: remaining stock in its own key
    // and every buyer in one hash; one unit of three sold, one buyer a second sale's too.
    let redis = TestRedis::start().await;
    let now_ms = redis.now_ms().await;
    for sale in ["old", "old-admin"] {
        let keys = crate::helpers::keys(sale);
        let _: () = redis
            .client
            .hset(
                keys.config(),
                [
                    ("productName", "Old product".to_owned()),
                    ("totalStock", "3".to_owned()),
                    ("startMs", (now_ms - 60_000).to_string()),
                    ("endMs", (now_ms + 3_600_000).to_string()),
                    ("createdMs", (now_ms - 120_000).to_string()),
                ],
            )
            .await
            .unwrap();
        let _: () = redis
            .client
            .set(keys.legacy_stock(), 2, None, None, false)
            .await
            .unwrap();
        let _: () = redis
            .client
            .hset(
                keys.buyers(),
                ("ann", format!("{}:1:0123456789abcdef", now_ms - 30_000)),
            )
            .await
            .unwrap();
    }
    let _: () = redis
        .client
        .zadd(
            "flashsale:sales",
            None,
            None,
            false,
            false,
            (1.0, "old-admin"),
        )
        .await
        .unwrap();

    // Act: an instance serving SALE_ID=old starts (and finds old-admin in the index).
    let app = spawn_app_with(
        &redis,
        &[
            ("SALE_ID", "old"),
            ("SALE_TOTAL_STOCK", ""),
            ("SALE_PRODUCT_NAME", ""),
            ("SALE_START", ""),
            ("SALE_END", ""),
        ],
    )
    .await;
    let ann = app.purchase("ann").await;
    let ann_user = app.get("/api/sale/user/ann").await;
    let bea = app.purchase_in("old-admin", "bea").await;
    let cid = app.purchase_in("old-admin", "cid").await;
    let dan = app.purchase_in("old-admin", "dan").await;

    // Assert: the old buyer is still a buyer, the stock left is the old counter's, and the old
    // keys are gone.
    assert_eq!(ann.code(), "ALREADY_PURCHASED");
    assert_eq!(ann_user.body["orderNumber"], 1);
    assert_eq!(
        (bea.code(), cid.code(), dan.code()),
        ("PURCHASED", "PURCHASED", "SOLD_OUT")
    );
    assert_eq!(
        bea.body["orderNumber"], 2,
        "order numbers go on from the old buyers"
    );
    assert_eq!(redis.stock("old").await, Some(2));
    assert_eq!(redis.stock("old-admin").await, Some(0));
    assert_eq!(redis.buyers("old-admin").await.len(), 3);
    for sale in ["old", "old-admin"] {
        let keys = crate::helpers::keys(sale);
        let left: i64 = redis
            .client
            .exists(vec![keys.legacy_stock(), keys.buyers()])
            .await
            .unwrap();
        assert_eq!(left, 0, "{sale}: the old keys remain");
    }
}

#[tokio::test]
async fn buyers_are_kept_in_small_buckets_that_redis_stores_as_listpacks() {
    // Arrange: 1,000 units, so 10 buckets of about 100 buyers each once sold out.
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("SALE_TOTAL_STOCK", "1000")]).await;

    // Act: the whole stock sold, 16 buyers at a time.
    let users: Vec<String> = (0..1000).map(|n| format!("bucket-user-{n}")).collect();
    for chunk in users.chunks(16) {
        let replies = futures::future::join_all(chunk.iter().map(|user| app.purchase(user))).await;
        assert!(replies.iter().all(|reply| reply.code() == "PURCHASED"));
    }

    // Assert: every buyer is in exactly one of the 10 buckets, none is a hashtable.
    let config = redis.config("default").await;
    assert_eq!(config["buyerBuckets"], "10");
    assert_eq!(config["sold"], "1000");
    assert_eq!(redis.buyers("default").await.len(), 1000);
    let keys = crate::helpers::keys("default");
    for n in 0..10 {
        let size: i64 = redis.client.hlen(keys.buyer_bucket(n)).await.unwrap();
        let encoding: String = redis
            .client
            .custom(
                fred::cmd!("OBJECT"),
                vec![
                    "ENCODING".to_owned(),
                    format!("sale:{{default}}:buyers:{n}"),
                ],
            )
            .await
            .unwrap();
        assert!((40..=128).contains(&size), "bucket {n} holds {size}");
        assert_eq!(encoding, "listpack", "bucket {n}");
    }
}

#[tokio::test]
async fn a_redis_at_this_layout_is_not_scanned_again_at_start_up() {
    // Arrange: a first start records the layout with its sale.
    let redis = TestRedis::start().await;
    let first = spawn_app(&redis).await;
    first.stop().await;
    let layout: Option<i64> = redis.client.get("flashsale:layout").await.unwrap();
    assert_eq!(layout, Some(2));
    // A sale in the earlier layout appears afterwards (as only an earlier build could write).
    let keys = crate::helpers::keys("late");
    let now_ms = redis.now_ms().await;
    let _: () = redis
        .client
        .hset(
            keys.config(),
            [
                ("productName", "Late".to_owned()),
                ("totalStock", "3".to_owned()),
                ("startMs", (now_ms - 60_000).to_string()),
                ("endMs", (now_ms + 3_600_000).to_string()),
                ("createdMs", now_ms.to_string()),
            ],
        )
        .await
        .unwrap();
    let _: () = redis
        .client
        .set(keys.legacy_stock(), 3, None, None, false)
        .await
        .unwrap();
    let _: () = redis
        .client
        .zadd("flashsale:sales", None, None, false, false, (1.0, "late"))
        .await
        .unwrap();

    // Act
    let _again = spawn_app(&redis).await;

    // Assert: the layout version says there is nothing to move, so nothing is.
    let left: i64 = redis.client.exists(keys.legacy_stock()).await.unwrap();
    assert_eq!(left, 1, "the scan did not run");
    assert!(!redis.config("late").await.contains_key("buyerBuckets"));
}
