//! Open-loop load: purchases by new buyers sent on a fixed schedule, whatever the answers do,
//! with each latency measured from the request's scheduled send time (as wrk2 does), so a
//! stalled service is charged for every request it delayed (no coordinated omission).
//!
//! Usage: openloop <base-url> <requests-per-second> <seconds> [buyer-prefix] [max-in-flight]
//! Prints one JSON line: rate, sent, ok (2xx and 410), errors, p50/p90/p99/p99.9/max in ms, and
//! the time from the first scheduled send to the last answer (`drain_ms`).
//!
//! Requests beyond `max-in-flight` (default 512, the crowd's connections) wait for a free slot;
//! their wait counts in their latency, as a real buyer's would.

use std::time::Duration;
use tokio::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: openloop <base-url> <requests-per-second> <seconds> [buyer-prefix]");
        std::process::exit(2);
    }
    let url = format!("{}/api/sale/purchase", args[1].trim_end_matches('/'));
    let rate: f64 = args[2].parse().expect("requests per second");
    let seconds: f64 = args[3].parse().expect("seconds");
    let prefix = args.get(4).cloned().unwrap_or_else(|| "ol".to_owned());
    let max_in_flight: usize = args
        .get(5)
        .map_or(512, |n| n.parse().expect("max in flight"));
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let total = (rate * seconds) as u64;
    let period = Duration::from_secs_f64(1.0 / rate);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<Duration>>();
    let start = Instant::now() + Duration::from_millis(100);
    for i in 0..total {
        let scheduled = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        let (http, url, tx, slots) = (http.clone(), url.clone(), tx.clone(), slots.clone());
        let body = format!(r#"{{"userId":"{prefix}-{i}"}}"#);
        tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let answer = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let ok = match answer {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    (200..300).contains(&status) || status == 410
                }
                Err(_) => false,
            };
            let _ = tx.send(ok.then(|| scheduled.elapsed()));
        });
    }
    drop(tx);
    let mut latencies = Vec::with_capacity(total as usize);
    let mut errors = 0u64;
    while let Some(result) = rx.recv().await {
        match result {
            Some(latency) => latencies.push(latency.as_secs_f64() * 1000.0),
            None => errors += 1,
        }
    }
    let drain_ms = start.elapsed().as_secs_f64() * 1000.0;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        r#"{{"rate":{rate},"sent":{total},"ok":{},"errors":{errors},"p50_ms":{:.3},"p90_ms":{:.3},"p99_ms":{:.3},"p999_ms":{:.3},"max_ms":{:.3},"drain_ms":{drain_ms:.1}}}"#,
        latencies.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
}
