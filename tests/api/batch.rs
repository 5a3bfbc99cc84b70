//! Batched decisions (README, Batched decisions): a batch of purchases decided by one call of
//! `lua/purchase.lua` answers and writes exactly what the same purchases decided one by one
//! do, over random sequences (stock edges, repeated buyers, retries with the same key,
//! quantities, holds and their expiry, the attempt limit, the waiting room's admissions, the
//! window closing between batches); the same batch sent first to `lua/sold_out.lua` (as an
//! instance does once it saw the sale sold out), and on to `lua/purchase.lua` for what it
//! passes on, answers and writes the same again; and concurrent purchases through the HTTP API
//! are batched, and refused cheaply once the stock is gone.

use crate::helpers::{
    assert_invariants, crowd, keys, purchase_script, purchase_script_lean_first, sold_out_script,
    spawn_app_with, users, Buy, TestRedis,
};
use fred::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

const TOKEN: &str = "an-admin-token-for-tests";

/// One random case: a sale's rules, and segments of purchases with what happens between them.
#[derive(Debug)]
struct Case {
    stock: i64,
    hold_seconds: i64,
    max_per_buyer: i64,
    limit: u32,
    /// The waiting room's rate set in the config: every purchase then needs an admission.
    room: bool,
    segments: Vec<Segment>,
}

#[derive(Debug)]
struct Segment {
    buys: Vec<Buy>,
    /// Before this segment: every held order's hold made expired.
    expire_holds: bool,
    /// Before this segment: the sale's window closed (its end moved into the past).
    close: bool,
}

fn random_case(rng: &mut StdRng) -> Case {
    let holds = rng.random_bool(0.4);
    let max_per_buyer = if holds || rng.random_bool(0.3) {
        rng.random_range(1..=3)
    } else {
        1
    };
    let users: Vec<String> = (0..rng.random_range(1..=12))
        .map(|n| format!("u{n}"))
        .collect();
    let mut tokens: Vec<(String, String)> = Vec::new();
    let room = rng.random_bool(0.2);
    let mut segments = Vec::new();
    let mut closed = false;
    for index in 0..rng.random_range(1..=4) {
        let mut buys = Vec::new();
        for _ in 0..rng.random_range(1..=24) {
            // A retry of an earlier request (same user, same token) a quarter of the time.
            let buy = if !tokens.is_empty() && rng.random_bool(0.25) {
                let (user, token) = tokens[rng.random_range(0..tokens.len())].clone();
                Buy::new(&user, &token)
            } else {
                let user = &users[rng.random_range(0..users.len())];
                let token = format!("{:016x}", rng.random::<u64>());
                tokens.push((user.clone(), token.clone()));
                Buy::new(user, &token)
            };
            buys.push(Buy {
                quantity: rng.random_range(1..=max_per_buyer as u32 + 1),
                // An admission that lapsed (0) or one good for an hour.
                admission: if rng.random_bool(0.8) {
                    i64::MAX / 2
                } else {
                    0
                },
                ..buy
            });
        }
        let close = index > 0 && !closed && rng.random_bool(0.25);
        closed |= close;
        segments.push(Segment {
            buys,
            expire_holds: index > 0 && rng.random_bool(0.5),
            close,
        });
    }
    Case {
        stock: rng.random_range(1..=8),
        hold_seconds: if holds { 600 } else { 0 },
        max_per_buyer,
        limit: if rng.random_bool(0.5) { 2 } else { 0 },
        room,
        segments,
    }
}

/// An answer with what depends on the moment it ran cleared: purchaseMs, holdExpiresMs, and
/// the attempt counter's time left (only whether there is a wait is kept).
fn answer_shape(answer: &Value) -> Vec<String> {
    answer
        .clone()
        .into_array()
        .into_iter()
        .enumerate()
        .map(|(index, item)| match index {
            2 | 6 => String::from("t"),
            4 => (item.as_i64().unwrap_or(0) > 0).to_string(),
            _ => format!("{item:?}"),
        })
        .collect()
}

