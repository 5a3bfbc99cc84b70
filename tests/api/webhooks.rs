//! Orders to fulfilment: the order stream under concurrent purchases, and signed webhooks
//! delivered at least once to a real local receiver that fails, stalls and goes down; an
//! instance killed mid-delivery; dead letters and their re-drive through the admin API.

use crate::helpers::{
    crowd, flashsale, keys, spawn_app_with, wait_until_ready, Action, Receiver, Reply, TestApp,
    TestRedis,
};
use flashsale::store::local_server::free_port;
use fred::prelude::*;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    process::Stdio,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

const SECRET: &str = "whsec-test-secret-0123456789";
const ADMIN: &str = "an-admin-token-for-tests";

/// The orders in the stream: event id (entry id) → fields.
async fn orders(redis: &TestRedis, sale: &str) -> BTreeMap<String, HashMap<String, String>> {
    let entries: Vec<(String, HashMap<String, String>)> = redis
        .client
        .xrange(keys(sale).orders(), "-", "+", None)
        .await
        .unwrap();
    entries.into_iter().collect()
}

fn webhook_env<'a>(receiver: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("ORDER_WEBHOOK_URL", receiver),
        ("ORDER_WEBHOOK_SECRET", SECRET),
        ("ORDER_WEBHOOK_TIMEOUT_MS", "300"),
        ("ORDER_WEBHOOK_BACKOFF_MS", "50"),
        ("ORDER_WEBHOOK_CLAIM_IDLE_MS", "1000"),
        ("ADMIN_TOKEN", ADMIN),
    ];
    env.extend_from_slice(extra);
    env
}

async fn admin(app: &TestApp, method: reqwest::Method, path: &str) -> Reply {
    let request = app
        .http
        .request(method, app.url(&format!("/api/admin{path}")))
        .bearer_auth(ADMIN);
    Reply::read(request.send().await.unwrap()).await
}

async fn pending(redis: &TestRedis, key: fred::types::Key) -> i64 {
    // XPENDING's summary: [count, smallest id, greatest id, consumers].
    let summary: Vec<Value> = redis
        .client
        .custom(
            fred::cmd!("XPENDING"),
            vec![key.as_str().unwrap(), "flashsale-webhooks"],
        )
        .await
        .unwrap();
    summary[0].as_i64().unwrap()
}

#[tokio::test]
async fn concurrent_purchases_through_three_instances_record_one_order_per_buyer() {
    // Arrange: 50 units, 80 buyers; each sends its purchase twice with one key (the crowd's
    // "settled" request is the retry).
    let redis = TestRedis::start().await;
    let env = [("SALE_TOTAL_STOCK", "50")];
    let apps = vec![
        spawn_app_with(&redis, &env).await,
        spawn_app_with(&redis, &env).await,
        spawn_app_with(&redis, &env).await,
    ];
    let users: Vec<String> = (0..80).map(|i| format!("buyer-{i}")).collect();

    // Act
    let attempts = crowd(&apps, "default", &users, 16).await;

    // Assert: stream length = buyers = units sold, every buyer's order once, numbered 1..50.
    assert_eq!(attempts.len(), 80);
    let retried_purchases = attempts
        .iter()
        .filter(|a| a.first.code() == "PURCHASED" && a.settled.code() == "PURCHASED")
        .count();
    assert_eq!(retried_purchases, 50);
    let orders = orders(&redis, "default").await;
    let buyers = redis.buyers("default").await;
    assert_eq!(orders.len(), 50);
    assert_eq!(buyers.len(), 50);
    assert_eq!(redis.stock("default").await, Some(0));
    let users_in_stream: BTreeSet<&str> = orders.values().map(|o| o["userId"].as_str()).collect();
    let users_bought: BTreeSet<&str> = buyers.keys().map(String::as_str).collect();
    assert_eq!(users_in_stream, users_bought);
    let numbers: BTreeSet<i64> = orders
        .values()
        .map(|o| o["orderNumber"].parse().unwrap())
        .collect();
    assert_eq!(numbers, (1..=50).collect());
}

