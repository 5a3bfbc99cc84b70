//! Many sales on a real Redis Cluster, including while it moves a slot and while it fails over.

use crate::helpers::{
    assert_invariants, cluster::cli, cluster::slot_of_sale, cluster::TestCluster, crowd,
    first_codes, try_spawn_app, users, TestApp, TestRedis,
};
use fred::prelude::*;
use std::{
    collections::BTreeMap,
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
};

/// `count` instances on the cluster; the first seeds `sale` with `stock` units.
async fn apps_on(cluster: &TestCluster, sale: &str, stock: u32, count: usize) -> Vec<TestApp> {
    apps_on_with(cluster, sale, stock, count, &[]).await
}

/// [`apps_on`] with more variables for every instance.
async fn apps_on_with(
    cluster: &TestCluster,
    sale: &str,
    stock: u32,
    count: usize,
    extra: &[(&str, &str)],
) -> Vec<TestApp> {
    let redis = TestRedis::start().await; // only for base_env's other variables
    let mut apps = Vec::new();
    for n in 0..count {
        let mut env = crate::helpers::base_env(&redis);
        env.insert("REDIS_URL".into(), cluster.url());
        env.insert("SALE_ID".into(), sale.into());
        if n > 0 {
            env.remove("SALE_TOTAL_STOCK");
            env.remove("SALE_PRODUCT_NAME");
            env.remove("SALE_START");
            env.remove("SALE_END");
        } else {
            env.insert("SALE_TOTAL_STOCK".into(), stock.to_string());
        }
        for (name, value) in extra {
            env.insert((*name).into(), (*value).into());
        }
        apps.push(try_spawn_app(env).await.unwrap());
    }
    apps
}