/// A sale's state with the moments cleared and its own id taken out: config counters, buyer
/// records, orders (stream fields), checkout records, expiries, refused, the room's admissions
/// used, and every attempt counter of the case's users.
async fn state_of(redis: &TestRedis, sale: &str, users: &[String]) -> Json {
    let k = keys(sale);
    let client = &redis.client;
    let config: BTreeMap<String, String> = client.hgetall(k.config()).await.unwrap();
    let counters: BTreeMap<&String, &String> = config
        .iter()
        .filter(|(field, _)| {
            [
                "sold",
                "held",
                "confirmed",
                "released",
                "orderSeq",
                "totalStock",
            ]
            .contains(&field.as_str())
        })
        .collect();
    let buyers: BTreeMap<String, String> = redis
        .buyers(sale)
        .await
        .into_iter()
        .map(|(user, record)| {
            // "<purchaseMs>:<order>:<token>": the moment cleared.
            let rest = record.split_once(':').map(|(_, rest)| rest.to_owned());
            (user, rest.unwrap_or(record))
        })
        .collect();
    let entries: Vec<(String, BTreeMap<String, String>)> =
        client.xrange(k.orders(), "-", "+", None).await.unwrap();
    let orders: Vec<BTreeMap<String, String>> = entries
        .into_iter()
        .map(|(_, mut fields)| {
            for moment in ["purchaseTime", "at", "saleId"] {
                fields.remove(moment);
            }
            fields
        })
        .collect();
    let checkouts: BTreeMap<String, String> = client.hgetall(k.checkouts()).await.unwrap();
    let checkouts: BTreeMap<String, Json> = checkouts
        .into_iter()
        .map(|(order, raw)| {
            let mut record: Json = serde_json::from_str(&raw).unwrap();
            record["c"] = json!(0);
            record["e"] = json!(record["e"].as_i64().unwrap_or(0) > 0);
            for step in record["h"].as_array_mut().into_iter().flatten() {
                step["at"] = json!(0);
            }
            (order, record)
        })
        .collect();
    // Holds of one batch share one expiry (one clock), so only the set is compared.
    let mut expiries: Vec<String> = client
        .zrange(k.expiries(), 0, -1, None, false, None, false)
        .await
        .unwrap();
    expiries.sort();
    let refused: Option<i64> = client.get(k.refused()).await.unwrap();
    let used: Option<i64> = client.hget(k.room(), "used").await.unwrap();
    let mut attempts = BTreeMap::new();
    for user in users {
        let count: Option<i64> = client.get(k.attempts(user)).await.unwrap();
        attempts.insert(user.clone(), count);
    }
    json!({
        "config": counters, "buyers": buyers, "orders": orders, "checkouts": checkouts,
        "expiries": expiries, "refused": refused, "used": used, "attempts": attempts,
    })
}

/// Makes every held order of a sale expired: its record's expiry and its score in the past.
async fn expire_holds(redis: &TestRedis, sale: &str) {
    let k = keys(sale);
    let held: Vec<String> = redis
        .client
        .zrange(k.expiries(), 0, -1, None, false, None, false)
        .await
        .unwrap();
    for order in held {
        let raw: String = redis.client.hget(k.checkouts(), &order).await.unwrap();
        let mut record: Json = serde_json::from_str(&raw).unwrap();
        record["e"] = json!(1);
        let _: () = redis
            .client
            .hset(k.checkouts(), (order.as_str(), record.to_string()))
            .await
            .unwrap();
        let _: () = redis
            .client
            .zadd(
                k.expiries(),
                None,
                None,
                false,
                false,
                (1.0, order.as_str()),
            )
            .await
            .unwrap();
    }
}

