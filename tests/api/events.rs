//! The live status stream (Server-Sent Events): what a browser's EventSource sees, the cap on
//! streams, and Redis load that does not grow with the number of subscribers.

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestRedis};
use futures::StreamExt;
use std::time::{Duration, Instant};

/// An open event stream, read as a browser reads it.
pub(crate) struct Events {
    response: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    pub(crate) async fn open(app: &TestApp, path: &str) -> reqwest::Response {
        app.http
            .get(app.url(path))
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap()
    }

    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self {
            response: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next `status` event's data, within `patience`.
    pub(crate) async fn next_status(&mut self, patience: Duration) -> Option<serde_json::Value> {
        self.next_event("status", patience).await
    }

    /// The next event named `name`, its data as JSON, within `patience`.
    pub(crate) async fn next_event(
        &mut self,
        name: &str,
        patience: Duration,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + patience;
        let wanted = format!("event: {name}");
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if block.lines().any(|line| line == wanted) {
                    let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
                    return serde_json::from_str(data).ok();
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}

#[tokio::test]
async fn a_subscriber_sees_a_purchase_made_through_another_instance_within_a_second() {
    // Arrange
    let redis = TestRedis::start().await;
    let (watching, buying) = (spawn_app(&redis).await, spawn_app(&redis).await);
    let response = Events::open(&watching, "/api/sales/default/events").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut events = Events::new(response);
    let first = events.next_status(Duration::from_secs(2)).await.unwrap();
    assert_eq!(first["remainingStock"], 100);
    assert!(events.buffer.is_empty() || !events.buffer.contains("status"));

    // Act
    let bought_at = Instant::now();
    assert_eq!(buying.purchase("sse-buyer").await.code(), "PURCHASED");
    let next = events.next_status(Duration::from_secs(1)).await;

    // Assert
    let next = next.expect("a status event within one second");
    assert_eq!(next["remainingStock"], 99);
    assert_eq!(next["status"], "active");
    assert!(bought_at.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn the_stream_starts_with_a_retry_hint_and_the_alias_streams_sale_id() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let response = Events::open(&app, "/api/sale/events").await;
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();

    let text = String::from_utf8_lossy(&first);
    assert!(text.starts_with("retry: "), "{text}");
    assert!(text.contains("event: status\ndata: {"), "{text}");
}

#[tokio::test]
async fn streams_beyond_the_cap_are_503_and_a_closed_client_frees_its_slot() {
    // Arrange: two slots, both taken.
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("SSE_MAX_STREAMS", "2")]).await;
    let first = Events::open(&app, "/api/sale/events").await;
    let second = Events::open(&app, "/api/sale/events").await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let mut first = Events::new(first);
    first.next_status(Duration::from_secs(2)).await.unwrap();

    // Act
    let third = crate::helpers::Reply::read(Events::open(&app, "/api/sale/events").await).await;
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(3);
    let reopened = loop {
        let attempt = Events::open(&app, "/api/sale/events").await;
        if attempt.status() == 200 || Instant::now() > deadline {
            break attempt;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Assert
    third.assert_error(503, "SERVICE_UNAVAILABLE");
    assert!(third.header("retry-after").is_some());
    assert_eq!(reopened.status(), 200, "the closed client's slot came back");
    drop(second);
}

#[tokio::test]
async fn an_unknown_sale_has_no_stream() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let reply =
        crate::helpers::Reply::read(Events::open(&app, "/api/sales/nope/events").await).await;

    reply.assert_error(404, "SALE_NOT_FOUND");
}

/// Redis script calls per second while `subscribers` streams are open on one instance.
async fn reads_per_second_with(subscribers: usize) -> f64 {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let mut streams = Vec::new();
    for _ in 0..subscribers {
        streams.push(Events::new(Events::open(&app, "/api/sale/events").await));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = redis.evalsha_calls().await;
    let window = Duration::from_secs(2);
    tokio::time::sleep(window).await;
    let calls = redis.evalsha_calls().await - before;
    assert!(streams.len() == subscribers);
    calls as f64 / window.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_cost_redis_no_more_reads_than_one() {
    let one = reads_per_second_with(1).await;
    let thousand = reads_per_second_with(1_000).await;

    eprintln!(
        "Redis script calls per second: 1 subscriber {one:.1}, 1000 subscribers {thousand:.1}"
    );
    assert!(one > 0.0, "the watcher reads the sale");
    // One watcher per sale at 10 reads a second, whatever the number of streams.
    assert!(thousand <= one * 1.5 + 2.0, "{thousand} vs {one}");
    assert!(thousand <= 15.0, "{thousand} reads per second");
}
