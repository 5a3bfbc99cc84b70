//! Holds that expire (30 s, the shortest a sale allows): under load across instances, swept
//! by several instances at once, and confirmed at the instant they expire.

use super::{assert_adds_up, counters, order_stream, STRIPE_SECRET, TOKEN};
use crate::helpers::{spawn_app_with, TestApp, TestRedis};
use futures::StreamExt;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

/// `n` instances on one Redis whose configured sale has 30 s holds.
async fn instances(redis: &TestRedis, n: usize, stock: u32) -> Vec<TestApp> {
    let stock = stock.to_string();
    let mut apps = Vec::new();
    for _ in 0..n {
        apps.push(
            spawn_app_with(
                redis,
                &[
                    ("ADMIN_TOKEN", TOKEN),
                    ("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
                    ("SALE_HOLD_SECONDS", "30"),
                    ("SALE_TOTAL_STOCK", &stock),
                    // Buyers here retry for many seconds; the attempt limit is not under test.
                    ("USER_ATTEMPT_LIMIT", "0"),
                    // 500 requests open at once from this one test process, on two cores
                    // shared with the rest of the suite: a request head may take longer than
                    // the default 5 s to be written (one CI run got actix's 408). Slow clients
                    // are not under test here (hostile.rs tests them).
                    ("CLIENT_TIMEOUT_MS", "30000"),
                ],
            )
            .await,
        );
    }
    apps
}

impl TestApp {
    /// One purchase, or `None` when the connection failed under the crowd's load (a pooled
    /// keep-alive connection closed by the server as the request went out): the caller tries
    /// again with a new key, as its buyer would.
    async fn try_buy(&self, user: &str, key: &str) -> Option<crate::helpers::Reply> {
        let request = self
            .http
            .post(self.url("/api/sale/purchase"))
            .header("Idempotency-Key", key)
            .json(&serde_json::json!({ "userId": user }));
        match request.send().await {
            Ok(response) => Some(crate::helpers::Reply::read(response).await),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                None
            }
        }
    }
}

