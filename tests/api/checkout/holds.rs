//! Holds, quantity, confirm and cancel, without waiting for an expiry.

use super::{assert_adds_up, checkout_app, counters, order_stream, TOKEN};
use crate::helpers::{spawn_app_with, TestRedis};
use fred::prelude::*;
use serde_json::json;

#[tokio::test]
async fn a_hold_reserves_units_on_redis_clock_and_answers_its_retries() {
    let redis = TestRedis::start().await;
    let app = checkout_app(&redis, 300, 3, 10).await;

    let before = redis.now_ms().await;
    let held = app.buy("ana", Some(2), "key-ana-1").await;
    let after = redis.now_ms().await;
    assert_eq!(held.status, 200, "{:?}", held.body);
    assert_eq!(held.code(), "RESERVED");
    assert_eq!(held.body["success"], true);
    assert_eq!(held.body["orderNumber"], 1);
    assert_eq!(held.body["quantity"], 2);
    assert_eq!(held.body["remainingStock"], 8);
    assert_eq!(held.body["heldStock"], 2);
    let expires =
        chrono::DateTime::parse_from_rfc3339(held.body["holdExpiresAt"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
    assert!(
        (before + 300_000..=after + 300_000).contains(&expires),
        "{expires}"
    );
    let token = held.body["reservationToken"].as_str().unwrap().to_owned();
    let (order, secret) = token.split_once('.').unwrap();
    assert_eq!(order, "1");
    assert_eq!(secret.len(), 32);

    // The same request again: the same order, the same token, nothing taken.
    let retried = app.buy("ana", Some(2), "key-ana-1").await;
    assert_eq!(retried.code(), "RESERVED");
    assert_eq!(retried.body["orderNumber"], 1);
    assert_eq!(retried.body["reservationToken"], token.as_str());
    assert_eq!(retried.body["remainingStock"], 8);
    // Another request by the same buyer: told about the hold, never given its token.
    let again = app.buy("ana", Some(1), "key-ana-2").await;
    again.assert_error(409, "ALREADY_RESERVED");
    assert_eq!(again.body["holdExpiresAt"], held.body["holdExpiresAt"]);
    assert_eq!(again.body["orderNumber"], 1);
    assert!(
        again.body.get("reservationToken").is_none(),
        "{:?}",
        again.body
    );

    let status = app.status().await;
    assert_eq!(status.body["remainingStock"], 8);
    assert_eq!(status.body["heldStock"], 2);
    assert_eq!(status.body["status"], "active");
    let user = app.user("ana").await;
    assert_eq!(
        user.body["hasPurchased"], false,
        "held, not paid: {:?}",
        user.body
    );
    assert_eq!(
        (&user.body["state"], &user.body["quantity"]),
        (&json!("held"), &json!(2))
    );
    assert_eq!(user.body["holdExpiresAt"], held.body["holdExpiresAt"]);
    let order = app.order_call("1", "").await;
    assert_eq!(order.status, 200, "{:?}", order.body);
    assert_eq!(order.body["state"], "held");
    assert_eq!(order.body["userId"], "ana");
    assert_eq!(order.body["quantity"], 2);
    assert_eq!(order.body["late"], false);
    assert_eq!(order.body["holdExpiresAt"], held.body["holdExpiresAt"]);
    assert_eq!(order.body["history"][0]["state"], "held");
    assert!(order.body.get("reservationToken").is_none());
    let view = app.sale_view().await;
    assert_eq!(
        (
            &view["holdSeconds"],
            &view["maxPerBuyer"],
            &view["held"],
            &view["confirmed"]
        ),
        (&json!(300), &json!(3), &json!(2), &json!(0))
    );
    assert_adds_up(&app, &redis).await;
    let stream = order_stream(&redis, "default").await;
    assert_eq!(stream.len(), 1, "{stream:?}");
    assert_eq!(stream[0]["type"], "order.reserved");
    assert_eq!(stream[0]["quantity"], "2");
}

#[tokio::test]
async fn a_confirm_is_final_and_idempotent_and_the_buyer_is_then_already_purchased() {
    let redis = TestRedis::start().await;
    let app = checkout_app(&redis, 300, 1, 10).await;
    let held = app.buy("ben", None, "key-ben").await;
    assert_eq!(held.code(), "RESERVED");

    let confirmed = app.order_call("1", "/confirm").await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    assert_eq!(confirmed.body["state"], "confirmed");
    assert_eq!(confirmed.body["late"], false);
    let states: Vec<&str> = confirmed.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["held", "confirmed"]);
    let user = app.user("ben").await;
    assert_eq!(
        (&user.body["hasPurchased"], &user.body["state"]),
        (&json!(true), &json!("confirmed"))
    );
    assert!(user.body.get("holdExpiresAt").is_none());
    let digest = redis.digest().await;
    let again = app.order_call("1", "/confirm").await;
    assert_eq!(
        again.body, confirmed.body,
        "a second confirm answers the same"
    );
    assert_eq!(redis.digest().await, digest, "and writes nothing");

    // The buyer's own retry reads the confirmed order; anyone else's request is refused.
    let retried = app.buy("ben", None, "key-ben").await;
    assert_eq!(retried.code(), "PURCHASED");
    assert_eq!(retried.body["orderNumber"], 1);
    assert!(retried.body.get("reservationToken").is_none());
    app.buy("ben", None, "key-ben-2")
        .await
        .assert_error(409, "ALREADY_PURCHASED");
    // A paid order is not cancelled by the shop's cancel, nor by the buyer's token.
    app.order_call("1", "/cancel")
        .await
        .assert_error(409, "ORDER_CONFIRMED");
    let token = held.body["reservationToken"].as_str().unwrap();
    app.cancel_hold(Some(token))
        .await
        .assert_error(409, "ORDER_CONFIRMED");
    assert_eq!(redis.digest().await, digest);

    let c = counters(&redis, "default").await;
    assert_eq!((c["held"], c["confirmed"], c["sold"]), (0, 1, 1));
    assert_adds_up(&app, &redis).await;
    let kinds: Vec<String> = order_stream(&redis, "default")
        .await
        .into_iter()
        .map(|entry| entry["type"].clone())
        .collect();
    assert_eq!(kinds, ["order.reserved", "order.confirmed"]);
    // The export lists confirmed buyers by default, and nobody is held.
    let export = app.export(None).await;
    assert_eq!(export["buyers"].as_array().unwrap().len(), 1, "{export}");
    assert_eq!(export["buyers"][0]["userId"], "ben");
    let held_export = app.export(Some("held")).await;
    assert_eq!(held_export["buyers"], json!([]), "{held_export}");
}

#[tokio::test]
async fn a_cancel_returns_the_units_at_once_and_the_buyer_may_buy_again() {
    let redis = TestRedis::start().await;
    let app = checkout_app(&redis, 300, 3, 5).await;
    let held = app.buy("cy", Some(3), "key-cy-1").await;
    assert_eq!(held.body["remainingStock"], 2);
    let token = held.body["reservationToken"].as_str().unwrap().to_owned();
    let other = app.buy("dee", Some(2), "key-dee").await;
    assert_eq!(other.code(), "RESERVED");
    assert_eq!(other.body["remainingStock"], 0);
    // Sold out while units sit in checkouts: the answer says so.
    let late = app.buy("eve", None, "key-eve").await;
    late.assert_error(410, "SOLD_OUT");
    assert_eq!(late.body["heldStock"], 5);
    assert_eq!(late.body["remainingStock"], 0);

    // Refused before anything is written: no header, a malformed one, someone else's order.
    let digest = redis.digest().await;
    app.cancel_hold(None)
        .await
        .assert_error(400, "INVALID_REQUEST");
    for bad in [
        "x",
        "1.abc",
        "0.0123456789abcdef0123456789abcdef",
        "1.0123456789abcdef",
    ] {
        app.cancel_hold(Some(bad))
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    let forged = format!("1.{}", "0".repeat(32));
    app.cancel_hold(Some(&forged))
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    let dee_order_with_cy_secret = format!("2.{}", token.split_once('.').unwrap().1);
    app.cancel_hold(Some(&dee_order_with_cy_secret))
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    assert_eq!(redis.digest().await, digest, "nothing written");

    let released = app.cancel_hold(Some(&token)).await;
    assert_eq!(released.status, 200, "{:?}", released.body);
    assert_eq!(released.body["state"], "released");
    assert_eq!(released.body["history"][1]["reason"], "cancelled");
    assert_eq!(app.sale_view().await["remaining"], 3);
    let repeated = app.cancel_hold(Some(&token)).await;
    assert_eq!(repeated.body["state"], "released", "idempotent");
    // The shop cancels the other hold.
    let by_shop = app.order_call("2", "/cancel").await;
    assert_eq!(by_shop.body["state"], "released");
    assert_eq!(app.sale_view().await["remaining"], 5);

    // The buyer may buy again: a new order.
    let again = app.buy("cy", Some(1), "key-cy-2").await;
    assert_eq!(again.code(), "RESERVED");
    assert_eq!(again.body["orderNumber"], 3);
    let c = counters(&redis, "default").await;
    assert_eq!((c["held"], c["released"], c["sold"]), (1, 5, 1));
    assert_adds_up(&app, &redis).await;
    let released_entries: Vec<_> = order_stream(&redis, "default")
        .await
        .into_iter()
        .filter(|e| e["type"] == "order.released")
        .collect();
    assert_eq!(released_entries.len(), 2);
    assert!(released_entries.iter().all(|e| e["reason"] == "cancelled"));
    let export = app.export(Some("released")).await;
    let users: Vec<&str> = export["buyers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["userId"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["cy", "dee"], "{export}");
}

#[tokio::test]
async fn a_quantity_is_all_or_nothing_and_bounded_by_max_per_buyer() {
    let redis = TestRedis::start().await;
    // No holds: an order of several units is confirmed when it is placed.
    let app = checkout_app(&redis, 0, 3, 5).await;
    let first = app.buy("fay", Some(3), "key-fay").await;
    assert_eq!(first.code(), "PURCHASED", "{:?}", first.body);
    assert_eq!(first.body["quantity"], 3);
    assert_eq!(first.body["remainingStock"], 2);
    assert!(first.body.get("holdExpiresAt").is_none());

    let digest = redis.digest().await;
    // 3 wanted, 2 left: nothing taken, and the count left is told.
    let short = app.buy("gil", Some(3), "key-gil-1").await;
    short.assert_error(410, "SOLD_OUT");
    assert_eq!(short.body["remainingStock"], 2);
    let over = app.buy("gil", Some(4), "key-gil-2").await;
    over.assert_error(400, "INVALID_REQUEST");
    assert!(
        over.body["message"].as_str().unwrap().contains("1 to 3"),
        "{:?}",
        over.body
    );
    for bad in [
        json!(0),
        json!(-1),
        json!(101),
        json!("2"),
        json!(1.5),
        json!(null),
    ] {
        let body = json!({ "userId": "gil", "quantity": bad });
        let reply = crate::helpers::Reply::read(
            app.http
                .post(app.url("/api/sale/purchase"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if bad.is_null() {
            // null is "not given": one unit.
            assert_eq!(reply.code(), "PURCHASED", "{:?}", reply.body);
            assert_eq!(reply.body["quantity"], 1);
            continue;
        }
        reply.assert_error(400, "INVALID_REQUEST");
    }
    let c = counters(&redis, "default").await;
    assert_eq!((c["sold"], c["confirmed"]), (4, 4));
    assert_ne!(redis.digest().await, digest);

    let second = app.buy("hal", Some(1), "key-hal").await;
    assert_eq!(second.code(), "PURCHASED");
    assert_eq!(second.body["remainingStock"], 0);
    let retried = app.buy("fay", Some(3), "key-fay").await;
    assert_eq!(retried.code(), "PURCHASED");
    assert_eq!(retried.body["orderNumber"], 1);
    let sold_out = app.buy("ivy", Some(1), "key-ivy").await;
    sold_out.assert_error(410, "SOLD_OUT");
    assert_adds_up(&app, &redis).await;
    // Without holds the order stream keeps order.created (no type field) with its units.
    let stream = order_stream(&redis, "default").await;
    assert_eq!(stream.len(), 3);
    assert!(stream.iter().all(|e| !e.contains_key("type")));
    assert_eq!(stream[0]["quantity"], "3");
}

#[tokio::test]
async fn a_plain_sale_answers_as_before_and_refuses_more_than_one_unit() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("ADMIN_TOKEN", TOKEN)]).await;
    let digest = redis.digest().await;
    app.buy("jo", Some(2), "key-jo-1")
        .await
        .assert_error(400, "INVALID_REQUEST");
    assert_eq!(redis.digest().await, digest);
    let bought = app.buy("jo", Some(1), "key-jo-2").await;
    assert_eq!(bought.code(), "PURCHASED");
    for field in ["quantity", "heldStock", "holdExpiresAt", "reservationToken"] {
        assert!(
            bought.body.get(field).is_none(),
            "{field}: {:?}",
            bought.body
        );
    }
    assert_eq!(app.status().await.body["heldStock"], 0);
    // A plain sale's orders are not checkout records.
    app.order_call("1", "/confirm")
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    assert!(!redis.config("default").await.contains_key("orderSeq"));
}

#[tokio::test]
async fn bad_checkout_input_is_refused_with_nothing_written() {
    let redis = TestRedis::start().await;
    let app = checkout_app(&redis, 300, 2, 10).await;
    app.buy("kim", None, "key-kim").await;
    let digest = redis.digest().await;
    let now = chrono::Utc::now();
    let window = |extra: serde_json::Value| {
        let mut body = json!({
            "productName": "Boot", "totalStock": 5,
            "startTime": (now - chrono::Duration::minutes(1)).to_rfc3339(),
            "endTime": (now + chrono::Duration::hours(1)).to_rfc3339(),
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for extra in [
        json!({"holdSeconds": 29}),
        json!({"holdSeconds": 86_401}),
        json!({"holdSeconds": -1}),
        json!({"holdSeconds": "60"}),
        json!({"maxPerBuyer": 0}),
        json!({"maxPerBuyer": 101}),
        json!({"maxPerBuyer": 2.5}),
    ] {
        for method in [reqwest::Method::PUT, reqwest::Method::PATCH] {
            let reply = crate::helpers::Reply::read(
                app.http
                    .request(method.clone(), app.url("/api/admin/sales/other"))
                    .bearer_auth(TOKEN)
                    .json(&if method == reqwest::Method::PUT {
                        window(extra.clone())
                    } else {
                        extra.clone()
                    })
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            reply.assert_error(400, "INVALID_REQUEST");
        }
    }
    for (path, status, code) in [
        ("abc", 400, "INVALID_REQUEST"),
        ("0", 400, "INVALID_REQUEST"),
        ("-1", 400, "INVALID_REQUEST"),
        ("99999999999999999999", 400, "INVALID_REQUEST"),
        ("99", 404, "ORDER_NOT_FOUND"),
    ] {
        for action in ["", "/confirm", "/cancel"] {
            app.order_call(path, action)
                .await
                .assert_error(status, code);
        }
    }
    let unknown = crate::helpers::Reply::read(
        app.http
            .post(app.url("/api/admin/sales/nosuch/orders/1/confirm"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    unknown.assert_error(404, "SALE_NOT_FOUND");
    let anonymous = crate::helpers::Reply::read(
        app.http
            .post(app.url("/api/admin/sales/default/orders/1/confirm"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    anonymous.assert_error(401, "UNAUTHORIZED");
    assert_eq!(redis.digest().await, digest, "nothing written");
    // PATCH turns holds off and on; a sale with holds stays a checkout sale.
    let patched = crate::helpers::Reply::read(
        app.http
            .patch(app.url("/api/admin/sales/default"))
            .bearer_auth(TOKEN)
            .json(&json!({"holdSeconds": 0, "maxPerBuyer": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(
        (
            patched.body["holdSeconds"].clone(),
            patched.body["maxPerBuyer"].clone()
        ),
        (json!(0), json!(1))
    );
    let bought = app.buy("lee", None, "key-lee").await;
    assert_eq!(bought.code(), "PURCHASED", "{:?}", bought.body);
    assert_eq!(
        bought.body["orderNumber"], 2,
        "numbered after the checkout orders"
    );
    assert_eq!(app.order_call("2", "").await.body["state"], "confirmed");
}

#[tokio::test]
async fn a_sale_that_gets_holds_after_it_sold_keeps_its_buyers_as_paid() {
    // Found by schemathesis: buyers from before the change have no order record.
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("ADMIN_TOKEN", TOKEN)]).await;
    assert_eq!(
        app.buy("early", None, "key-early").await.code(),
        "PURCHASED"
    );
    let patched = app
        .http
        .patch(app.url("/api/admin/sales/default"))
        .bearer_auth(TOKEN)
        .json(&json!({"holdSeconds": 120, "maxPerBuyer": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);

    let retried = app.buy("early", None, "key-early").await;
    assert_eq!(retried.code(), "PURCHASED", "{:?}", retried.body);
    assert_eq!(retried.body["orderNumber"], 1);
    app.buy("early", None, "key-early-2")
        .await
        .assert_error(409, "ALREADY_PURCHASED");
    let user = app.user("early").await;
    assert_eq!(
        (&user.body["hasPurchased"], &user.body["state"]),
        (&json!(true), &json!("confirmed"))
    );
    let next = app.buy("later", Some(2), "key-later").await;
    assert_eq!(next.code(), "RESERVED", "{:?}", next.body);
    assert_eq!(
        next.body["orderNumber"], 2,
        "numbered after the plain orders"
    );
    // This instance sent the plain sale's purchases lean (no secrets); the hold's call was sent
    // again in full, so its token has its secret.
    let token = next.body["reservationToken"].as_str().unwrap();
    let (order, secret) = token.split_once('.').unwrap();
    assert_eq!(order, "2");
    assert!(
        secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    let c = counters(&redis, "default").await;
    assert_eq!((c["sold"], c["held"], c["confirmed"]), (3, 2, 1));
    assert_adds_up(&app, &redis).await;
}

/// Order numbers just under a large power of ten (fifteen nines and up), from the admin path
/// and from a buyer's `Flashsale-Reservation` header, are answered like any other number, and
/// the Redis connection they went over answers the next call at once. Sent as Redis integers,
/// redis-protocol counted one digit too many for them and wrote a NUL after the command; Redis
/// then waited on that connection for a command that never ended, and the calls behind it
/// failed 503 (found by schemathesis).
#[tokio::test]
async fn order_numbers_just_under_a_power_of_ten_leave_the_connection_usable() {
    let redis = TestRedis::start().await;
    // One connection, so the next call goes over the same one.
    let app = spawn_app_with(
        &redis,
        &[
            ("ADMIN_TOKEN", TOKEN),
            ("SALE_HOLD_SECONDS", "300"),
            ("SALE_MAX_PER_BUYER", "2"),
            ("REDIS_POOL_SIZE", "1"),
        ],
    )
    .await;
    let held = app.buy("ivy", Some(1), "key-ivy").await;
    assert_eq!(held.code(), "RESERVED", "{:?}", held.body);
    let digest = redis.digest().await;
    for order in [
        "999999999999999",
        "9999999999999999",
        "99999999999999999",
        "999999999999999999",
        "9223372036854775807",
    ] {
        app.order_call(order, "")
            .await
            .assert_error(404, "ORDER_NOT_FOUND");
        let next = app.order_call("1", "").await;
        assert_eq!(next.status, 200, "after order {order}: {:?}", next.body);
        assert_eq!(next.body["state"], "held");

        let forged = format!("{order}.{}", "0".repeat(32));
        app.cancel_hold(Some(&forged))
            .await
            .assert_error(404, "ORDER_NOT_FOUND");
        let next = app.order_call("1", "").await;
        assert_eq!(next.status, 200, "after token {forged}: {:?}", next.body);
    }
    assert_eq!(redis.digest().await, digest, "nothing written");
}

/// Buyer records that name an order whose units are no longer the buyer's (released, or a late
/// payment refused), counted from Redis itself: every bucket's records against the orders.
async fn lapsed_records(redis: &TestRedis, buckets: u32) -> i64 {
    let keys = crate::helpers::keys("default");
    let mut lapsed = 0;
    for bucket in keys.all_buckets(buckets) {
        let records: std::collections::HashMap<String, String> =
            redis.client.hgetall(bucket).await.unwrap();
        for record in records.values() {
            let order = record.split(':').nth(1).unwrap().to_owned();
            let json: String = redis.client.hget(keys.checkouts(), order).await.unwrap();
            let state = serde_json::from_str::<serde_json::Value>(&json).unwrap()["s"].clone();
            if state == "released" || state == "refund_required" {
                lapsed += 1;
            }
        }
    }
    lapsed
}

/// The config's count of lapsed buyer records.
async fn lapsed_counter(redis: &TestRedis) -> i64 {
    let config = redis.config("default").await;
    config.get("lapsed").map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn a_released_order_leaves_its_buyer_record_lapsed_holding_nothing() {
    let redis = TestRedis::start().await;
    // 1,000 units: 10 buyer buckets, so an instance that has sold nothing yet builds its first
    // call of each script for the wrong number and is answered with the right one.
    let app = checkout_app(&redis, 300, 1, 1000).await;
    let other = checkout_app(&redis, 300, 1, 1000).await;
    let user = |app: &crate::helpers::TestApp, user: &str| {
        let url = app.url(&format!("/api/sales/default/user/{user}"));
        let http = app.http.clone();
        async move { crate::helpers::Reply::read(http.get(url).send().await.unwrap()).await }
    };

    assert_eq!(app.buy("ann", None, "ann-1").await.code(), "RESERVED");
    let seen = user(&other, "ann").await;
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(seen.body["orderNumber"], 1);
    // Released (by the shop here; an expiry releases alike): the units go back, and ann's
    // record stays in her bucket, lapsed, since a release is not given the buyer's bucket.
    assert_eq!(
        other.order_call("1", "/cancel").await.body["state"],
        "released"
    );
    let bucket =
        crate::helpers::keys("default").bucket_of(flashsale::store::keys::user_hash("ann"), 10);
    let record: Option<String> = redis.client.hget(bucket, "ann").await.unwrap();
    assert!(record.is_some_and(|r| r.split(':').nth(1) == Some("1")));
    assert_eq!(
        (
            lapsed_counter(&redis).await,
            lapsed_records(&redis, 10).await
        ),
        (1, 1)
    );
    // It holds nothing: not a buyer to the API, not counted among the sale's buyers.
    let seen = user(&other, "ann").await;
    assert_eq!(seen.body["hasPurchased"], false, "{:?}", seen.body);
    let view = app.sale_view().await;
    assert_eq!(
        (&view["buyers"], &view["consistent"]),
        (&json!(0), &json!(true)),
        "{view}"
    );

    // ann buys again: a new order over the lapsed record.
    let again = app.buy("ann", None, "ann-2").await;
    assert_eq!(
        (again.code(), &again.body["orderNumber"]),
        ("RESERVED", &json!(2))
    );
    assert_eq!(
        (
            lapsed_counter(&redis).await,
            lapsed_records(&redis, 10).await
        ),
        (0, 0)
    );
    // The first order's late payment finds her newer order: a refund, nothing taken.
    let late = other.order_call("1", "/confirm").await;
    late.assert_error(409, "HOLD_EXPIRED");
    assert_eq!(
        other.order_call("1", "").await.body["history"][2]["reason"],
        "reordered"
    );
    assert_eq!(user(&app, "ann").await.body["orderNumber"], 2);

    // bo's record names his second order, released too: his first order's late payment finds
    // no order of his that holds units, so it takes units again and his record names it.
    for (order, key) in [("3", "bo-1"), ("4", "bo-2")] {
        assert_eq!(
            app.buy("bo", None, key).await.body["orderNumber"],
            order.parse::<i64>().unwrap()
        );
        assert_eq!(
            other.order_call(order, "/cancel").await.body["state"],
            "released"
        );
    }
    // Lapsed: bo's record (naming order 4). ann's names her order 2; none names order 1.
    assert_eq!(
        (
            lapsed_counter(&redis).await,
            lapsed_records(&redis, 10).await
        ),
        (1, 1)
    );
    let paid = other.order_call("3", "/confirm").await;
    assert_eq!(paid.status, 200, "{:?}", paid.body);
    assert_eq!(
        (&paid.body["state"], &paid.body["late"]),
        (&json!("confirmed"), &json!(true))
    );
    assert_eq!(user(&other, "bo").await.body["orderNumber"], 3);
    assert_eq!(
        (
            lapsed_counter(&redis).await,
            lapsed_records(&redis, 10).await
        ),
        (0, 0)
    );
    assert_eq!(
        app.buy("bo", None, "bo-3").await.code(),
        "ALREADY_PURCHASED"
    );
    let view = app.sale_view().await;
    assert_eq!(view["buyers"], 2, "{view}");
    assert_adds_up(&app, &redis).await;
}

/// A new order's record in sale:{ID}:checkouts (prelude: read_order names its fields) is JSON
/// that reads back as the order, field for field, whatever its texts hold: the first buyer's
/// are as the service sends them, the others hold what JSON must escape (quotes, backslashes,
/// control characters) and non-ASCII, which only a direct caller of the script could send (the
/// record is joined by hand, each text escaped by cjson: prelude, order_json; README, what a
/// hold costs Redis). A hold, and an order placed confirmed (no holds, more than one unit per
/// buyer).
#[tokio::test]
async fn a_new_orders_record_reads_back_whatever_its_texts_hold() {
    use crate::helpers::{keys, purchase_script, Buy};
    let checkouts = keys("default").checkouts();
    for (hold_seconds, state, code) in [(300, "held", "RESERVED"), (0, "confirmed", "PURCHASED")] {
        let redis = TestRedis::start().await;
        let _app = checkout_app(&redis, hold_seconds, 3, 10).await;
        let buys = [
            Buy::new("ana", "0123456789abcdef"),
            Buy::new("q\"uote", "t\"1"),
            Buy::new("back\\slash", "t\\2"),
            Buy::new("new\nline\u{1}", "t3"),
            Buy::new("café", "t4"),
        ];
        let before = redis.now_ms().await;
        let answers = purchase_script(&redis.client, "default", &buys, 0, 1000).await;
        let after = redis.now_ms().await;
        assert_eq!(answers.len(), buys.len());
        for (buy, answer) in buys.iter().zip(answers) {
            let answer = answer.into_array();
            assert_eq!(answer[0].as_str().as_deref(), Some(code), "{buy:?}");
            let order = answer[3].as_i64().unwrap();
            let raw: String = redis.client.hget(&checkouts, order).await.unwrap();
            let record: serde_json::Value = serde_json::from_str(&raw)
                .unwrap_or_else(|e| panic!("{buy:?}: {raw:?} is not JSON: {e}"));
            let created = record["c"].as_i64().unwrap();
            assert!((before..=after).contains(&created), "{record}");
            let (expires, reservation) = if hold_seconds > 0 {
                (created + 300_000, format!("{order}.{}", buy.sent_secret()))
            } else {
                (0, String::new())
            };
            assert_eq!(
                record,
                json!({
                    "n": order, "u": buy.user, "q": 1, "s": state, "c": created, "e": expires,
                    "t": buy.token, "r": reservation, "rid": buy.request_id(),
                    "late": false, "h": [{ "state": state, "at": created }],
                }),
                "{raw}"
            );
        }
    }
}
