//! Joining: exact, gapless positions across instances, the same place on every join, and every
//! bad input answered with the SPEC's JSON error and nothing written.

use super::{encode, room_app, upcoming_room_sale, TOKEN};
use crate::helpers::{base_env, try_spawn_app, Reply, TestRedis};
use chrono::{Duration as ChronoDuration, Utc};
use futures::{stream, StreamExt};
use serde_json::json;
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_joins_through_three_instances_get_positions_one_to_n_once_each() {
    // Arrange: a sale that started a minute ago, with a room.
    let redis = TestRedis::start().await;
    let apps = [
        room_app(&redis, &[]).await,
        room_app(&redis, &[]).await,
        room_app(&redis, &[]).await,
    ];
    let start = Utc::now() - ChronoDuration::minutes(1);
    let room = json!({ "admitPerSecond": 10, "opensAt": start });
    let created = apps[0].put_room_sale("big", 100, start, room).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    const BUYERS: usize = 10_000;

    // Act: every buyer joins once, through one of the three instances, 64 at a time.
    let joined: Vec<(usize, i64)> = stream::iter(0..BUYERS)
        .map(|n| {
            let app = &apps[n % 3];
            async move {
                let reply = app.join("big", &format!("buyer-{n}")).await;
                assert_eq!(reply.status, 200, "{:?}", reply.body);
                (n, reply.body["position"].as_i64().unwrap())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;

    // Assert: positions 1..N, each once.
    let positions: BTreeSet<i64> = joined.iter().map(|(_, position)| *position).collect();
    assert_eq!(positions.len(), BUYERS);
    assert_eq!(positions.first(), Some(&1));
    assert_eq!(positions.last(), Some(&(BUYERS as i64)));
    // Rejoining (through another instance) and polling give the same place.
    for (n, position) in joined.iter().step_by(97) {
        let again = apps[(n + 1) % 3].join("big", &format!("buyer-{n}")).await;
        assert_eq!(again.body["position"], *position, "{:?}", again.body);
        let polled = apps[(n + 2) % 3]
            .queue_me("big", &format!("buyer-{n}"))
            .await;
        assert_eq!(polled.body["position"], *position, "{:?}", polled.body);
    }
    let view = apps[0].admin_view("big").await;
    assert_eq!(view["waitingRoom"]["queued"], BUYERS, "{view}");
}

#[tokio::test]
async fn a_join_answers_its_place_and_a_ticket_and_is_the_same_every_time() {
    let redis = TestRedis::start().await;
    let app = room_app(&redis, &[]).await;
    let start = Utc::now() - ChronoDuration::seconds(30);
    let room = json!({ "admitPerSecond": 1, "admissionSeconds": 60, "opensAt": start });
    app.put_room_sale("one", 5, start, room).await;

    let first = app.join("one", "ann").await;
    let second = app.join("one", "bob").await;
    let again = app.join("one", "ann").await;

    assert_eq!(first.status, 200);
    assert_eq!(first.header("cache-control"), Some("no-store"));
    // The first in line is admitted from the start: the sale started 30 s ago.
    assert_eq!(first.body["state"], "admitted", "{:?}", first.body);
    assert_eq!(first.body["position"], 1);
    assert!(first.body["admission"].as_str().is_some());
    assert!(first.body["ticket"].as_str().is_some());
    assert_eq!(second.body["position"], 2);
    assert_eq!(again.body, {
        let mut same = first.body.clone();
        same["serverTime"] = again.body["serverTime"].clone();
        same
    });
    let bought = app
        .buy_admitted("one", "ann", first.body["admission"].as_str())
        .await;
    assert_eq!(bought.code(), "PURCHASED");
    // Bob, second in line, is admitted too after one second of the start: his purchase counts
    // on the series the first one made (kept per worker thread).
    assert_eq!(second.body["state"], "admitted", "{:?}", second.body);
    let bought = app
        .buy_admitted("one", "bob", second.body["admission"].as_str())
        .await;
    assert_eq!(bought.code(), "PURCHASED");
    // Operators see joins, admissions used and the queue's length.
    app.get("/api/sales/one/status").await;
    let metrics = app.metrics_text().await;
    for series in [
        r#"flashsale_queue_joins_total{sale="one",state="queued"} 3"#,
        r#"flashsale_queue_admissions_used_total{sale="one"} 2"#,
        r#"flashsale_queue_joined{sale="one"} 2"#,
    ] {
        assert!(metrics.contains(series), "{series} not in {metrics}");
    }
}

#[tokio::test]
async fn bad_input_on_the_queue_routes_is_a_json_error_and_writes_nothing() {
    // Arrange: a room sale that has not opened, one that has, one without a room.
    let redis = TestRedis::start().await;
    let app = room_app(&redis, &[]).await;
    let start = Utc::now() + ChronoDuration::hours(1);
    let later = json!({ "admitPerSecond": 5, "opensAt": start - ChronoDuration::minutes(1) });
    assert_eq!(
        app.put_room_sale("closed", 5, start, later).await.status,
        201
    );
    upcoming_room_sale(&app, "open", 5, 5).await;
    let plain = json!({"productName": "Plain", "totalStock": 5, "startTime": Utc::now(),
        "endTime": Utc::now() + ChronoDuration::hours(1)});
    let url = app.url("/api/admin/sales/plain");
    let put = app
        .http
        .put(url)
        .bearer_auth(TOKEN)
        .json(&plain)
        .send()
        .await;
    assert_eq!(put.unwrap().status(), 201);
    let other = app.join("open", "someone").await;
    let ticket = other.body["ticket"].as_str().unwrap().to_owned();
    let digest = redis.digest().await;

    // Act and assert: each one an error, none of them a write.
    let join = |sale: &str, body: &str, content_type: &str| {
        let request = app
            .http
            .post(app.url(&format!("/api/sales/{sale}/queue")))
            .header("content-type", content_type.to_owned())
            .body(body.to_owned());
        async move { Reply::read(request.send().await.unwrap()).await }
    };
    let json_type = "application/json";
    join("open", "{", json_type)
        .await
        .assert_error(400, "INVALID_REQUEST");
    join("open", "{}", json_type)
        .await
        .assert_error(400, "INVALID_REQUEST");
    join("open", r#"{"userId":"has space"}"#, json_type)
        .await
        .assert_error(400, "INVALID_REQUEST");
    join(
        "open",
        &format!(r#"{{"userId":"{}"}}"#, "x".repeat(129)),
        json_type,
    )
    .await
    .assert_error(400, "INVALID_REQUEST");
    join(
        "open",
        &format!(r#"{{"userId":"a","pad":"{}"}}"#, "x".repeat(8_000)),
        json_type,
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    join("open", r#"{"userId":"a"}"#, "text/plain")
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    join("nosuch", r#"{"userId":"a"}"#, json_type)
        .await
        .assert_error(404, "SALE_NOT_FOUND");
    join("plain", r#"{"userId":"a"}"#, json_type)
        .await
        .assert_error(404, "NO_WAITING_ROOM");
    let not_open = join("closed", r#"{"userId":"a"}"#, json_type).await;
    not_open.assert_error(403, "QUEUE_NOT_OPEN");
    app.queue_me("open", "never-joined")
        .await
        .assert_error(404, "NOT_IN_QUEUE");
    app.get("/api/sales/open/queue/me?userId=a%20b")
        .await
        .assert_error(400, "INVALID_REQUEST");
    app.get("/api/sales/open/queue/me")
        .await
        .assert_error(400, "INVALID_REQUEST");
    app.get("/api/sales/open/queue/events")
        .await
        .assert_error(400, "INVALID_REQUEST");
    let forged = ticket.replacen("someone", "someone-else", 1);
    for bad in [forged.as_str(), "0~a~00", "~~~", &"9".repeat(600)] {
        app.get(&format!(
            "/api/sales/open/queue/events?ticket={}",
            encode(bad)
        ))
        .await
        .assert_error(400, "INVALID_REQUEST");
    }
    // Another sale's ticket.
    app.get(&format!(
        "/api/sales/closed/queue/events?ticket={}",
        encode(&ticket)
    ))
    .await
    .assert_error(400, "INVALID_REQUEST");
    assert_eq!(
        redis.digest().await,
        digest,
        "a refused request wrote to Redis"
    );
}

#[tokio::test]
async fn room_settings_are_checked_and_need_the_secret() {
    let redis = TestRedis::start().await;
    let app = room_app(&redis, &[]).await;
    let without_secret = room_app(&redis, &[("WAITING_ROOM_SECRET", "")]).await;
    let start = Utc::now() + ChronoDuration::hours(1);
    let digest = redis.digest().await;

    for room in [
        json!({ "admitPerSecond": 0 }),
        json!({ "admitPerSecond": 100_001 }),
        json!({ "admitPerSecond": -1 }),
        json!({ "admitPerSecond": 5, "admissionSeconds": 9 }),
        json!({ "admitPerSecond": 5, "admissionSeconds": 3_601 }),
        json!({ "admitPerSecond": 5, "opensAt": start + ChronoDuration::seconds(1) }),
        json!({ "admitPerSecond": 5, "surprise": true }),
        json!({ "admitPerSecond": "five" }),
        json!({}),
    ] {
        let reply = app.put_room_sale("s", 5, start, room.clone()).await;
        reply.assert_error(400, "INVALID_REQUEST");
    }
    let refused = without_secret
        .put_room_sale("s", 5, start, json!({ "admitPerSecond": 5 }))
        .await;
    refused.assert_error(400, "INVALID_REQUEST");
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("WAITING_ROOM_SECRET"));
    assert_eq!(redis.digest().await, digest);

    // PATCH switches a room on, changes it, and switches it off (its queue stays).
    let created = app.put_room_sale("s", 5, start, json!(null)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert!(created.body.get("waitingRoom").is_none());
    let on = app
        .patch_sale("s", json!({ "waitingRoom": { "admitPerSecond": 7 } }))
        .await;
    assert_eq!(on.body["waitingRoom"]["admitPerSecond"], 7, "{:?}", on.body);
    let commitment = on.body["waitingRoom"]["drawCommitment"].clone();
    let bad = app
        .patch_sale(
            "s",
            json!({ "waitingRoom": { "admitPerSecond": 7, "admissionSeconds": 1 } }),
        )
        .await;
    bad.assert_error(400, "INVALID_REQUEST");
    let off = app.patch_sale("s", json!({ "waitingRoom": null })).await;
    assert!(off.body.get("waitingRoom").is_none(), "{:?}", off.body);
    let back = app
        .patch_sale("s", json!({ "waitingRoom": { "admitPerSecond": 3 } }))
        .await;
    assert_eq!(
        back.body["waitingRoom"]["drawCommitment"], commitment,
        "a published commitment never changes"
    );

    // An instance without the secret does not start while a sale has a room on.
    let mut env = base_env(&redis);
    for name in [
        "SALE_TOTAL_STOCK",
        "SALE_START",
        "SALE_END",
        "SALE_PRODUCT_NAME",
    ] {
        env.remove(name);
    }
    let refused = try_spawn_app(env.clone()).await.err().expect("refused");
    assert!(
        refused.starts_with("WAITING_ROOM_SECRET:") && refused.contains("sale s "),
        "{refused}"
    );
    app.patch_sale("s", json!({ "waitingRoom": null })).await;
    assert!(try_spawn_app(env).await.is_ok(), "no room on: it starts");
}
