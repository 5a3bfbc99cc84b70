//! A crowd of buyers fired at several instances, each buyer with its own `Idempotency-Key`,
//! retrying a 503 with that key as a client would; and the SPEC §1 checks over what they were
//! told and what Redis holds.

use super::app::{Reply, TestApp};
use futures::StreamExt;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

/// One buyer's request: the first answer, and the answer once settled (after 503 retries).
#[derive(Debug)]
pub struct Attempt {
    pub user: String,
    pub first: Reply,
    pub settled: Reply,
}

/// How long a buyer keeps retrying a 503 before giving up (the test then fails on it).
const SETTLE_WITHIN: Duration = Duration::from_secs(30);

/// Fires one purchase per user of `sale`, spread over `apps`, `in_flight` at a time.
pub async fn crowd(
    apps: &[TestApp],
    sale: &str,
    users: &[String],
    in_flight: usize,
) -> Vec<Attempt> {
    let requests = users.iter().enumerate().map(|(i, user)| {
        let app = &apps[i % apps.len()];
        async move {
            let key = format!("{user}-attempt");
            let first = app.purchase_in_with_key(sale, user, &key).await;
            let deadline = Instant::now() + SETTLE_WITHIN;
            let mut settled = app.purchase_in_with_key(sale, user, &key).await;
            while settled.status == 503 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                settled = app.purchase_in_with_key(sale, user, &key).await;
            }
            Attempt {
                user: user.clone(),
                first,
                settled,
            }
        }
    });
    futures::stream::iter(requests)
        .buffer_unordered(in_flight)
        .collect()
        .await
}

/// Counts of first answers by code, for messages and for tests that expect some 503s.
/// `count` buyer ids: `<prefix>-0` …
pub fn users(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}-{n}")).collect()
}

pub fn first_codes(attempts: &[Attempt]) -> BTreeMap<String, usize> {
    let mut codes = BTreeMap::new();
    for attempt in attempts {
        *codes.entry(attempt.first.code().to_owned()).or_default() += 1;
    }
    codes
}

/// SPEC §1 over one sale: never oversold, one unit per buyer with orders 1..n, conservation,
/// every acknowledged purchase in Redis, and every 503 either not applied or settled as
/// `PURCHASED` by the same request retried. Only 200/409/410/503 are acceptable first answers.
pub fn assert_invariants(
    attempts: &[Attempt],
    buyers_in_redis: &BTreeMap<String, String>,
    remaining: i64,
    total: i64,
) {
    let codes = first_codes(attempts);
    for attempt in attempts {
        let status = attempt.first.status.as_u16();
        assert!(
            matches!(status, 200 | 409 | 410 | 503),
            "{}: first answer {status} {:?} ({codes:?})",
            attempt.user,
            attempt.first.body
        );
        assert_ne!(
            attempt.settled.status, 503,
            "{} never settled: {:?}",
            attempt.user, attempt.settled.body
        );
        let settled = attempt.settled.status.as_u16();
        assert!(
            matches!(settled, 200 | 409 | 410),
            "{}: settled answer {settled} {:?} ({codes:?})",
            attempt.user,
            attempt.settled.body
        );
    }
    let told_purchased: BTreeSet<&str> = attempts
        .iter()
        .filter(|a| a.settled.code() == "PURCHASED")
        .map(|a| a.user.as_str())
        .collect();
    let in_redis: BTreeSet<&str> = buyers_in_redis.keys().map(String::as_str).collect();
    let mismatched: Vec<String> = attempts
        .iter()
        .filter(|a| told_purchased.contains(a.user.as_str()) != in_redis.contains(a.user.as_str()))
        .map(|a| {
            format!(
                "{}: first {} {}, settled {} {}, record {:?}",
                a.user,
                a.first.status,
                a.first.body,
                a.settled.status,
                a.settled.body,
                buyers_in_redis.get(&a.user)
            )
        })
        .collect();
    assert_eq!(
        told_purchased, in_redis,
        "the buyers told PURCHASED are exactly the buyers in Redis ({codes:?}); {mismatched:#?}"
    );
    let orders: BTreeSet<i64> = attempts
        .iter()
        .filter(|a| a.settled.code() == "PURCHASED")
        .map(|a| a.settled.body["orderNumber"].as_i64().unwrap())
        .collect();
    let sold = in_redis.len() as i64;
    assert!(sold <= total, "oversold: {sold} of {total}");
    assert_eq!(orders, (1..=sold).collect::<BTreeSet<_>>(), "orders 1..n");
    assert_eq!(remaining + sold, total, "conservation");
}