/// Redis's record of a sale: buyers and remaining stock.
async fn sale_state(client: &Client, sale: &str) -> (BTreeMap<String, String>, i64) {
    let buyers = crate::helpers::redis::sale_buyers(client, sale).await;
    let stock = crate::helpers::redis::sale_stock(client, sale)
        .await
        .unwrap_or_default();
    (buyers, stock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_sales_on_three_primaries_each_sell_exactly_their_stock() {
    // Arrange: two sales on each primary, two instances serving all of them.
    let cluster = TestCluster::start(0).await;
    let sales = cluster.sales_on_every_primary("drop", 2);
    let apps = apps_on(&cluster, &sales[0], 20, 2).await;
    for sale in &sales[1..] {
        apps_on(&cluster, sale, 20, 1).await;
    }
    let owners: std::collections::BTreeSet<String> = sales
        .iter()
        .map(|sale| cluster.owner_of(slot_of_sale(sale)).id)
        .collect();
    assert_eq!(owners.len(), 3, "the sales cover all three primaries");

    // Act: 50 buyers per sale for 20 units each, all six sales at once.
    let buyers: Vec<Vec<String>> = sales.iter().map(|sale| users(sale, 50)).collect();
    let runs = sales
        .iter()
        .zip(&buyers)
        .map(|(sale, users)| crowd(&apps, sale, users, 32));
    let results = futures::future::join_all(runs).await;

    // Assert
    let client = cluster.client().await;
    for (sale, attempts) in sales.iter().zip(&results) {
        let (buyers, stock) = sale_state(&client, sale).await;
        assert_invariants(attempts, &buyers, stock, 20);
        assert_eq!(buyers.len(), 20, "{sale}: sold exactly its stock");
        assert_eq!(first_codes(attempts).get("SERVICE_UNAVAILABLE"), None);
    }
}

/// 300 buyers of `sale` (of `stock` units) through `apps` while its slot's keys move to another
/// primary a few at a time, then a few more: the slot moved, nothing is oversold or lost, and
/// the instances still sell afterwards. The buyers' first answers, by code.
async fn sells_through_a_slot_move(
    cluster: &TestCluster,
    apps: &[TestApp],
    sale: &str,
    stock: i64,
) -> BTreeMap<String, usize> {
    let slot = slot_of_sale(sale);
    let from = cluster.owner_of(slot);
    let to = cluster
        .primaries()
        .into_iter()
        .find(|node| node.id != from.id)
        .unwrap();
    let buyers = users("during", 300);
    let (attempts, ()) = tokio::join!(crowd(apps, sale, &buyers, 16), async {
        cluster.migrate_slot(slot, &to).await
    });
    let after = crowd(apps, sale, &users("after", 5), 5).await;

    assert_eq!(cluster.owner_of(slot).id, to.id);
    let client = cluster.client().await;
    let (buyers_in_redis, left) = sale_state(&client, sale).await;
    let all: Vec<_> = attempts.into_iter().chain(after).collect();
    assert_invariants(&all, &buyers_in_redis, left, stock);
    first_codes(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_sale_keeps_its_invariants_while_its_slot_moves_to_another_primary() {
    let cluster = TestCluster::start(0).await;
    let apps = apps_on(&cluster, "moving", 150, 2).await;

    let codes = sells_through_a_slot_move(&cluster, &apps, "moving", 150).await;

    eprintln!("first answers during the move: {codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_that_wait_for_a_replica_keep_their_invariants_while_their_slot_moves() {
    // Each primary with a replica, purchases answered only once a replica has them (the
    // script and `WAIT` in one pipeline). WAIT holds its connection until the replica
    // answers: enough connections for the crowd (as in failover.rs).
    let cluster = TestCluster::start(1).await;
    let waiting = [
        ("PURCHASE_WAIT_REPLICAS", "1"),
        ("PURCHASE_WAIT_TIMEOUT_MS", "500"),
        ("REDIS_TIMEOUT_MS", "2000"),
        ("REDIS_POOL_SIZE", "32"),
    ];
    let apps = apps_on_with(&cluster, "waiting", 150, 2, &waiting).await;

    let codes = sells_through_a_slot_move(&cluster, &apps, "waiting", 150).await;

    eprintln!("first answers while waiting for replicas: {codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_sells_at_once_again_after_a_half_migrated_slot_broke_its_connections() {
    // Arrange: slots marked MIGRATING on their owners with no node importing them (a
    // resharding cut short). A command for keys an owner lacks there (any purchase in a sale
    // that does not exist, `ghost-N`) is sent on with ASK to a node that sends it back with
    // MOVED. fred 10.1, following those itself, sent `ASKING` on busy connections and handed
    // purchases other commands' replies (500s), then gave up ("Max attempts reached"), ended
    // its connection task and cancelled the redirections queued behind it, still counting
    // them as queued: its client then wrote nothing to the socket until the connection was
    // declared unresponsive, and later buyers got 503s for as long as traffic stayed light.
    let cluster = TestCluster::start(0).await;
    let sale = "selling";
    let apps = apps_on(&cluster, sale, 100_000, 1).await;
    let ghosts = users("ghost", 12);
    let set_slot = |ghost: &str, state: &[&str]| {
        let slot = slot_of_sale(ghost);
        let from = cluster.owner_of(slot);
        let to = cluster.primaries().into_iter().find(|n| n.id != from.id);
        let to = to.unwrap().id;
        let state: Vec<&str> = state
            .iter()
            .map(|s| if *s == "TO" { to.as_str() } else { s })
            .collect();
        let slot = slot.to_string();
        let command = [&["cluster", "setslot", &slot][..], &state].concat();
        assert_eq!(cli(from.port, &command), "OK");
    };
    for ghost in &ghosts {
        set_slot(ghost, &["migrating", "TO"]);
    }

    // Act: waves of concurrent purchases in the ghost sales, with the real sale's buyers
    // among them; then the slots are made stable and buyers come one at a time, as after a
    // drop's rush.
    let mut during = BTreeMap::<String, usize>::new();
    for wave in 0..6 {
        let buyers = users(&format!("wave{wave}"), 48);
        let purchases = buyers.iter().enumerate().map(|(n, user)| {
            let in_sale = ghosts.get(n).map_or(sale, String::as_str);
            apps[0].purchase_in(in_sale, user)
        });
        for reply in futures::future::join_all(purchases).await {
            *during.entry(reply.code().to_owned()).or_default() += 1;
        }
    }
    for ghost in &ghosts {
        set_slot(ghost, &["stable"]);
    }
    let mut after = Vec::new();
    for user in users("after", 16) {
        let started = std::time::Instant::now();
        let reply = apps[0].purchase_in(sale, &user).await;
        after.push((reply.code().to_owned(), started.elapsed()));
    }

    // Assert: every later buyer is sold to: no connection is left holding its commands back
    // (fred counted the cancelled redirections as still queued and wrote nothing to the socket
    // until 200 piled up or the connection was declared unresponsive: such buyers got 503s).
    eprintln!("while the slots were stuck: {during:?}; after: {after:?}");
    for (code, _) in &after {
        assert_eq!(
            code, "PURCHASED",
            "after the slots were made stable: {after:?}"
        );
    }
    // While they were stuck, buyers were told the truth: sold, or "not now" (503) when fred
    // gave up or handed a purchase another command's reply, never a 500.
    let told: Vec<&str> = during.keys().map(String::as_str).collect();
    assert!(
        told.iter()
            .all(|code| ["PURCHASED", "SERVICE_UNAVAILABLE"].contains(code)),
        "{during:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_of_a_live_sale_loses_no_acknowledged_purchase() {
    // Arrange: each primary with a replica.
    let cluster = TestCluster::start(1).await;
    let sale = "failing";
    let apps = apps_on(&cluster, sale, 10_000, 2).await;
    let slot = slot_of_sale(sale);
    let old = cluster.owner_of(slot);
    let switched = AtomicBool::new(false);

    // Act: waves of buyers from before the failover until after the switch.
    let buying = async {
        let mut attempts = Vec::new();
        for wave in 0.. {
            let done = switched.load(Ordering::SeqCst);
            attempts.extend(crowd(&apps, sale, &users(&format!("wave{wave}"), 40), 16).await);
            if done {
                break;
            }
        }
        attempts
    };
    let failing_over = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let new = cluster.fail_over(slot).await;
        switched.store(true, Ordering::SeqCst);
        new
    };
    let (attempts, new) = tokio::join!(buying, failing_over);

    // Assert: a new primary, selling after the switch, nothing acknowledged lost.
    assert_ne!(new.id, old.id, "a new primary serves the sale");
    let last_wave = &attempts[attempts.len() - 40..];
    assert!(
        last_wave.iter().all(|a| a.settled.code() == "PURCHASED"),
        "selling continues after the switch: {:?}",
        first_codes(last_wave)
    );
    let client = cluster.client().await;
    let (buyers, stock) = sale_state(&client, sale).await;
    assert_invariants(&attempts, &buyers, stock, 10_000);
    eprintln!(
        "{} buyers around the failover, first answers: {:?}",
        attempts.len(),
        first_codes(&attempts)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_script_flush_on_every_primary_purchases_reload_and_work() {
    let cluster = TestCluster::start(0).await;
    let apps = apps_on(&cluster, "default", 100, 1).await;
    apps[0].purchase("before").await;

    for port in &cluster.ports {
        let flushed = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "script", "flush"])
            .status()
            .unwrap();
        assert!(flushed.success());
    }
    let reply = apps[0].purchase("after").await;

    assert_eq!(reply.code(), "PURCHASED", "{:?}", reply.body);
    assert_eq!(reply.body["orderNumber"], 2);
}

#[tokio::test]
async fn checkout_holds_on_every_primary_are_confirmed_cancelled_and_swept() {
    // One sale with 30 s holds on each primary, created through the admin API.
    let cluster = TestCluster::start(0).await;
    let sales = cluster.sales_on_every_primary("held", 1);
    let redis = TestRedis::start().await; // only for base_env's other variables
    let mut env = crate::helpers::base_env(&redis);
    env.insert("REDIS_URL".into(), cluster.url());
    env.insert("ADMIN_TOKEN".into(), "an-admin-token-for-tests".into());
    let app = try_spawn_app(env).await.unwrap();
    let admin = |request: reqwest::RequestBuilder| request.bearer_auth("an-admin-token-for-tests");
    let now = chrono::Utc::now();
    for sale in &sales {
        let body = serde_json::json!({
            "productName": "Boot", "totalStock": 3, "holdSeconds": 30,
            "startTime": (now - chrono::Duration::minutes(1)).to_rfc3339(),
            "endTime": (now + chrono::Duration::hours(1)).to_rfc3339(),
        });
        let put = admin(app.http.put(app.url(&format!("/api/admin/sales/{sale}"))))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201);
    }
    let client = cluster.client().await;
    for sale in &sales {
        // Three holds: one paid, one given back, one left to expire.
        for user in ["paid", "cancelled", "unpaid"] {
            let reply = app.purchase_in(sale, user).await;
            assert_eq!(reply.code(), "RESERVED", "{sale}: {:?}", reply.body);
        }
        let confirm = admin(
            app.http
                .post(app.url(&format!("/api/admin/sales/{sale}/orders/1/confirm"))),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(confirm.status(), 200);
        let cancel = admin(
            app.http
                .post(app.url(&format!("/api/admin/sales/{sale}/orders/2/cancel"))),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(cancel.status(), 200);
    }
    // The sweeper releases the unpaid hold of every sale, whichever primary holds it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    for sale in &sales {
        loop {
            let config: BTreeMap<String, String> = client
                .hgetall(format!("sale:{{{sale}}}:config"))
                .await
                .unwrap();
            if config["held"] == "0" {
                assert_eq!(
                    (
                        config["sold"].as_str(),
                        config["confirmed"].as_str(),
                        config["released"].as_str()
                    ),
                    ("1", "1", "2"),
                    "{sale}"
                );
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{sale}: {config:?}");
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}
