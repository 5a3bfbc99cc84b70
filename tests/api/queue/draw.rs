//! The draw: the pre-queue's order is HMAC-SHA256(seed, userId), the seed's SHA-256 is
//! published before the start and the seed after it, and anyone can recompute the order.

use super::{room_app, upcoming_room_sale, TOKEN};
use crate::helpers::{Reply, TestApp, TestRedis};
use futures::{stream, StreamExt};
use ring::{digest, hmac};

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Every row of the admin draw export, page by page: (position, userId).
async fn draw_export(app: &TestApp, sale: &str) -> (serde_json::Value, Vec<(i64, String)>) {
    let mut rows = Vec::new();
    let mut offset = 0;
    loop {
        let url = app.url(&format!("/api/admin/sales/{sale}/draw?offset={offset}"));
        let page = Reply::read(app.http.get(url).bearer_auth(TOKEN).send().await.unwrap()).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        for row in page.body["rows"].as_array().unwrap() {
            rows.push((
                row["position"].as_i64().unwrap(),
                row["userId"].as_str().unwrap().to_owned(),
            ));
        }
        match page.body["nextOffset"].as_u64() {
            Some(next) => offset = next,
            None => return (page.body, rows),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pre_queue_is_in_the_order_anyone_recomputes_from_the_revealed_seed() {
    // Arrange: a room open an hour before the start; 2,000 buyers join through three instances.
    let redis = TestRedis::start().await;
    let apps = [
        room_app(&redis, &[]).await,
        room_app(&redis, &[]).await,
        room_app(&redis, &[]).await,
    ];
    upcoming_room_sale(&apps[0], "drawn", 50, 10).await;
    let before = apps[1].get("/api/sales/drawn/status").await;
    let commitment = before.body["waitingRoom"]["drawCommitment"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(commitment.len(), 64);
    assert!(
        before.body["waitingRoom"]["drawSeed"].is_null(),
        "secret until the start"
    );
    let users: Vec<String> = (0..2_000).map(|n| format!("early-{n}@shop.test")).collect();
    let answers: Vec<serde_json::Value> = stream::iter(users.iter().enumerate())
        .map(|(n, user)| {
            let app = &apps[n % 3];
            async move { app.join("drawn", user).await.body }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(answers
        .iter()
        .all(|a| a["state"] == "pre_queue" && a["position"].is_null()));
    let (early, rows) = draw_export(&apps[0], "drawn").await;
    assert!(rows.is_empty() && early["drawSeed"].is_null(), "{early}");
    assert_eq!(early["preQueued"], 2_000);

    // Act: the sale starts; one buyer joins after it.
    apps[0].start_now("drawn").await;
    let late = apps[2].join("drawn", "late-comer").await;

    // Assert: the seed is revealed and matches the commitment published before the start.
    let after = apps[2].get("/api/sales/drawn/status").await;
    let seed = after.body["waitingRoom"]["drawSeed"]
        .as_str()
        .unwrap()
        .to_owned();
    let seed_bytes = unhex(&seed);
    assert_eq!(
        hex(digest::digest(&digest::SHA256, &seed_bytes).as_ref()),
        commitment
    );
    // The order, recomputed as the README shows: sort by HMAC-SHA256(seed, userId).
    let key = hmac::Key::new(hmac::HMAC_SHA256, &seed_bytes);
    let mut expected = users.clone();
    expected.sort_by_key(|user| hmac::sign(&key, user.as_bytes()).as_ref().to_vec());
    let served: Vec<(String, i64)> = stream::iter(users.iter().enumerate())
        .map(|(n, user)| {
            let app = &apps[n % 3];
            async move {
                let me = app.queue_me("drawn", user).await;
                (user.clone(), me.body["position"].as_i64().unwrap())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for (user, position) in &served {
        let drawn = expected.iter().position(|u| u == user).unwrap() as i64 + 1;
        assert_eq!(*position, drawn, "{user}");
    }
    assert_eq!(late.body["position"], 2_001, "{:?}", late.body);
    // The shop's export lists the pre-queue in exactly the recomputed order.
    let (page, rows) = draw_export(&apps[1], "drawn").await;
    assert_eq!(page["drawSeed"], seed.as_str());
    let exported: Vec<String> = rows.iter().map(|(_, user)| user.clone()).collect();
    assert_eq!(exported, expected);
    assert!(rows
        .iter()
        .enumerate()
        .all(|(n, (p, _))| *p == n as i64 + 1));
    let view = apps[0].admin_view("drawn").await;
    assert_eq!(view["waitingRoom"]["preQueued"], 2_000);
    assert_eq!(view["waitingRoom"]["drawSeed"], seed.as_str());
}