#[tokio::test]
async fn every_order_is_delivered_signed_through_failures_a_timeout_and_downtime() {
    // Arrange: a receiver that fails each event's first attempt, stalls one event's second
    // past the timeout, and is down for 1.5 s in the middle; two instances deliver.
    let redis = TestRedis::start().await;
    let stalled = Arc::new(Mutex::new(None::<String>));
    let plan = {
        let stalled = stalled.clone();
        Arc::new(move |event: &str, seen: usize| {
            let mut stalled = stalled.lock().unwrap();
            match seen {
                0 => Action::Fail(500),
                1 if stalled.is_none() => {
                    *stalled = Some(event.to_owned());
                    Action::Stall(Duration::from_secs(2))
                }
                _ => Action::Accept,
            }
        })
    };
    let mut receiver = Receiver::start(SECRET, plan).await;
    let url = receiver.url();
    // Back-off is capped below the claim time, so retries come fast here: enough attempts
    // to outlast the downtime.
    let env = webhook_env(
        &url,
        &[
            ("SALE_TOTAL_STOCK", "30"),
            ("ORDER_WEBHOOK_MAX_ATTEMPTS", "30"),
        ],
    );
    let apps = vec![
        spawn_app_with(&redis, &env).await,
        spawn_app_with(&redis, &env).await,
    ];

    // Act: 45 buyers for 30 units; the receiver goes down meanwhile and comes back.
    let users: Vec<String> = (0..45).map(|i| format!("fan-{i}")).collect();
    let first = crowd(&apps, "default", &users[..20], 8).await;
    receiver.stop().await;
    let second = crowd(&apps, "default", &users[20..], 8).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    receiver.restart();

    // Assert: every order delivered, each request signed validly, bodies match the stream.
    let orders = orders(&redis, "default").await;
    assert_eq!(orders.len(), 30);
    assert_eq!(first.len() + second.len(), 45);
    let events: BTreeSet<String> = orders.keys().cloned().collect();
    assert!(
        receiver.wait_for(&events, Duration::from_secs(30)).await,
        "undelivered: {:?}",
        events.difference(&receiver.delivered()).collect::<Vec<_>>()
    );
    let deliveries = receiver.deliveries();
    assert!(
        deliveries.iter().all(|d| d.signature_valid),
        "{deliveries:?}"
    );
    assert!(deliveries.iter().any(|d| d.action == "stall"));
    for delivery in deliveries.iter().filter(|d| d.action == "accept") {
        let order = &orders[&delivery.event_id];
        assert_eq!(delivery.body["eventId"], delivery.event_id.as_str());
        assert_eq!(delivery.body["type"], "order.created");
        assert_eq!(delivery.body["saleId"], "default");
        assert_eq!(delivery.body["userId"], order["userId"].as_str());
        assert_eq!(
            delivery.body["orderNumber"].to_string(),
            order["orderNumber"]
        );
        assert!(delivery.attempt >= 2, "each first attempt failed");
    }
    // Acknowledged only after the 2xx, and nothing dead-lettered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pending(&redis, keys("default").orders()).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "entries left pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead: i64 = redis
        .client
        .xlen(keys("default").orders_dead())
        .await
        .unwrap();
    assert_eq!(dead, 0);
}