/// A batch as an instance decides it once it saw the sale sold out: `lua/sold_out.lua` first,
/// then `lua/purchase.lua` for the purchases it passed on (all of them when it found stock),
/// answers put back in the batch's order, and how many the sold-out script refused.
async fn refused_first(
    redis: &TestRedis,
    sale: &str,
    buys: &[Buy],
    limit: u32,
) -> (Vec<Value>, usize) {
    let Some(refusals) = sold_out_script(&redis.client, sale, buys, limit, 60_000).await else {
        let decided = purchase_script(&redis.client, sale, buys, limit, 60_000).await;
        return (decided, 0);
    };
    let refused = refusals.iter().filter(|refusal| refusal.is_some()).count();
    assert_eq!(refusals.len(), buys.len());
    let passed: Vec<Buy> = buys
        .iter()
        .zip(&refusals)
        .filter(|(_, refusal)| refusal.is_none())
        .map(|(buy, _)| buy.clone())
        .collect();
    let mut decided = if passed.is_empty() {
        Vec::new()
    } else {
        purchase_script(&redis.client, sale, &passed, limit, 60_000).await
    }
    .into_iter();
    let answers = refusals
        .into_iter()
        .map(|refusal| refusal.unwrap_or_else(|| decided.next().unwrap()))
        .collect();
    (answers, refused)
}

#[tokio::test]
async fn a_batch_decides_exactly_as_the_same_purchases_one_by_one() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("ADMIN_TOKEN", TOKEN)]).await;
    let seed: u64 = std::env::var("BATCH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut purchases = 0;
    let mut refused_early = 0;
    let (mut lean_batches, mut full_batches) = (0, 0);
    for n in 0..60 {
        let case = random_case(&mut rng);
        let now = chrono::Utc::now();
        let body = json!({
            "productName": "Batch", "totalStock": case.stock,
            "startTime": (now - chrono::Duration::minutes(1)).to_rfc3339(),
            "endTime": (now + chrono::Duration::hours(1)).to_rfc3339(),
            "holdSeconds": case.hold_seconds, "maxPerBuyer": case.max_per_buyer,
        });
        let (batched, single, refused) = (format!("b{n}"), format!("s{n}"), format!("r{n}"));
        for sale in [&batched, &single, &refused] {
            let put = app
                .http
                .put(app.url(&format!("/api/admin/sales/{sale}")))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = put.status();
            assert_eq!(
                status,
                201,
                "seed {seed}: {body} → {}",
                put.text().await.unwrap()
            );
            // The app's sweeper would release the holds this test expires at a moment of its
            // own choosing, between one sale's purchases and the other's: it is kept away.
            let _: () = redis
                .client
                .srem("flashsale:sales:holds", sale.as_str())
                .await
                .unwrap();
            if case.room {
                let _: () = redis
                    .client
                    .hset(keys(sale).config(), ("wrRate", 5))
                    .await
                    .unwrap();
            }
        }
        let users: Vec<String> = (0..12).map(|n| format!("u{n}")).collect();
        for segment in &case.segments {
            for sale in [&batched, &single, &refused] {
                if segment.expire_holds {
                    expire_holds(&redis, sale).await;
                }
                if segment.close {
                    let past = now.timestamp_millis() - 1;
                    let _: () = redis
                        .client
                        .hset(keys(sale).config(), ("endMs", past))
                        .await
                        .unwrap();
                }
            }
            // The batch goes lean first, as the store sends it; the purchases one by one go in
            // full: a lean call decides exactly as the full one.
            let (together, lean) = purchase_script_lean_first(
                &redis.client,
                &batched,
                &segment.buys,
                case.limit,
                60_000,
            )
            .await;
            if lean {
                lean_batches += 1;
            } else {
                full_batches += 1;
            }
            let (first_refused, refusals) =
                refused_first(&redis, &refused, &segment.buys, case.limit).await;
            refused_early += refusals;
            let mut alone = Vec::new();
            for buy in &segment.buys {
                let answer = purchase_script(
                    &redis.client,
                    &single,
                    std::slice::from_ref(buy),
                    case.limit,
                    60_000,
                )
                .await;
                alone.extend(answer);
            }
            purchases += segment.buys.len();
            assert_eq!(together.len(), segment.buys.len());
            let together: Vec<_> = together.iter().map(answer_shape).collect();
            let first_refused: Vec<_> = first_refused.iter().map(answer_shape).collect();
            let alone: Vec<_> = alone.iter().map(answer_shape).collect();
            assert_eq!(together, alone, "seed {seed}, case {n}: {case:?}");
            assert_eq!(
                first_refused, alone,
                "sold_out.lua first: seed {seed}, case {n}: {case:?}"
            );
            let single_state = state_of(&redis, &single, &users).await;
            assert_eq!(
                state_of(&redis, &batched, &users).await,
                single_state,
                "seed {seed}, case {n}: {case:?}"
            );
            assert_eq!(
                state_of(&redis, &refused, &users).await,
                single_state,
                "sold_out.lua first: seed {seed}, case {n}: {case:?}"
            );
        }
    }
    println!(
        "seed {seed}: {purchases} purchases in 60 cases decided alike, \
         {refused_early} of them refused by sold_out.lua; \
         {lean_batches} batches decided lean, {full_batches} sent again in full"
    );
    // Most cases sell out (at most 8 units, up to 96 purchases): the path must have been taken.
    assert!(refused_early > 0, "seed {seed}: sold_out.lua refused none");
    // Half the cases have the attempt limit off (lean always, without holds), and with it on
    // most batches ask for more than the stock: both kinds of call must have been made.
    assert!(lean_batches > 0, "seed {seed}: no batch was decided lean");
    assert!(
        full_batches > 0,
        "seed {seed}: no lean batch was sent again in full"
    );
}

