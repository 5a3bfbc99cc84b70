//! The admin API: every route's success, its 401s, its validation failures with Redis
//! unchanged, `force`, restocks under load, the CSV export, and the metrics they move.

use crate::helpers::{keys, spawn_app_with, Reply, TestApp, TestRedis};
use fred::prelude::*;
use futures::StreamExt;
use serde_json::{json, Value};

const TOKEN: &str = "an-admin-token-for-tests";

async fn admin_app(redis: &TestRedis) -> TestApp {
    spawn_app_with(redis, &[("ADMIN_TOKEN", TOKEN)]).await
}

impl TestApp {
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        self.admin_with(method, path, body, Some(TOKEN)).await
    }

    async fn admin_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, self.url(&format!("/api/admin{path}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::read(request.send().await.unwrap()).await
    }
}

fn sale(name: &str, stock: i64) -> Value {
    let now = chrono::Utc::now();
    json!({
        "productName": name, "totalStock": stock,
        "startTime": (now - chrono::Duration::minutes(1)).to_rfc3339(),
        "endTime": (now + chrono::Duration::hours(1)).to_rfc3339(),
    })
}

use reqwest::Method;

#[tokio::test]
async fn without_an_admin_token_the_admin_routes_do_not_exist() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[]).await;

    app.admin(Method::GET, "/sales", None)
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_counted_and_changes_nothing() {
    let redis = TestRedis::start().await;
    let app = admin_app(&redis).await;
    let digest = redis.digest().await;

    let missing = app
        .admin_with(Method::PUT, "/sales/x", Some(sale("X", 5)), None)
        .await;
    let wrong = app
        .admin_with(
            Method::DELETE,
            "/sales/default",
            None,
            Some("not-the-token-at-all"),
        )
        .await;

    missing.assert_error(401, "UNAUTHORIZED");
    wrong.assert_error(401, "UNAUTHORIZED");
    assert_eq!(redis.digest().await, digest);
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("flashsale_admin_unauthorized_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn put_creates_repeats_and_replaces_only_with_force_when_there_are_buyers() {
    // Arrange
    let redis = TestRedis::start().await;
    let app = admin_app(&redis).await;

    // Act + Assert: create, repeat, change without buyers.
    let created = app
        .admin(Method::PUT, "/sales/spring", Some(sale("Boot", 5)))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["totalStock"], 5);
    assert_eq!(created.body["consistent"], true);
    let same_body = json!({
        "productName": "Boot", "totalStock": 5,
        "startTime": created.body["startTime"], "endTime": created.body["endTime"],
    });
    assert_eq!(
        app.admin(Method::PUT, "/sales/spring", Some(same_body))
            .await
            .status,
        200
    );
    let changed = app
        .admin(Method::PUT, "/sales/spring", Some(sale("Boot", 6)))
        .await;
    assert_eq!(changed.status, 200, "no buyers: no force needed");

    // With buyers: 409 without force, then a reset with it.
    assert_eq!(app.purchase_in("spring", "early").await.code(), "PURCHASED");
    let _: () = redis
        .client
        .set(keys("spring").attempts("x"), 3, None, None, false)
        .await
        .unwrap();
    let digest = redis.digest().await;
    app.admin(Method::PUT, "/sales/spring", Some(sale("Boot", 9)))
        .await
        .assert_error(409, "SALE_HAS_BUYERS");
    assert_eq!(
        redis.digest().await,
        digest,
        "a refused replace writes nothing"
    );
    let forced = app
        .admin(
            Method::PUT,
            "/sales/spring?force=true",
            Some(sale("Boot", 9)),
        )
        .await;
    assert_eq!(forced.status, 200, "{:?}", forced.body);
    assert_eq!(forced.body["remaining"], 9);
    assert_eq!(forced.body["buyers"], 0);
    assert!(redis.buyers("spring").await.is_empty());
    assert!(!redis.keys().await.iter().any(|key| key.contains(":rl:")));
    assert_eq!(app.purchase_in("spring", "early").await.code(), "PURCHASED");
}

