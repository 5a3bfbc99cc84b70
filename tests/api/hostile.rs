//! Hostile and broken clients over raw TCP: slow headers, a slow body, a chunked body that never
//! ends, and idle connections past the cap. Each is freed within the client timeout while
//! other buyers are still served, and nothing reaches Redis.

use crate::helpers::{spawn_app_with, TestApp, TestRedis};
use std::time::{Duration, Instant};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const CLIENT_TIMEOUT_MS: u64 = 500;
/// Generous on purpose: this bounds a hang on a busy CI machine, it does not measure speed.
const MARGIN: Duration = Duration::from_secs(3);

async fn app(redis: &TestRedis, extra: &[(&str, &str)]) -> TestApp {
    let timeout = CLIENT_TIMEOUT_MS.to_string();
    let mut env = vec![("CLIENT_TIMEOUT_MS", timeout.as_str())];
    env.extend_from_slice(extra);
    spawn_app_with(redis, &env).await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (bounded); returns what it sent and when.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut all = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(MARGIN * 2, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => all.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("connection still open: {}", String::from_utf8_lossy(&all)),
        }
    }
    (
        String::from_utf8_lossy(&all).into_owned(),
        started.elapsed(),
    )
}

const HEAD: &str =
    "POST /api/sale/purchase HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n";

#[tokio::test]
async fn a_slow_body_gets_408_and_its_connection_closed_while_others_buy() {
    let redis = TestRedis::start().await;
    let app = app(&redis, &[]).await;
    let digest = redis.digest().await;

    // Act: 40 of 100 announced bytes, then nothing; meanwhile a normal buyer.
    let mut slow = connect(&app).await;
    let request = format!("{HEAD}Content-Length: 100\r\n\r\n{{\"userId\": \"slow-loris-00000000");
    slow.write_all(request.as_bytes()).await.unwrap();
    let (answer, took) = read_until_closed(&mut slow).await;

    // Assert: a JSON 408 within the timeout, the connection closed, nothing written.
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"REQUEST_TIMEOUT\""), "{answer}");
    assert!(
        took < Duration::from_millis(CLIENT_TIMEOUT_MS) + MARGIN,
        "{took:?}"
    );
    assert_eq!(redis.digest().await, digest);
    assert_eq!(app.purchase("patient").await.code(), "PURCHASED");
}

#[tokio::test]
async fn a_chunked_body_that_never_ends_is_cut_off() {
    let redis = TestRedis::start().await;
    let app = app(&redis, &[]).await;
    let digest = redis.digest().await;

    let mut endless = connect(&app).await;
    let request = format!("{HEAD}Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"use\r\n");
    endless.write_all(request.as_bytes()).await.unwrap();
    // A chunk now and then, never the last one, for longer than the timeout.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(CLIENT_TIMEOUT_MS / 3)).await;
        if endless.write_all(b"1\r\n \r\n").await.is_err() {
            break;
        }
    }
    let (answer, took) = read_until_closed(&mut endless).await;

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < MARGIN, "{took:?}");
    assert_eq!(redis.digest().await, digest);
}

#[tokio::test]
async fn slow_headers_are_dropped_after_the_client_timeout() {
    let redis = TestRedis::start().await;
    let app = app(&redis, &[]).await;

    let mut slow = connect(&app).await;
    slow.write_all(b"POST /api/sale/purchase HTTP/1.1\r\nHost: sh")
        .await
        .unwrap();
    let served = app.purchase("meanwhile").await;
    let (answer, took) = read_until_closed(&mut slow).await;

    assert_eq!(served.code(), "PURCHASED");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(
        took < Duration::from_millis(CLIENT_TIMEOUT_MS) + MARGIN,
        "{took:?}"
    );
}

#[tokio::test]
async fn idle_connections_past_the_cap_wait_briefly_and_never_hold_the_service() {
    // Arrange: a cap of 50 connections, all taken by clients that say nothing.
    let redis = TestRedis::start().await;
    let app = app(&redis, &[("MAX_CONNECTIONS", "50")]).await;
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(connect(&app).await);
    }
    // A hundred more that say nothing either: they wait in the listen backlog, and are let in
    // 50 at a time as the ones before them time out.
    for _ in 0..100 {
        idle.push(connect(&app).await);
    }

    // Act: a real buyer arrives.
    let started = Instant::now();
    let served = app.purchase("in-line").await;
    let waited = started.elapsed();

    // Assert: served once the idle ones were dropped (within the client timeout), and every
    // idle connection is closed by the service.
    assert_eq!(served.code(), "PURCHASED", "{:?}", served.body);
    assert!(
        waited < Duration::from_millis(CLIENT_TIMEOUT_MS) * 2 + MARGIN,
        "{waited:?}"
    );
    for mut connection in idle.into_iter().take(50) {
        let (_, took) = read_until_closed(&mut connection).await;
        assert!(
            took < Duration::from_millis(CLIENT_TIMEOUT_MS) + MARGIN,
            "{took:?}"
        );
    }
}
