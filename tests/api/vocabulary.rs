//! The Rust status derivation and the purchase script judge the same states the same way.

use crate::helpers::{keys, TestRedis};
use flashsale::{
    domain::{Code, RequestToken, SaleId, SaleStatus, UserId},
    store::UserAttemptLimit,
};
use fred::prelude::*;

/// A sale written straight into Redis: window relative to Redis's clock, and stock left.
async fn write_sale(
    redis: &TestRedis,
    sale: &str,
    start_offset_ms: i64,
    end_offset_ms: i64,
    stock: i64,
) {
    let now_ms = redis.now_ms().await;
    let keys = keys(sale);
    let _: () = redis
        .client
        .hset(
            keys.config(),
            [
                ("productName", "p".to_owned()),
                ("totalStock", "10".to_owned()),
                ("startMs", (now_ms + start_offset_ms).to_string()),
                ("endMs", (now_ms + end_offset_ms).to_string()),
                ("sold", (10 - stock).to_string()),
                ("buyerBuckets", "1".to_owned()),
            ],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_status_order_in_rust_matches_the_purchase_script() {
    // Arrange: one sale per state, each judged both ways.
    let redis = TestRedis::start().await;
    let store = redis.store().await;
    const HOUR: i64 = 3_600_000;
    let states = [
        ("upcoming", HOUR, 2 * HOUR, 5),
        ("upcoming-empty", HOUR, 2 * HOUR, 0),
        ("active", -HOUR, HOUR, 5),
        ("sold-out", -HOUR, HOUR, 0),
        ("ended", -2 * HOUR, -HOUR, 5),
        ("ended-empty", -2 * HOUR, -HOUR, 0),
    ];

    for (sale, start, end, stock) in states {
        write_sale(&redis, sale, start, end, stock).await;
        let sale = SaleId::parse(sale).unwrap();

        // Act
        let snapshot = store.status(&sale).await.unwrap().unwrap();
        let rust = snapshot.status_at(snapshot.redis_now_ms);
        let user = UserId::parse("judge".into()).unwrap();
        let limit = UserAttemptLimit {
            limit: 0,
            window_ms: 1,
        };
        let script = store
            .purchase(
                &sale,
                user,
                Some(RequestToken::generate()),
                limit,
                "vocabulary-test",
                flashsale::store::Ask::ONE,
            )
            .await
            .unwrap()
            .code;

        // Assert
        let expected = match rust {
            SaleStatus::Upcoming => Code::SaleNotStarted,
            SaleStatus::Active => Code::Purchased,
            SaleStatus::SoldOut => Code::SoldOut,
            SaleStatus::Ended => Code::SaleEnded,
        };
        assert_eq!(script, expected, "{sale}: Rust says {rust:?}");
    }
}