/// Concurrent purchases of one sale at one instance: every SPEC §1 invariant holds, and Redis
/// served far fewer script calls than there were purchases. With `PURCHASE_BATCH_MAX=1`, one
/// call per purchase.
#[tokio::test]
async fn concurrent_purchases_of_one_sale_share_script_calls() {
    for (max, batched) in [("64", true), ("1", false)] {
        let redis = TestRedis::start().await;
        let apps = vec![
            spawn_app_with(
                &redis,
                &[("SALE_TOTAL_STOCK", "300"), ("PURCHASE_BATCH_MAX", max)],
            )
            .await,
        ];
        let buyers = users("batched", 400);
        let before = redis.evalsha_calls().await;

        let attempts = crowd(&apps, "default", &buyers, 64).await;

        let calls = redis.evalsha_calls().await - before;
        let remaining = redis.stock("default").await.unwrap();
        assert_invariants(&attempts, &redis.buyers("default").await, remaining, 300);
        assert_eq!(remaining, 0);
        if batched {
            assert!(calls < 200, "{calls} script calls for 400 purchases");
        } else {
            assert!(
                calls >= 400,
                "{calls} script calls for 400 purchases, batching off"
            );
        }
    }
}

/// Script calls Redis ran since `SLOWLOG RESET`, by script: every command is logged (the
/// threshold is 0), and an `EVALSHA`'s second word names its script.
async fn script_calls(redis: &TestRedis, source: &str) -> usize {
    // The apps run their scripts with the key check in front (tests' REDIS_SCRIPT_KEY_CHECK).
    let sha = crate::helpers::checked(source).sha1().to_string();
    let log: Value = redis
        .client
        .custom(fred::cmd!("SLOWLOG"), vec!["GET", "-1"])
        .await
        .unwrap();
    log.into_array()
        .into_iter()
        .filter(|entry| {
            let words = entry.clone().into_array().get(3).cloned();
            let words = words.map(Value::into_array).unwrap_or_default();
            words.first().and_then(Value::as_str).as_deref() == Some("EVALSHA")
                && words.get(1).and_then(Value::as_str).as_deref() == Some(sha.as_str())
        })
        .count()
}

