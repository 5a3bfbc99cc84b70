//! `GET /api/sale/user/{userId}`.

use crate::helpers::{spawn_app, spawn_app_without_sale, TestRedis};

#[tokio::test]
async fn a_buyer_is_reported_with_purchase_time_and_order_number() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let bought = app.purchase("nina+vip@example.com").await;

    let reply = app.user("nina+vip@example.com").await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["userId"], "nina+vip@example.com");
    assert_eq!(reply.body["hasPurchased"], true);
    assert_eq!(reply.body["purchaseTime"], bought.body["purchaseTime"]);
    assert_eq!(reply.body["orderNumber"], 1);
}

#[tokio::test]
async fn a_user_who_bought_nothing_gets_nulls() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let reply = app.user("oscar").await;

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        serde_json::json!({
            "userId": "oscar", "hasPurchased": false, "purchaseTime": null, "orderNumber": null
        })
    );
}

#[tokio::test]
async fn an_invalid_user_id_in_the_path_is_invalid_request() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let digest = redis.digest().await;

    for id in [
        "has%20space",
        "curly%7Bbrace%7D",
        &"x".repeat(129),
        "%C3%A9",
    ] {
        app.user(id).await.assert_error(400, "INVALID_REQUEST");
    }
    assert_eq!(redis.digest().await, digest);
}

#[tokio::test]
async fn a_user_lookup_without_a_sale_is_sale_not_found() {
    let redis = TestRedis::start().await;
    let app = spawn_app_without_sale(&redis).await;

    app.user("pat").await.assert_error(404, "SALE_NOT_FOUND");
}

#[tokio::test]
async fn a_percent_encoded_user_id_is_decoded_before_it_is_checked() {
    let redis = crate::helpers::TestRedis::start().await;
    let app = crate::helpers::spawn_app(&redis).await;
    app.purchase("jane+sale@example.com").await;

    let reply = app.get("/api/sale/user/jane%2Bsale%40example.com").await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["userId"], "jane+sale@example.com");
    assert_eq!(reply.body["hasPurchased"], true);
}
