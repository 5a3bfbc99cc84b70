//! Admission: it follows the rate on Redis's clock, the admitted buyers who buy at once are
//! exactly the first `stock` positions, and a purchase without a valid admission is refused
//! before Redis with nothing written.

use super::{queue_stream, room_app, upcoming_room_sale, SECRET};
use crate::helpers::TestRedis;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use futures::future::join_all;
use ring::hmac;
use serde_json::json;
use std::time::{Duration, Instant};

/// An admission signed as the service signs one (README, Waiting room): the test knows the
/// secret, so it can make one that is valid but expired.
fn signed_admission(sale: &str, user: &str, expires_ms: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let message = format!("admission\n{sale}\n{user}\n{expires_ms}");
    let tag: String = hmac::sign(&key, message.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{expires_ms}.{tag}")
}

#[tokio::test]
async fn admission_reaches_a_position_when_the_rate_says_on_redis_clock() {
    // Arrange: two buyers a second; ten in the pre-queue; the sale starts.
    let redis = TestRedis::start().await;
    let app = room_app(&redis, &[]).await;
    upcoming_room_sale(&app, "paced", 20, 2).await;
    for n in 0..10 {
        app.join("paced", &format!("p{n}")).await;
    }
    app.start_now("paced").await;
    let status = app.get("/api/sales/paced/status").await;
    let start: DateTime<Utc> = status.body["startTime"].as_str().unwrap().parse().unwrap();
    // The buyer drawn ninth.
    let mut ninth = None;
    for n in 0..10 {
        let me = app.queue_me("paced", &format!("p{n}")).await;
        if me.body["position"] == 9 {
            ninth = Some(me.body["ticket"].as_str().unwrap().to_owned());
        }
    }
    let mut stream = queue_stream(&app, "paced", &ninth.unwrap()).await;

    // Act
    let admitted = stream
        .next_queue_state("admitted", Duration::from_secs(10))
        .await
        .expect("the ninth is admitted");
    let at = Utc::now();

    // Assert: 2 at the start, then 2 a second: the ninth 3.5 s after the start (± 1 s).
    let after = (at - start).num_milliseconds();
    assert!(
        (2_500..=4_500).contains(&after),
        "admitted {after} ms after the start"
    );
    assert_eq!(admitted["position"], 9);
    let expires: DateTime<Utc> = admitted["admissionExpiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!((expires - start).num_milliseconds(), 3_500 + 120_000);
    let view = app.admin_view("paced").await;
    let room = &view["waitingRoom"];
    assert!(room["admitted"].as_i64().unwrap() >= 9, "{room}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admitted_buyers_who_buy_at_once_are_exactly_the_first_positions() {
    // Arrange: 10 units, 20 buyers drawn, 5 let in a second, three instances.
    let redis = TestRedis::start().await;
    let apps = [
        room_app(&redis, &[]).await,
        room_app(&redis, &[]).await,
        room_app(&redis, &[]).await,
    ];
    upcoming_room_sale(&apps[0], "fair", 10, 5).await;
    for n in 0..20 {
        apps[n % 3].join("fair", &format!("f{n}")).await;
    }
    apps[0].start_now("fair").await;

    // Act: each buyer polls every 50 ms and buys the moment it is admitted.
    let buyers = (0..20).map(|n| {
        let app = &apps[n % 3];
        async move {
            let user = format!("f{n}");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let me = app.queue_me("fair", &user).await;
                let position = me.body["position"].as_i64().unwrap();
                match me.body["state"].as_str().unwrap() {
                    "admitted" => {
                        let admission = me.body["admission"].as_str().unwrap();
                        let bought = app.buy_admitted("fair", &user, Some(admission)).await;
                        return (position, bought.code().to_owned());
                    }
                    "sold_out" => return (position, "SOLD_OUT".to_owned()),
                    _ => {}
                }
                assert!(Instant::now() < deadline, "{:?}", me.body);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let outcomes = join_all(buyers).await;

    // Assert: the buyers are positions 1..10, exactly.
    let mut bought: Vec<i64> = outcomes
        .iter()
        .filter(|(_, code)| code == "PURCHASED")
        .map(|(position, _)| *position)
        .collect();
    bought.sort_unstable();
    assert_eq!(bought, (1..=10).collect::<Vec<_>>(), "{outcomes:?}");
    assert_eq!(redis.stock("fair").await, Some(0));
    let view = apps[1].admin_view("fair").await;
    assert_eq!(view["waitingRoom"]["admissionsUsed"], 10, "{view}");
    assert_eq!(view["consistent"], true);
}

#[tokio::test]
async fn purchases_without_a_valid_admission_are_403_and_write_nothing() {
    // Arrange: a started room sale; ann is admitted (first in line), bob is far behind.
    let redis = TestRedis::start().await;
    let app = room_app(&redis, &[]).await;
    upcoming_room_sale(&app, "gated", 5, 1).await;
    upcoming_room_sale(&app, "other", 5, 1).await;
    app.join("gated", "ann").await;
    app.join("other", "ann").await;
    app.start_now("gated").await;
    app.start_now("other").await;
    for n in 0..5 {
        app.join("gated", &format!("zz{n}")).await;
    }
    app.join("gated", "bob").await;
    let ann = app.queue_me("gated", "ann").await;
    assert_eq!(ann.body["state"], "admitted", "{:?}", ann.body);
    let admission = ann.body["admission"].as_str().unwrap().to_owned();
    let elsewhere = app.queue_me("other", "ann").await.body["admission"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = app.queue_me("gated", "bob").await;
    // Seventh in line for five units: not let in, and told it is unlikely.
    assert_eq!(bob.body["state"], "unlikely", "{:?}", bob.body);
    assert_eq!(bob.body["ahead"], 5, "{:?}", bob.body);
    let (expires, _) = admission.split_once('.').unwrap();
    let forged = admission.replacen(
        expires,
        &(expires.parse::<i64>().unwrap() + 1).to_string(),
        1,
    );
    let expired = signed_admission("gated", "ann", Utc::now().timestamp_millis() - 1_000);
    let digest = redis.digest().await;

    // Act and assert: each refused alike, nothing written.
    let cases = [
        ("ann", None),
        ("ann", Some("")),
        ("ann", Some("not-an-admission")),
        ("ann", Some(forged.as_str())),
        ("ann", Some(expired.as_str())),
        ("ann", Some(elsewhere.as_str())),
        ("bob", Some(admission.as_str())),
    ];
    for (user, header) in cases {
        let reply = app.buy_admitted("gated", user, header).await;
        reply.assert_error(403, "NOT_ADMITTED");
    }
    assert_eq!(
        redis.digest().await,
        digest,
        "a refused purchase wrote to Redis"
    );
    let bought = app.buy_admitted("gated", "ann", Some(&admission)).await;
    assert_eq!(bought.code(), "PURCHASED", "{:?}", bought.body);
}

#[tokio::test]
async fn a_room_switched_on_is_enforced_at_once_by_every_instance() {
    // Arrange: a plain sale that another instance has just served (it read "no room").
    let redis = TestRedis::start().await;
    let (admin, buyer) = (room_app(&redis, &[]).await, room_app(&redis, &[]).await);
    let start = Utc::now() - ChronoDuration::minutes(1);
    assert_eq!(
        admin
            .put_room_sale("late", 5, start, json!(null))
            .await
            .status,
        201
    );
    assert_eq!(
        buyer.buy_admitted("late", "first", None).await.code(),
        "PURCHASED"
    );

    // Act: the room goes on; the same instance sells again at once.
    let on = admin
        .patch_sale(
            "late",
            json!({ "waitingRoom": { "admitPerSecond": 1, "opensAt": start } }),
        )
        .await;
    assert_eq!(on.status, 200, "{:?}", on.body);
    let digest = redis.digest().await;
    let refused = buyer.buy_admitted("late", "second", None).await;

    // Assert
    refused.assert_error(403, "NOT_ADMITTED");
    assert_eq!(redis.digest().await, digest);
    // The buyer who bought before still reads their unit.
    let retry = buyer.buy_admitted("late", "first", None).await;
    retry.assert_error(403, "NOT_ADMITTED");
    let user = buyer.get("/api/sales/late/user/first").await;
    assert_eq!(user.body["hasPurchased"], true);
}