/// With local refusals off, once a sale is sold out its purchases are refused by
/// `lua/sold_out.lua`: a new buyer is told SOLD_OUT, then RATE_LIMITED past the attempt limit;
/// a buyer retrying is still told what they hold (PURCHASED with the same order, or
/// ALREADY_PURCHASED); a restock made through another instance is seen by the very next
/// purchase; and the refusals wrote nothing but the attempt counters and the refused count.
#[tokio::test]
async fn after_sell_out_purchases_are_refused_cheaply_and_buyers_still_told_the_truth() {
    use flashsale::store::scripts::{PURCHASE_SOURCE, SOLD_OUT_SOURCE};
    let redis = TestRedis::start().await;
    let env = [
        ("SALE_TOTAL_STOCK", "3"),
        ("USER_ATTEMPT_LIMIT", "4"),
        ("USER_ATTEMPT_WINDOW_MS", "60000"),
        ("ADMIN_TOKEN", TOKEN),
        ("PURCHASE_LOCAL_REFUSALS", "false"),
    ];
    let (a, b) = (
        spawn_app_with(&redis, &env).await,
        spawn_app_with(&redis, &env).await,
    );
    let mut orders = Vec::new();
    for buyer in ["ann", "bob", "cy"] {
        let reply = a.purchase_with_key(buyer, &format!("key-{buyer}")).await;
        assert_eq!(reply.code(), "PURCHASED");
        orders.push(reply.body["orderNumber"].clone());
    }
    // The first refusal of each worker teaches it the sale is sold out.
    for n in 0..8 {
        assert_eq!(a.purchase(&format!("late{n}")).await.code(), "SOLD_OUT");
        assert_eq!(b.purchase(&format!("late{n}")).await.code(), "SOLD_OUT");
    }
    let _: () = redis
        .client
        .custom(
            fred::cmd!("CONFIG"),
            vec![
                "SET",
                "slowlog-log-slower-than",
                "0",
                "slowlog-max-len",
                "10000",
            ],
        )
        .await
        .unwrap();
    let _: () = redis
        .client
        .custom(fred::cmd!("SLOWLOG"), vec!["RESET"])
        .await
        .unwrap();
    let buyers_before = redis.buyers("default").await;
    let refused_before: i64 = redis.client.get(keys("default").refused()).await.unwrap();

    let mut codes = Vec::new();
    for n in 0..4 {
        codes.push(a.purchase("dee").await.code().to_owned());
        codes.push(b.purchase(&format!("new{n}")).await.code().to_owned());
    }
    let limited = b.purchase("dee").await;
    let retry = a.purchase_with_key("ann", "key-ann").await;
    let again = b.purchase_with_key("bob", "another-key").await;

    assert_eq!(codes, ["SOLD_OUT"; 8], "new buyers after sell-out");
    assert_eq!(
        limited.code(),
        "RATE_LIMITED",
        "the fifth attempt past a limit of 4"
    );
    assert!(limited.header("retry-after").is_some());
    assert_eq!(
        retry.code(),
        "PURCHASED",
        "a buyer's retry is told it bought"
    );
    assert_eq!(retry.body["orderNumber"], orders[0]);
    assert_eq!(again.code(), "ALREADY_PURCHASED");
    assert_eq!(again.body["orderNumber"], orders[1]);
    let refusals = script_calls(&redis, SOLD_OUT_SOURCE).await;
    let purchases = script_calls(&redis, PURCHASE_SOURCE).await;
    // Each instance has a lane per HTTP worker (two on CI), and a worker that had not yet seen
    // the sale sold out learns it from one purchase.lua refusal: at most four such.
    assert!(
        refusals >= 5 && purchases <= 2 + 4 && refusals + purchases <= 13,
        "{refusals} sold_out.lua and {purchases} purchase.lua calls for 9 refusals and 2 buyers"
    );
    assert_eq!(redis.buyers("default").await, buyers_before);
    let refused: i64 = redis.client.get(keys("default").refused()).await.unwrap();
    assert_eq!(refused - refused_before, 9, "each refusal counted once");

    // A restock through one instance: the next purchase at the other buys.
    restock_one(&a).await;
    let bought = b.purchase("eve").await;
    assert_eq!(bought.code(), "PURCHASED", "{:?}", bought.body);
    assert_eq!(b.purchase("fay").await.code(), "SOLD_OUT");
    assert_invariants_of_default(&redis, 4).await;
}