fn expiry_ms(reply: &crate::helpers::Reply) -> i64 {
    chrono::DateTime::parse_from_rfc3339(reply.body["holdExpiresAt"].as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// Reserves one unit for each user, spread over the instances; returns (user, order, expiry).
async fn reserve_all(apps: &[TestApp], users: &[String]) -> Vec<(String, i64, i64)> {
    let requests = users.iter().enumerate().map(|(i, user)| {
        let app = &apps[i % apps.len()];
        async move {
            let reply = app.buy(user, None, &format!("{user}-hold")).await;
            assert_eq!(reply.code(), "RESERVED", "{user}: {:?}", reply.body);
            (
                user.clone(),
                reply.body["orderNumber"].as_i64().unwrap(),
                expiry_ms(&reply),
            )
        }
    });
    futures::stream::iter(requests)
        .buffer_unordered(32)
        .collect()
        .await
}

/// Per order number, the types of its order-stream events, in order.
async fn events_by_order(redis: &TestRedis) -> BTreeMap<i64, Vec<String>> {
    let mut by_order: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for entry in order_stream(redis, "default").await {
        let kind = entry.get("type").cloned().unwrap_or("order.created".into());
        by_order
            .entry(entry["orderNumber"].parse().unwrap())
            .or_default()
            .push(kind);
    }
    by_order
}

#[tokio::test]
async fn holds_expire_while_500_buyers_keep_buying_and_each_unit_is_sold_again_once() {
    let redis = TestRedis::start().await;
    let apps = instances(&redis, 3, 100).await;
    let first: Vec<String> = (0..100).map(|i| format!("first-{i}")).collect();
    let holds = reserve_all(&apps, &first).await;
    // 70 pay; 30 never do.
    let (paying, unpaid) = holds.split_at(70);
    for (i, (_, order, _)) in paying.iter().enumerate() {
        let reply = apps[i % 3].order_call(&order.to_string(), "/confirm").await;
        assert_eq!(reply.body["state"], "confirmed", "{:?}", reply.body);
    }
    let unpaid_orders: BTreeSet<i64> = unpaid.iter().map(|(_, order, _)| *order).collect();
    let last_expiry = holds.iter().map(|(_, _, e)| *e).max().unwrap();

    // 500 more buyers keep trying until the units that come back are gone.
    let crowd: Vec<String> = (0..500).map(|i| format!("crowd-{i}")).collect();
    let deadline = Instant::now()
        + Duration::from_millis((last_expiry - redis.now_ms().await).max(0) as u64)
        + Duration::from_secs(8);
    let tries = crowd.iter().enumerate().map(|(i, user)| {
        let app = &apps[i % 3];
        async move {
            let mut attempt = 0;
            while Instant::now() < deadline {
                attempt += 1;
                let Some(reply) = app.try_buy(user, &format!("{user}-{attempt}")).await else {
                    continue;
                };
                match reply.code() {
                    "RESERVED" => {
                        return Some((user.clone(), reply.body["orderNumber"].as_i64().unwrap()))
                    }
                    "SOLD_OUT" | "SERVICE_UNAVAILABLE" => {
                        tokio::time::sleep(Duration::from_millis(400)).await
                    }
                    other => panic!("{user}: {other} {:?}", reply.body),
                }
            }
            None
        }
    });
    let winners: Vec<(String, i64)> = futures::stream::iter(tries)
        .buffer_unordered(500)
        .filter_map(|won| async move { won })
        .collect()
        .await;

    // Exactly the 30 released units were sold again, each once, each to one buyer.
    assert_eq!(winners.len(), 30, "{winners:?}");
    let buyers: BTreeSet<&String> = winners.iter().map(|(user, _)| user).collect();
    assert_eq!(buyers.len(), 30);
    let by_order = events_by_order(&redis).await;
    for order in &unpaid_orders {
        assert_eq!(
            by_order[order],
            ["order.reserved", "order.released"],
            "order {order}"
        );
    }
    for (_, order) in &winners {
        assert!(*order > 100, "a new order: {order}");
        assert_eq!(by_order[order], ["order.reserved"], "order {order}");
    }
    let released: Vec<_> = order_stream(&redis, "default")
        .await
        .into_iter()
        .filter(|e| e.get("type").is_some_and(|t| t == "order.released"))
        .collect();
    assert!(released.iter().all(|e| e["reason"] == "expired"));
    let c = counters(&redis, "default").await;
    assert_eq!(
        (c["sold"], c["held"], c["confirmed"], c["released"]),
        (100, 30, 70, 30),
        "{c:?}"
    );
    assert_eq!(apps[0].sale_view().await["remaining"], 0);
    assert_adds_up(&apps[1], &redis).await;
}

#[tokio::test]
async fn three_sweepers_release_every_expired_hold_once_within_two_seconds() {
    let redis = TestRedis::start().await;
    let apps = instances(&redis, 3, 200).await;
    let users: Vec<String> = (0..150).map(|i| format!("idle-{i}")).collect();
    let holds = reserve_all(&apps, &users).await;
    let mut expiries: Vec<i64> = holds.iter().map(|(_, _, e)| *e).collect();
    expiries.sort_unstable();
    let last = *expiries.last().unwrap();
    // A browser watching the live status (opened near the expiry: the test client gives up on
    // a response after 20 s).
    while redis.now_ms().await < expiries[0] - 2_000 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut watching = crate::events::Events::new(
        crate::events::Events::open(&apps[1], "/api/sales/default/events").await,
    );

    // No purchase traffic from here: only the sweepers release. Sample Redis's counter and
    // clock until every hold is back; a hold more than 2 s past its expiry must be released.
    loop {
        let now = redis.now_ms().await;
        let held = counters(&redis, "default").await["held"];
        let may_still_hold = expiries.iter().filter(|e| **e > now - 2_000).count() as i64;
        assert!(
            held <= may_still_hold,
            "at {now}: {held} held, at most {may_still_hold} may be"
        );
        if held == 0 {
            break;
        }
        assert!(
            now < last + 5_000,
            "holds still held 5 s after the last expiry"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The event stream shows every unit back, and none held, within about a second.
    let start = Instant::now();
    loop {
        let status = watching
            .next_status(Duration::from_secs(2))
            .await
            .expect("a status event");
        if status["remainingStock"] == 200 {
            assert_eq!(status["heldStock"], 0, "{status}");
            break;
        }
        assert!(start.elapsed() < Duration::from_millis(1500), "{status}");
    }
    // Each released once, by whichever instance came first.
    let by_order = events_by_order(&redis).await;
    assert_eq!(by_order.len(), 150);
    for (order, events) in &by_order {
        assert_eq!(
            events,
            &["order.reserved", "order.released"],
            "order {order}"
        );
    }
    let c = counters(&redis, "default").await;
    assert_eq!((c["sold"], c["held"], c["released"]), (0, 0, 150));
    // The status route (cached ≤ 100 ms) shows it too.
    let start = Instant::now();
    while apps[2].status().await.body["remainingStock"] != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "status still stale"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_adds_up(&apps[0], &redis).await;
}

#[tokio::test]
async fn a_confirm_sent_at_the_instant_its_hold_expires_has_exactly_one_outcome() {
    let redis = TestRedis::start().await;
    let apps = instances(&redis, 3, 300).await;
    let users: Vec<String> = (0..300).map(|i| format!("payer-{i}")).collect();
    let holds = reserve_all(&apps, &users).await;

    // Each order's confirm is sent at its expiry instant, while other buyers take whatever
    // comes back: some confirms win the race, some find their units free again (late), some
    // find them sold (refund).
    let offset_ms = chrono::Utc::now().timestamp_millis() - redis.now_ms().await;
    let confirms = holds.iter().enumerate().map(|(i, (_, order, expiry))| {
        let app = &apps[i % 3];
        async move {
            let at = expiry + offset_ms + (i as i64 % 7) * 20 - 60;
            let wait = at - chrono::Utc::now().timestamp_millis();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            (*order, app.order_call(&order.to_string(), "/confirm").await)
        }
    });
    let last_expiry = holds.iter().map(|(_, _, e)| *e).max().unwrap();
    let deadline = Instant::now()
        + Duration::from_millis((last_expiry - redis.now_ms().await).max(0) as u64 + 2_000);
    let rivals = (0..200).map(|i| {
        let app = &apps[i % 3];
        async move {
            let user = format!("rival-{i}");
            let mut attempt = 0;
            while Instant::now() < deadline {
                attempt += 1;
                let Some(reply) = app.try_buy(&user, &format!("{user}-{attempt}")).await else {
                    continue;
                };
                if reply.code() == "RESERVED" {
                    return 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            0
        }
    });
    let (answers, rival_units) = tokio::join!(
        futures::stream::iter(confirms)
            .buffer_unordered(300)
            .collect::<Vec<_>>(),
        futures::stream::iter(rivals)
            .buffer_unordered(200)
            .collect::<Vec<i64>>(),
    );

    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let by_order = events_by_order(&redis).await;
    for (order, reply) in &answers {
        let events = &by_order[order];
        let outcome = match (reply.status.as_u16(), reply.body["late"].as_bool()) {
            (200, Some(false)) => {
                assert_eq!(
                    events,
                    &["order.reserved", "order.confirmed"],
                    "order {order}"
                );
                "confirmed in time"
            }
            (200, Some(true)) => {
                // Either confirmed before any release, or released and taken again.
                assert!(
                    events == &["order.reserved", "order.confirmed"]
                        || events == &["order.reserved", "order.released", "order.confirmed"],
                    "order {order}: {events:?}"
                );
                "confirmed late"
            }
            (409, None) => {
                reply.assert_error(409, "HOLD_EXPIRED");
                assert_eq!(
                    events,
                    &["order.reserved", "order.released", "order.refund_required"],
                    "order {order}"
                );
                "refund"
            }
            other => panic!("order {order}: {other:?} {:?}", reply.body),
        };
        *outcomes.entry(outcome).or_default() += 1;
        // The answer is final: asking again tells the same.
        let again = apps[0].order_call(&order.to_string(), "/confirm").await;
        assert_eq!(again.status, reply.status, "order {order}");
    }
    let c = counters(&redis, "default").await;
    let confirmed = (outcomes.get("confirmed in time").unwrap_or(&0)
        + outcomes.get("confirmed late").unwrap_or(&0)) as i64;
    assert_eq!(c["confirmed"], confirmed, "{outcomes:?} {c:?}");
    let rivals_won: i64 = rival_units.iter().sum();
    // Never oversold: confirmed payers and rivals' holds fit in the stock.
    assert_eq!(c["sold"], confirmed + rivals_won, "{c:?}");
    assert!(c["sold"] <= 300);
    assert_adds_up(&apps[0], &redis).await;
    println!("outcomes at the expiry instant: {outcomes:?}, rivals won {rivals_won}");
}

#[tokio::test]
async fn a_late_payment_takes_free_units_again_or_asks_for_a_refund() {
    let redis = TestRedis::start().await;
    let apps = instances(&redis, 1, 2).await;
    let app = &apps[0];
    let ann = app.buy("late-ann", None, "late-ann-1").await;
    let bo = app.buy("late-bo", None, "late-bo-1").await;
    assert_eq!((ann.code(), bo.code()), ("RESERVED", "RESERVED"));
    let expiry = expiry_ms(&ann).max(expiry_ms(&bo));
    while redis.now_ms().await < expiry + 1_500 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.order_call("1", "").await.body["state"], "released");
    assert_eq!(app.sale_view().await["remaining"], 2);

    // Units free: the late payment takes them again.
    let late = app.order_call("1", "/confirm").await;
    assert_eq!(late.status, 200, "{:?}", late.body);
    assert_eq!(
        (&late.body["state"], &late.body["late"]),
        (&"confirmed".into(), &true.into())
    );
    assert_eq!(app.sale_view().await["remaining"], 1);
    assert_adds_up(app, &redis).await;
    // The buyer's own retry reads the order as bought.
    assert_eq!(
        app.buy("late-ann", None, "late-ann-1").await.code(),
        "PURCHASED"
    );

    // Units resold: the last unit goes to someone else, then the second payment arrives.
    let rival = app.buy("late-cy", None, "late-cy-1").await;
    assert_eq!(rival.code(), "RESERVED");
    let refused = app.order_call("2", "/confirm").await;
    refused.assert_error(409, "HOLD_EXPIRED");
    let order = app.order_call("2", "").await;
    assert_eq!(order.body["state"], "refund_required");
    assert_eq!(order.body["history"][2]["reason"], "resold");
    let digest = redis.digest().await;
    app.order_call("2", "/confirm")
        .await
        .assert_error(409, "HOLD_EXPIRED");
    assert_eq!(redis.digest().await, digest, "asked again: nothing written");
    let refunds: Vec<_> = order_stream(&redis, "default")
        .await
        .into_iter()
        .filter(|e| e.get("type").is_some_and(|t| t == "order.refund_required"))
        .collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["orderNumber"], "2");
    let c = counters(&redis, "default").await;
    assert_eq!(
        (c["sold"], c["held"], c["confirmed"], c["totalStock"]),
        (2, 1, 1, 2)
    );
    assert_adds_up(app, &redis).await;
}