#[tokio::test]
async fn invalid_admin_input_is_400_and_writes_nothing() {
    let redis = TestRedis::start().await;
    let app = admin_app(&redis).await;
    let digest = redis.digest().await;
    let mut backwards = sale("X", 5);
    backwards["endTime"] = json!("2020-01-01T00:00:00Z");
    let mut unknown = sale("X", 5);
    unknown["colour"] = json!("red");

    for (path, body) in [
        ("/sales/x", sale("X", -1)),
        ("/sales/x", sale("X", 0)),
        ("/sales/x", sale("X", 1_000_000_001)),
        ("/sales/x", backwards),
        ("/sales/x", unknown),
        ("/sales/x", sale("", 5)),
        ("/sales/x", json!({"productName": "X"})),
        ("/sales/a.b", sale("X", 5)),
        ("/sales/a%7Bb%7D", sale("X", 5)),
    ] {
        app.admin(Method::PUT, path, Some(body))
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    for body in [
        json!({"units": 0}),
        json!({"units": -3}),
        json!({"units": "many"}),
    ] {
        app.admin(Method::POST, "/sales/default/restock", Some(body))
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    app.admin(Method::GET, "/sales/default/buyers?limit=1001", None)
        .await
        .assert_error(400, "INVALID_REQUEST");
    app.admin(Method::GET, "/sales/default/buyers?cursor=abc", None)
        .await
        .assert_error(400, "INVALID_REQUEST");
    assert_eq!(redis.digest().await, digest);
}

#[tokio::test]
async fn patch_changes_name_and_window_and_an_end_in_the_past_closes_the_sale() {
    let redis = TestRedis::start().await;
    let app = admin_app(&redis).await;
    app.purchase("before").await;

    let renamed = app
        .admin(
            Method::PATCH,
            "/sales/default",
            Some(json!({"productName": "Renamed"})),
        )
        .await;
    let closed = app
        .admin(
            Method::PATCH,
            "/sales/default",
            Some(json!({"endTime": "2020-01-01T00:00:00Z"})),
        )
        .await;

    assert_eq!(renamed.body["productName"], "Renamed");
    assert_eq!(renamed.body["buyers"], 1, "buyers untouched");
    assert_eq!(closed.status, 200, "{:?}", closed.body);
    assert_eq!(closed.body["status"], "ended");
    assert_eq!(app.purchase("after").await.code(), "SALE_ENDED");
    assert_eq!(redis.stock("default").await, Some(99), "stock untouched");
    app.admin(
        Method::PATCH,
        "/sales/nope",
        Some(json!({"productName": "X"})),
    )
    .await
    .assert_error(404, "SALE_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restock_during_purchases_keeps_conservation_and_a_retried_restock_adds_once() {
    // Arrange
    let redis = TestRedis::start().await;
    let app = admin_app(&redis).await;
    let restock = |key: &'static str| {
        let request = app
            .http
            .post(app.url("/api/admin/sales/default/restock"))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", key)
            .json(&json!({"units": 50}))
            .send();
        async move { Reply::read(request.await.unwrap()).await }
    };

    // Act: 300 buyers while two restocks (one retried) land.
    let buyers = futures::stream::iter((0..300).map(|n| {
        let app = &app;
        async move { app.purchase(&format!("r{n}")).await }
    }))
    .buffer_unordered(32)
    .collect::<Vec<_>>();
    let (replies, first, retried, second) = tokio::join!(
        buyers,
        restock("restock-1"),
        restock("restock-1"),
        restock("restock-2")
    );

    // Assert: 100 + 50 + 50 units, never more sold, remaining + buyers = total.
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(retried.status, 200);
    let sold = replies.iter().filter(|r| r.code() == "PURCHASED").count() as i64;
    let stats = app.admin(Method::GET, "/sales/default", None).await;
    assert_eq!(
        stats.body["totalStock"], 200,
        "the retried restock added once"
    );
    assert_eq!(stats.body["consistent"], true, "{:?}", stats.body);
    assert!((100..=200).contains(&sold), "{sold} sold of 200");
    assert_eq!(stats.body["remaining"].as_i64().unwrap() + sold, 200);
    assert_eq!(second.status, 200, "{:?}", second.body);
    // Refusals an instance answered alone, once it saw the sale sold out, are counted by its
    // next call, within about 50 ms (README, "Refused without Redis").
    let mut refused = stats.body["attemptsRefused"].clone();
    for _ in 0..40 {
        if refused == 300 - sold {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        refused =
            app.admin(Method::GET, "/sales/default", None).await.body["attemptsRefused"].clone();
    }
    assert_eq!(refused, 300 - sold, "every other buyer was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_page_in_purchase_order_and_a_hundred_thousand_export_as_streamed_csv() {
    // Arrange: 100,000 buyers written by the purchase script itself (64 calls in flight).
    const BUYERS: usize = 100_000;
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[("ADMIN_TOKEN", TOKEN), ("SALE_TOTAL_STOCK", "200000")],
    )
    .await;
    let store = redis.store().await;
    let sale = flashsale::domain::SaleId::parse("default").unwrap();
    let limit = flashsale::store::UserAttemptLimit {
        limit: 0,
        window_ms: 1,
    };
    futures::stream::iter((0..BUYERS).map(|n| {
        let (store, sale) = (&store, &sale);
        async move {
            let user = flashsale::domain::UserId::parse(format!("b{n}")).unwrap();
            store
                .purchase(sale, user, None, limit, "seed", flashsale::store::Ask::ONE)
                .await
                .unwrap()
        }
    }))
    .buffer_unordered(64)
    .collect::<Vec<_>>()
    .await;

    // Act
    let first = app
        .admin(Method::GET, "/sales/default/buyers?limit=1000", None)
        .await;
    let cursor = first.body["nextCursor"].as_str().unwrap().to_owned();
    let second = app
        .admin(
            Method::GET,
            &format!("/sales/default/buyers?limit=1000&cursor={cursor}"),
            None,
        )
        .await;
    let csv = app
        .http
        .get(app.url("/api/admin/sales/default/buyers"))
        .bearer_auth(TOKEN)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();

    // Assert: pages follow the order numbers; the CSV arrives in many chunks, complete.
    let buyers = first.body["buyers"].as_array().unwrap();
    assert_eq!(buyers.len(), 1000);
    assert_eq!(buyers[0]["orderNumber"], 1);
    assert_eq!(buyers[999]["orderNumber"], 1000);
    assert_eq!(second.body["buyers"][0]["orderNumber"], 1001);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.headers().get("content-length").is_none(),
        "streamed, not buffered"
    );
    let (mut chunks, mut rows, mut last_order, mut tail) = (0, 0usize, 0i64, String::new());
    let mut body = csv.bytes_stream();
    while let Some(chunk) = body.next().await {
        chunks += 1;
        tail.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = tail.find('\n') {
            let line: String = tail.drain(..=end).collect();
            if rows > 0 {
                let order: i64 = line.split(',').nth(1).unwrap().parse().unwrap();
                assert_eq!(order, last_order + 1, "purchase order");
                last_order = order;
            } else {
                assert_eq!(line.trim_end(), "userId,orderNumber,purchaseTime,quantity");
            }
            rows += 1;
        }
    }
    assert_eq!(rows, BUYERS + 1, "header and every buyer");
    assert!(
        chunks >= BUYERS / 1000,
        "one chunk per page at least: {chunks}"
    );
}

#[tokio::test]
async fn delete_removes_every_key_and_list_shows_what_exists() {
    let redis = TestRedis::start().await;
    let app = admin_app(&redis).await;
    app.admin(Method::PUT, "/sales/autumn", Some(sale("Coat", 3)))
        .await;
    app.purchase("gone").await;
    let listed = app.admin(Method::GET, "/sales", None).await;

    let deleted = app
        .http
        .delete(app.url("/api/admin/sales/default"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let again = app.admin(Method::DELETE, "/sales/default", None).await;

    let listed: Vec<&str> = listed.body["sales"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, ["default", "autumn"]);
    assert_eq!(deleted.status(), 204);
    again.assert_error(404, "SALE_NOT_FOUND");
    assert!(
        !redis
            .keys()
            .await
            .iter()
            .any(|key| key.contains("{default}")),
        "{:?}",
        redis.keys().await
    );
    app.purchase("after")
        .await
        .assert_error(404, "SALE_NOT_FOUND");
    let after = app.admin(Method::GET, "/sales", None).await;
    assert_eq!(after.body["sales"], json!(["autumn"]));
}

#[tokio::test]
async fn metrics_count_purchases_rejections_and_requests() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[
            ("SALE_TOTAL_STOCK", "1"),
            ("METRICS_TOKEN", "metrics-secret-token"),
        ],
    )
    .await;
    app.purchase("m1").await;
    app.purchase("m2").await;
    // Refused by sold_out.lua: the lane saw the sale refuse for want of stock.
    app.purchase("m3").await;
    app.status().await;

    let refused = app.http.get(app.url("/metrics")).send().await.unwrap();
    let text = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("metrics-secret-token")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(refused.status(), 401);
    for expected in [
        r#"flashsale_purchases_total{sale="default",code="PURCHASED"}"#,
        r#"flashsale_purchases_total{sale="default",code="SOLD_OUT"}"#,
        r#"flashsale_http_requests_total{route="/api/sale/purchase",method="POST",status="200"}"#,
        r#"flashsale_remaining_stock{sale="default"}"#,
        "flashsale_http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    // Script calls and the purchases they decided, per script (the recorder is shared by the
    // tests of this binary, so the counts are at least ours).
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
    };
    for script in ["purchase", "sold_out"] {
        let calls = value(&format!(
            r#"flashsale_purchase_batches_total{{script="{script}"}}"#
        ));
        let decided = value(&format!(
            r#"flashsale_purchase_batched_total{{script="{script}"}}"#
        ));
        assert!(
            calls >= 1.0 && decided >= calls,
            "{script}: {calls} calls, {decided} decided"
        );
    }
}

#[tokio::test]
async fn stats_count_the_buyer_records_so_a_stray_record_is_inconsistent() {
    // Arrange: three buyers, then one record written behind the service's back.
    let redis = TestRedis::start().await;
    let app = admin_app(&redis).await;
    for user in ["ann", "bea", "cid"] {
        assert_eq!(app.purchase(user).await.code(), "PURCHASED");
    }
    let before = app.admin(Method::GET, "/sales/default", None).await;
    let _: () = redis
        .client
        .hset(
            keys("default").buyer_bucket(0),
            ("stray", "1:99:0123456789abcdef"),
        )
        .await
        .unwrap();

    // Act
    let after = app.admin(Method::GET, "/sales/default", None).await;

    // Assert: the counter says 3 sold, the records say 4.
    assert_eq!(
        (
            &before.body["sold"],
            &before.body["buyers"],
            &before.body["consistent"]
        ),
        (&json!(3), &json!(3), &json!(true))
    );
    assert_eq!(
        (
            &after.body["sold"],
            &after.body["buyers"],
            &after.body["consistent"]
        ),
        (&json!(3), &json!(4), &json!(false))
    );
}

#[tokio::test]
async fn closing_ends_the_sale_at_redis_now_and_never_moves_its_start() {
    // Arrange: one sale that started a minute ago, one that starts tomorrow.
    let redis = TestRedis::start().await;
    let app = admin_app(&redis).await;
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let upcoming = json!({
        "productName": "Later", "totalStock": 5,
        "startTime": tomorrow.to_rfc3339(),
        "endTime": (tomorrow + chrono::Duration::hours(1)).to_rfc3339(),
    });
    app.admin(Method::PUT, "/sales/later", Some(upcoming)).await;
    let started = redis.config("default").await;
    let later = redis.config("later").await;
    let before_ms = redis.now_ms().await;

    // Act: both closed with an end long past.
    let past = Some(json!({"endTime": "2020-01-01T00:00:00Z"}));
    let closed = app
        .admin(Method::PATCH, "/sales/default", past.clone())
        .await;
    let refused = app.admin(Method::PATCH, "/sales/later", past).await;

    // Assert: the running sale ends now (not in 2020), its start as it was; the one that has
    // not started is refused with nothing written.
    assert_eq!(closed.status, 200, "{:?}", closed.body);
    let after = redis.config("default").await;
    assert_eq!(
        after["startMs"], started["startMs"],
        "the start never moves"
    );
    let end_ms: i64 = after["endMs"].parse().unwrap();
    assert!(
        (before_ms..=redis.now_ms().await).contains(&end_ms),
        "closed at Redis's now: {end_ms}"
    );
    refused.assert_error(400, "INVALID_REQUEST");
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("has not started"));
    assert_eq!(redis.config("later").await, later, "nothing written");
}

#[tokio::test]
async fn an_order_entry_this_build_never_wrote_is_an_error_logged_and_counted_not_a_row_of_zeros() {
    // Arrange: one real buyer, then an entry with a non-numeric order number written by hand.
    let redis = TestRedis::start().await;
    let app = admin_app(&redis).await;
    app.purchase("real").await;
    let _: String = redis
        .client
        .xadd(
            keys("default").orders(),
            false,
            None,
            "*",
            vec![
                ("saleId", "default"),
                ("userId", "forged"),
                ("orderNumber", "two"),
                ("purchaseTime", "0"),
                ("requestId", "x"),
            ],
        )
        .await
        .unwrap();

    // Act
    let page = app.admin(Method::GET, "/sales/default/buyers", None).await;

    // Assert
    page.assert_error(500, "INTERNAL_ERROR");
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(r#"flashsale_redis_bad_data_total{record="order"} 1"#),
        "{metrics}"
    );
}
