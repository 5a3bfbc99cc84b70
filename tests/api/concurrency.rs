//! Many buyers at once, through several instances sharing one Redis: SPEC §1 invariants hold.

use crate::helpers::{spawn_app_with, TestRedis};
use fred::prelude::*;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};

const STOCK: i64 = 100;
const USERS: usize = 1_200;
const TRIES_PER_USER: usize = 2;
const IN_FLIGHT: usize = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_on_three_instances_buys_exactly_the_stock_once_each() {
    // Arrange: three instances, one Redis, 100 units.
    let redis = TestRedis::start().await;
    let env = [("SALE_TOTAL_STOCK", "100")];
    let apps = [
        spawn_app_with(&redis, &env).await,
        spawn_app_with(&redis, &env).await,
        spawn_app_with(&redis, &env).await,
    ];

    // Act: 2,400 requests from 1,200 users, each user twice, spread over the instances.
    let requests = (0..USERS * TRIES_PER_USER).map(|i| {
        let user = format!("buyer-{}", i % USERS);
        let app = &apps[i % apps.len()];
        async move {
            let reply = app.purchase(&user).await;
            (user, reply)
        }
    });
    let replies: Vec<_> = futures::stream::iter(requests)
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;

    // Assert: the answers.
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut winners = BTreeSet::new();
    let mut order_numbers = BTreeSet::new();
    for (user, reply) in &replies {
        *codes.entry(reply.code().to_owned()).or_default() += 1;
        match reply.code() {
            "PURCHASED" => {
                assert_eq!(reply.status, 200);
                assert!(
                    winners.insert(user.clone()),
                    "{user} was told PURCHASED twice"
                );
                assert!(order_numbers.insert(reply.body["orderNumber"].as_i64().unwrap()));
            }
            "ALREADY_PURCHASED" => assert_eq!(reply.status, 409),
            "SOLD_OUT" => assert_eq!(reply.status, 410),
            other => panic!("unexpected answer {other}: {:?}", reply.body),
        }
    }
    assert_eq!(codes["PURCHASED"], STOCK as usize, "{codes:?}");
    assert_eq!(order_numbers, (1..=STOCK).collect::<BTreeSet<_>>());

    // Assert: Redis.
    let buyers = redis.buyers("default").await;
    let remaining = redis.stock("default").await.unwrap();
    assert_eq!(remaining, 0);
    assert_eq!(buyers.len() as i64, STOCK);
    assert_eq!(remaining + buyers.len() as i64, STOCK, "conservation");
    let orders: i64 = redis
        .client
        .xlen(crate::helpers::keys("default").orders())
        .await
        .unwrap();
    assert_eq!(orders, STOCK, "one order per unit sold");
    assert_eq!(
        buyers.keys().cloned().collect::<BTreeSet<_>>(),
        winners,
        "every PURCHASED is in Redis"
    );
}