#[tokio::test]
async fn orders_of_a_killed_instance_are_delivered_by_another() {
    // Arrange: a receiver that refuses everything until told otherwise; instance A (the real
    // binary) sells five units and holds their orders, waiting to retry, when it is killed.
    let redis = TestRedis::start().await;
    let accepting = Arc::new(AtomicBool::new(false));
    let plan = {
        let accepting = accepting.clone();
        Arc::new(move |_: &str, _: usize| {
            if accepting.load(Ordering::SeqCst) {
                Action::Accept
            } else {
                Action::Fail(503)
            }
        })
    };
    let receiver = Receiver::start(SECRET, plan).await;
    let port = free_port().unwrap();
    let mut a = flashsale()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("REDIS_URL", redis.url())
        .env("SALE_TOTAL_STOCK", "5")
        .env("RATE_LIMIT_PER_SECOND", "0")
        .env("ORDER_WEBHOOK_URL", receiver.url())
        .env("ORDER_WEBHOOK_SECRET", SECRET)
        .env("ORDER_WEBHOOK_TIMEOUT_MS", "500")
        .env("ORDER_WEBHOOK_BACKOFF_MS", "60000")
        .env("ORDER_WEBHOOK_CLAIM_IDLE_MS", "1500")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until_ready(port).await);
    let http = reqwest::Client::new();
    for i in 0..5 {
        let reply = http
            .post(format!("http://127.0.0.1:{port}/api/sale/purchase"))
            .json(&serde_json::json!({ "userId": format!("kill-{i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    let orders = orders(&redis, "default").await;
    let events: BTreeSet<String> = orders.keys().cloned().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while receiver.attempts_by_event().len() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "A never tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending(&redis, keys("default").orders()).await, 5);

    // Act: SIGKILL A mid-delivery; the receiver recovers; instance B starts.
    a.kill().unwrap();
    a.wait().unwrap();
    accepting.store(true, Ordering::SeqCst);
    let url = receiver.url();
    let _b = spawn_app_with(&redis, &webhook_env(&url, &[("SALE_TOTAL_STOCK", "5")])).await;

    // Assert: B claims A's pending orders and delivers each, counting A's failed attempts.
    assert!(receiver.wait_for(&events, Duration::from_secs(20)).await);
    let deliveries = receiver.deliveries();
    assert!(deliveries.iter().all(|d| d.signature_valid));
    for delivery in deliveries.iter().filter(|d| d.action == "accept") {
        let failed_before = deliveries
            .iter()
            .filter(|d| d.event_id == delivery.event_id && d.action != "accept")
            .count();
        assert!(failed_before >= 1);
        assert_eq!(delivery.attempt as usize, failed_before + 1, "{delivery:?}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pending(&redis, keys("default").orders()).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "entries left pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn orders_dead_after_the_last_attempt_are_listed_and_redriven() {
    // Arrange: a receiver that fails until healed; three attempts per order.
    let redis = TestRedis::start().await;
    let healed = Arc::new(AtomicBool::new(false));
    let plan = {
        let healed = healed.clone();
        Arc::new(move |_: &str, _: usize| {
            if healed.load(Ordering::SeqCst) {
                Action::Accept
            } else {
                Action::Fail(503)
            }
        })
    };
    let receiver = Receiver::start(SECRET, plan).await;
    let url = receiver.url();
    let app = spawn_app_with(
        &redis,
        &webhook_env(
            &url,
            &[
                ("ORDER_WEBHOOK_MAX_ATTEMPTS", "3"),
                ("ORDER_WEBHOOK_BACKOFF_MS", "20"),
            ],
        ),
    )
    .await;
    for i in 0..4 {
        assert_eq!(app.purchase(&format!("dead-{i}")).await.code(), "PURCHASED");
    }
    let orders = orders(&redis, "default").await;
    let events: BTreeSet<String> = orders.keys().cloned().collect();

    // Act 1: wait for the four orders to die.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let page = admin(&app, reqwest::Method::GET, "/sales/default/orders/dead").await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        if page.body["orders"].as_array().unwrap().len() == 4 {
            break page;
        }
        assert!(tokio::time::Instant::now() < deadline, "{:?}", page.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Assert 1: each dead order tells what happened; three attempts each, nothing delivered.
    let listed: BTreeSet<String> = dead.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            assert_eq!(row["attempts"], 3, "{row}");
            assert_eq!(row["lastError"], "receiver answered 503", "{row}");
            assert_eq!(row["saleId"], "default");
            assert!(row["userId"].as_str().unwrap().starts_with("dead-"));
            assert!(row["deadTime"].as_str().unwrap().ends_with('Z'));
            row["eventId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(listed, events);
    assert!(receiver
        .attempts_by_event()
        .values()
        .all(|attempts| *attempts == 3));
    assert_eq!(pending(&redis, keys("default").orders()).await, 0);
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("flashsale_webhook_deliveries_total{result=\"dead\"}"),
        "{metrics}"
    );

    // Act 2: heal the receiver and re-drive.
    healed.store(true, Ordering::SeqCst);
    let redriven = admin(
        &app,
        reqwest::Method::POST,
        "/sales/default/orders/dead/redrive",
    )
    .await;

    // Assert 2: all four delivered with their original event ids; nothing left behind.
    assert_eq!(redriven.status, 200, "{:?}", redriven.body);
    assert_eq!(
        redriven.body,
        serde_json::json!({"redriven": 4, "remaining": 0})
    );
    assert!(receiver.wait_for(&events, Duration::from_secs(10)).await);
    let empty = admin(&app, reqwest::Method::GET, "/sales/default/orders/dead").await;
    assert_eq!(empty.body["orders"], serde_json::json!([]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let retry: i64 = redis
            .client
            .xlen(keys("default").orders_retry())
            .await
            .unwrap();
        if retry == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{retry} left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stream_len: i64 = redis.client.xlen(keys("default").orders()).await.unwrap();
    assert_eq!(stream_len, 4, "the order stream itself is never rewritten");
}

#[tokio::test]
async fn dead_letter_routes_refuse_bad_input_without_writing() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("ADMIN_TOKEN", ADMIN)]).await;
    let before = redis.digest().await;

    let cases = [
        (reqwest::Method::GET, "/sales/nope/orders/dead", 404),
        (
            reqwest::Method::POST,
            "/sales/nope/orders/dead/redrive",
            404,
        ),
        (
            reqwest::Method::GET,
            "/sales/default/orders/dead?cursor=abc",
            400,
        ),
        (
            reqwest::Method::GET,
            "/sales/default/orders/dead?limit=0",
            400,
        ),
        (
            reqwest::Method::GET,
            "/sales/default/orders/dead?limit=1001",
            400,
        ),
        (
            reqwest::Method::GET,
            "/sales/default/orders/dead?color=red",
            400,
        ),
        (
            reqwest::Method::POST,
            "/sales/default/orders/dead/redrive?limit=-1",
            400,
        ),
        (
            reqwest::Method::POST,
            "/sales/bad%20id/orders/dead/redrive",
            400,
        ),
        (reqwest::Method::DELETE, "/sales/default/orders/dead", 405),
    ];
    for (method, path, status) in cases {
        let reply = admin(&app, method.clone(), path).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {path}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["success"], false);
    }
    let unauthorised = app
        .http
        .post(app.url("/api/admin/sales/default/orders/dead/redrive"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
    assert_eq!(redis.digest().await, before);

    // An empty dead-letter list of a real sale, and a re-drive of nothing.
    let empty = admin(&app, reqwest::Method::GET, "/sales/default/orders/dead").await;
    assert_eq!(
        empty.body,
        serde_json::json!({"orders": [], "nextCursor": null})
    );
    let nothing = admin(
        &app,
        reqwest::Method::POST,
        "/sales/default/orders/dead/redrive",
    )
    .await;
    assert_eq!(
        nothing.body,
        serde_json::json!({"redriven": 0, "remaining": 0})
    );
}

#[tokio::test]
async fn a_checkout_s_lifecycle_events_are_each_delivered_with_their_type() {
    let redis = TestRedis::start().await;
    let receiver = Receiver::start(SECRET, Arc::new(|_: &str, _: usize| Action::Accept)).await;
    let url = receiver.url();
    let app = spawn_app_with(
        &redis,
        &webhook_env(
            &url,
            &[("SALE_HOLD_SECONDS", "60"), ("SALE_MAX_PER_BUYER", "2")],
        ),
    )
    .await;
    let body = |user: &str| serde_json::json!({ "userId": user, "quantity": 2 });
    for user in ["paid", "gave-up"] {
        let reply = app
            .http
            .post(app.url("/api/sale/purchase"))
            .json(&body(user))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    assert_eq!(
        admin(
            &app,
            reqwest::Method::POST,
            "/sales/default/orders/1/confirm"
        )
        .await
        .status,
        200
    );
    assert_eq!(
        admin(
            &app,
            reqwest::Method::POST,
            "/sales/default/orders/2/cancel"
        )
        .await
        .status,
        200
    );

    let events: BTreeSet<String> = orders(&redis, "default").await.keys().cloned().collect();
    assert_eq!(events.len(), 4);
    assert!(receiver.wait_for(&events, Duration::from_secs(10)).await);
    let mut seen: Vec<(i64, String, Option<String>)> = receiver
        .deliveries()
        .into_iter()
        .map(|d| {
            assert!(d.signature_valid);
            assert_eq!(d.body["quantity"], 2);
            assert!(d.body["eventTime"].is_string());
            (
                d.body["orderNumber"].as_i64().unwrap(),
                d.body["type"].as_str().unwrap().to_owned(),
                d.body["reason"].as_str().map(str::to_owned),
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            (1, "order.confirmed".into(), None),
            (1, "order.reserved".into(), None),
            (2, "order.released".into(), Some("cancelled".into())),
            (2, "order.reserved".into(), None),
        ]
    );
}
