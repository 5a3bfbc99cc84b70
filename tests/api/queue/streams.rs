//! The queue stream: a pre-queue buyer learns their drawn place at the start, every waiting
//! buyer hears "sold out" at once, and Redis's load does not grow with the streams.

use super::{queue_stream, room_app, upcoming_room_sale};
use crate::helpers::TestRedis;
use fred::prelude::*;
use futures::future::join_all;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_pre_queue_stream_learns_its_drawn_place_at_the_start() {
    let redis = TestRedis::start().await;
    let app = room_app(&redis, &[]).await;
    upcoming_room_sale(&app, "early", 10, 1).await;
    for n in 0..5 {
        app.join("early", &format!("e{n}")).await;
    }
    let ticket = app.join("early", "e4").await.body["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stream = queue_stream(&app, "early", &ticket).await;
    let first = stream
        .next_event("queue", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(first["state"], "pre_queue");

    app.start_now("early").await;
    let placed = stream
        .next_event("queue", Duration::from_secs(3))
        .await
        .expect("an event after the start");

    let me = app.queue_me("early", "e4").await;
    assert_eq!(placed["position"], me.body["position"], "{placed}");
    assert!(placed["position"].as_i64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_waiting_stream_hears_sold_out_within_a_second_and_nobody_is_admitted_after() {
    // Arrange: one unit, 30 buyers drawn, one let in a second; 29 streams on two instances.
    let redis = TestRedis::start().await;
    let apps = [room_app(&redis, &[]).await, room_app(&redis, &[]).await];
    upcoming_room_sale(&apps[0], "last", 1, 1).await;
    for n in 0..30 {
        apps[n % 2].join("last", &format!("w{n}")).await;
    }
    apps[0].start_now("last").await;
    let mut first = None;
    let mut streams = Vec::new();
    for n in 0..30 {
        let user = format!("w{n}");
        let me = apps[n % 2].queue_me("last", &user).await;
        if me.body["position"] == 1 {
            first = Some((user, me.body["admission"].as_str().unwrap().to_owned()));
        } else {
            let ticket = me.body["ticket"].as_str().unwrap();
            streams.push(queue_stream(&apps[n % 2], "last", ticket).await);
        }
    }
    for stream in &mut streams {
        let waiting = stream.next_event("queue", Duration::from_secs(2)).await;
        assert!(waiting.is_some_and(|w| w["state"] != "sold_out"));
    }

    // Act: the one admitted buyer takes the last unit.
    let (user, admission) = first.unwrap();
    let bought = apps[1].buy_admitted("last", &user, Some(&admission)).await;
    assert_eq!(bought.code(), "PURCHASED", "{:?}", bought.body);
    let sold = Instant::now();

    // Assert: every stream says so within a second.
    let told = join_all(streams.iter_mut().map(|stream| async move {
        stream
            .next_queue_state("sold_out", Duration::from_secs(3))
            .await
            .map(|_| sold.elapsed())
    }))
    .await;
    let slowest = told
        .iter()
        .map(|t| t.expect("every stream hears sold out"))
        .max()
        .unwrap();
    assert!(slowest <= Duration::from_secs(1), "slowest {slowest:?}");
    // Seconds later, when the rate has reached them, nobody is admitted.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for n in 0..30 {
        let me = apps[n % 2].queue_me("last", &format!("w{n}")).await;
        assert!(me.body["admission"].is_null(), "{:?}", me.body);
    }
}

/// Commands Redis has processed so far.
async fn commands(redis: &TestRedis) -> u64 {
    let stats: String = redis
        .client
        .custom(fred::cmd!("INFO"), vec!["stats"])
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|calls| calls.trim().parse().ok())
        .unwrap_or(0)
}

/// Redis commands per second while `subscribers` queue streams are open on one instance.
async fn commands_per_second_with(subscribers: usize) -> f64 {
    let redis = TestRedis::start().await;
    let app = room_app(&redis, &[]).await;
    upcoming_room_sale(&app, "crowd", 10, 1).await;
    app.start_now("crowd").await;
    let mut tickets = Vec::new();
    for n in 0..subscribers.min(50) {
        let joined = app.join("crowd", &format!("c{n}")).await;
        tickets.push(joined.body["ticket"].as_str().unwrap().to_owned());
    }
    let mut streams = Vec::new();
    for n in 0..subscribers {
        streams.push(queue_stream(&app, "crowd", &tickets[n % tickets.len()]).await);
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = commands(&redis).await;
    let window = Duration::from_secs(3);
    tokio::time::sleep(window).await;
    let calls = commands(&redis).await - before;
    assert_eq!(streams.len(), subscribers);
    calls as f64 / window.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_queue_streams_cost_redis_no_more_than_one() {
    let one = commands_per_second_with(1).await;
    let many = commands_per_second_with(5_000).await;

    eprintln!("Redis commands per second: 1 queue stream {one:.1}, 5000 queue streams {many:.1}");
    assert!(one > 0.0, "the watcher reads the sale");
    // One watcher per sale at 10 reads a second, whatever the number of streams.
    assert!(many <= one * 1.5 + 2.0, "{many} vs {one}");
}