/// One more unit for the default sale, through the admin API of `app`.
pub(crate) async fn restock_one(app: &crate::helpers::TestApp) {
    let restock = app
        .http
        .post(app.url("/api/admin/sales/default/restock"))
        .bearer_auth(TOKEN)
        .json(&json!({"units": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(restock.status(), 200, "{}", restock.text().await.unwrap());
}

/// SPEC §1 on the default sale: every buyer record names a distinct order, and buyers +
/// remaining = total.
pub(crate) async fn assert_invariants_of_default(redis: &TestRedis, total: i64) {
    let buyers = redis.buyers("default").await;
    let remaining = redis.stock("default").await.unwrap();
    assert_eq!(buyers.len() as i64 + remaining, total);
    let orders: std::collections::BTreeSet<String> = buyers
        .values()
        .map(|record| record.split(':').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(orders.len(), buyers.len(), "one order number per buyer");
}

/// How many times Redis ran `command` (from scripts too) since the last `CONFIG RESETSTAT`.
pub(crate) async fn command_calls(redis: &TestRedis, command: &str) -> u64 {
    let stats: String = redis
        .client
        .info(Some(fred::types::InfoKind::CommandStats))
        .await
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

pub(crate) async fn reset_stats(redis: &TestRedis) {
    let _: () = redis
        .client
        .custom(fred::cmd!("CONFIG"), vec!["RESETSTAT"])
        .await
        .unwrap();
}

/// Once an instance saw a sale sold out it fetches the sale's buyers once (`HKEYS` of each
/// bucket), and from then on (local refusals off) refuses users not among them without reading
/// their bucket (no `HEXISTS`), while buyers are still answered with what they hold. A buyer written since the
/// fetch, through another instance (a restock, then a purchase that sells out again), changes
/// the sale's fingerprint: the instance drops what it knew and tells that buyer the truth.
#[tokio::test]
async fn known_buyers_spare_a_bucket_read_per_refusal_and_never_hide_a_newer_buyer() {
    // Batched (the default) and each purchase alone take different paths to the script.
    for batch_max in ["64", "1"] {
        let redis = TestRedis::start().await;
        let env = [
            ("SALE_TOTAL_STOCK", "2"),
            ("USER_ATTEMPT_LIMIT", "0"),
            ("PURCHASE_BATCH_MAX", batch_max),
            ("ADMIN_TOKEN", TOKEN),
            ("PURCHASE_LOCAL_REFUSALS", "false"),
        ];
        let (a, b) = (
            spawn_app_with(&redis, &env).await,
            spawn_app_with(&redis, &env).await,
        );
        let ann = a.purchase_with_key("ann", "key-ann").await;
        assert_eq!(ann.code(), "PURCHASED");
        assert_eq!(a.purchase("bob").await.code(), "PURCHASED");

        // Refusals teach each worker of `a` that the sale is sold out and start its fetch; wait
        // (bounded) until ten refusals in a row read no bucket.
        let mut n = 0;
        let mut known = false;
        for _ in 0..50 {
            reset_stats(&redis).await;
            for _ in 0..10 {
                n += 1;
                assert_eq!(a.purchase(&format!("late{n}")).await.code(), "SOLD_OUT");
            }
            if command_calls(&redis, "hexists").await == 0 {
                known = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(known, "refusals still read buckets after {n} of them");
        assert!(command_calls(&redis, "evalsha").await >= 1);
        let refused_before: i64 = redis.client.get(keys("default").refused()).await.unwrap();

        // Buyers are still told what they hold; refusals are still counted.
        reset_stats(&redis).await;
        let retry = a.purchase_with_key("ann", "key-ann").await;
        let again = a.purchase_with_key("bob", "another-key").await;
        let late = a.purchase("late-again").await;
        assert_eq!(retry.code(), "PURCHASED", "{:?}", retry.body);
        assert_eq!(retry.body["orderNumber"], ann.body["orderNumber"]);
        assert_eq!(again.code(), "ALREADY_PURCHASED", "{:?}", again.body);
        assert_eq!(late.code(), "SOLD_OUT");
        assert_eq!(command_calls(&redis, "hexists").await, 0);
        let refused: i64 = redis.client.get(keys("default").refused()).await.unwrap();
        assert_eq!(refused - refused_before, 1, "the refusal is counted");

        // Through `b` only: a restock, a new buyer, sold out again. `a` still holds the old list.
        restock_one(&b).await;
        let cy = b.purchase_with_key("cy", "key-cy").await;
        assert_eq!(cy.code(), "PURCHASED", "{:?}", cy.body);
        assert_eq!(b.purchase("dee").await.code(), "SOLD_OUT");

        let cy_at_a = a.purchase_with_key("cy", "other-key").await;
        assert_eq!(cy_at_a.code(), "ALREADY_PURCHASED", "{:?}", cy_at_a.body);
        assert_eq!(cy_at_a.body["orderNumber"], cy.body["orderNumber"]);
        assert_eq!(a.purchase("eve").await.code(), "SOLD_OUT");
        assert_invariants_of_default(&redis, 3).await;
    }
}

/// The fingerprint `lua/sold_out.lua` answers changes with every field a buyer record's writer
/// changes, so known buyers are never trusted past a write: `sold`, `totalStock`, `orderSeq`,
/// `createdMs`, and `confirmed` (a late payment re-adding a released order's buyer), the last
/// of which nothing but that write changes while the sale stays sold out.
#[tokio::test]
async fn the_sold_out_fingerprint_changes_with_each_field_a_buyer_write_touches() {
    use flashsale::store::scripts::SOLD_OUT_SOURCE;
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("SALE_TOTAL_STOCK", "1")]).await;
    assert_eq!(app.purchase("ann").await.code(), "PURCHASED");
    let config = keys("default").config();
    let script = crate::helpers::checked(SOLD_OUT_SOURCE);
    let call = |known: String| {
        let keys = keys("default");
        let script = script.clone();
        let client = redis.client.clone();
        async move {
            // A user's bucket and counter, as without known buyers (the counter unused: the
            // attempt limit is off).
            let keys = vec![
                keys.config(),
                keys.refused(),
                keys.expiries(),
                keys.gate(),
                keys.bucket_of(flashsale::store::keys::user_hash("zed"), 1),
                keys.attempts("zed"),
            ];
            let mut zed = Vec::new();
            flashsale::store::scripts::put_refuse_item(&mut zed, "zed", 1, 0);
            let args: Vec<Value> = vec![
                0.into(),
                1000.into(),
                1.into(),
                Value::Bytes(zed.into()),
                known.into(),
                0.into(),
                1.into(),
            ];
            let reply: Value = script
                .evalsha_with_reload(&client, keys, args)
                .await
                .unwrap();
            reply.into_array()
        }
    };
    let first = call(String::new()).await;
    assert_eq!(first[0].as_i64(), Some(1), "{first:?}");
    let mut fingerprint = first[1].as_string().unwrap();
    let same = call(fingerprint.clone()).await;
    assert_eq!(same[0].as_i64(), Some(1), "unchanged: {same:?}");

    for field in ["held", "confirmed", "released", "createdMs", "orderSeq"] {
        let _: i64 = redis.client.hincrby(&config, field, 1).await.unwrap();
        let changed = call(fingerprint.clone()).await;
        assert_eq!(changed[0].as_i64(), Some(2), "{field}: {changed:?}");
        fingerprint = changed[1].as_string().unwrap();
        let now = call(fingerprint.clone()).await;
        assert_eq!(
            now[0].as_i64(),
            Some(1),
            "{field}, the new fingerprint: {now:?}"
        );
    }
    // More stock and more sold together: still sold out, another fingerprint.
    let _: i64 = redis
        .client
        .hincrby(&config, "totalStock", 1)
        .await
        .unwrap();
    let _: i64 = redis.client.hincrby(&config, "sold", 1).await.unwrap();
    let grown = call(fingerprint.clone()).await;
    assert_eq!(grown[0].as_i64(), Some(2), "{grown:?}");
}

/// A purchase list that does not hold the purchases the call's keys name (too few items, or an
/// item cut short) is refused whole by `lua/purchase.lua` and `lua/sold_out.lua` before either
/// writes anything: every item is read first, and Redis has no rollback.
#[tokio::test]
async fn a_purchase_list_that_does_not_hold_its_purchases_is_refused_before_any_write() {
    use flashsale::store::scripts::{put_decide_item, PURCHASE_SOURCE, SOLD_OUT_SOURCE};
    let redis = TestRedis::start().await;
    let _app = spawn_app_with(&redis, &[("SALE_TOTAL_STOCK", "5")]).await;
    let keys = keys("default");
    let buckets: u32 = redis
        .client
        .hget(keys.config(), "buyerBuckets")
        .await
        .unwrap();
    let bucket = |user: &str| keys.bucket_of(flashsale::store::keys::user_hash(user), buckets);
    let mut one = Vec::new();
    put_decide_item(&mut one, "ann", "0123456789abcdef", "r-1", 1, 0);
    let mut cut = one.clone();
    put_decide_item(&mut cut, "bo", "0123456789abcdef", "r-2", 1, 0);
    cut.truncate(cut.len() - 3);
    for (items, why) in [
        (one, "one item for two purchases"),
        (cut, "the second item cut short"),
    ] {
        // purchase.lua, a lean call of two purchases.
        let mut call_keys = crate::helpers::purchase_fixed_keys(&keys);
        call_keys.extend([bucket("ann"), bucket("bo")]);
        let args: Vec<Value> = vec![
            "0".into(),
            "1000".into(),
            "default".into(),
            "0".into(),
            buckets.to_string().into(),
            Value::Bytes(items.clone().into()),
            "".into(),
        ];
        refused_whole(
            &redis,
            PURCHASE_SOURCE,
            call_keys,
            args,
            &format!("purchase.lua, {why}"),
        )
        .await;

        // sold_out.lua, told it has two purchases: with stock left it answers {0} before
        // reading them, so the stock is gone first.
        let _: () = redis.client.hset(keys.config(), ("sold", 5)).await.unwrap();
        let call_keys = vec![
            keys.config(),
            keys.refused(),
            keys.expiries(),
            keys.gate(),
            bucket("ann"),
            keys.attempts("ann"),
            bucket("bo"),
            keys.attempts("bo"),
        ];
        let args: Vec<Value> = vec![
            "0".into(),
            "1000".into(),
            buckets.to_string().into(),
            Value::Bytes(items.into()),
            "".into(),
            "0".into(),
            "2".into(),
        ];
        refused_whole(
            &redis,
            SOLD_OUT_SOURCE,
            call_keys,
            args,
            &format!("sold_out.lua, {why}"),
        )
        .await;
        let _: () = redis.client.hset(keys.config(), ("sold", 0)).await.unwrap();
    }
}

/// A call of the script `source` fails on its purchase list and leaves Redis as it was.
async fn refused_whole(
    redis: &TestRedis,
    source: &'static str,
    call_keys: Vec<fred::types::Key>,
    args: Vec<Value>,
    why: &str,
) {
    let before = redis.digest().await;
    let script = crate::helpers::checked(source);
    let answer: Result<Value, Error> = script
        .evalsha_with_reload(&redis.client, call_keys, args)
        .await;
    let error = answer.expect_err(why).to_string();
    assert!(
        error.contains("the purchases are not 2 items") || error.contains("too short"),
        "{why}: {error}"
    );
    assert_eq!(redis.digest().await, before, "{why}: the script wrote");
}
