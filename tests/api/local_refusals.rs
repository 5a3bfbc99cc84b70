//! Local refusals (README, "Refused without Redis"): once `lua/sold_out.lua` vouched for the
//! buyers an instance knows, the instance refuses new users of the sold-out sale without
//! Redis, and counts them later; buyers are still told what they hold; a restock is sold only
//! once no instance can still be refusing alone (the gate), so a buyer of the new unit is never
//! told SOLD_OUT by an instance that had not heard of it.

use crate::{
    batch::{assert_invariants_of_default, command_calls, reset_stats, restock_one},
    helpers::{keys, purchase_script, spawn_app_with, Buy, Reply, TestApp, TestRedis},
};
use fred::prelude::*;
use std::time::{Duration, Instant};

const TOKEN: &str = "an-admin-token-for-tests";

/// Refusals at `app` (new users named `prefix<n>`, one connection, so one HTTP worker) until a
/// round of 20 costs Redis at most 3 script calls, its keeper's: the worker refuses alone.
async fn refuse_until_local(redis: &TestRedis, app: &TestApp, prefix: &str) {
    for round in 0..50 {
        reset_stats(redis).await;
        for n in 0..20 {
            let reply = app.purchase(&format!("{prefix}{round}-{n}")).await;
            assert_eq!(reply.code(), "SOLD_OUT", "{:?}", reply.body);
            assert_eq!(reply.body["remainingStock"], 0);
        }
        if command_calls(redis, "evalsha").await <= 3 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{prefix}: 1,000 refusals and the instance still asks Redis for each");
}

/// Sends the same purchase (one unit, one key) to `app` until it is answered other than
/// SOLD_OUT, as a buyer watching a restock would, and returns that answer: the unit must go on
/// sale within a few seconds of `since` (its gate is 100 ms; the rest is room for a loaded
/// test machine).
async fn buy_once_on_sale(app: &TestApp, user: &str, key: &str, since: Instant) -> Reply {
    loop {
        let reply = app.purchase_with_key(user, key).await;
        if reply.code() != "SOLD_OUT" {
            return reply;
        }
        assert!(since.elapsed() < Duration::from_secs(5), "never on sale");
    }
}

async fn refused_count(redis: &TestRedis) -> i64 {
    let count: Option<i64> = redis.client.get(keys("default").refused()).await.unwrap();
    count.unwrap_or(0)
}

/// Refused new users cost Redis nothing but the keeper's call every 40 ms, are not counted as
/// attempts (a user past the attempt limit is still told SOLD_OUT), and are added to the
/// sale's refused count soon after; a buyer's retry and a buyer's new request still go to
/// Redis and hear what they hold; nothing is written for any refusal.
#[tokio::test]
async fn new_users_of_a_sold_out_sale_are_refused_without_redis_and_buyers_still_hear_the_truth() {
    let redis = TestRedis::start().await;
    let env = [
        ("SALE_TOTAL_STOCK", "2"),
        ("USER_ATTEMPT_LIMIT", "3"),
        ("USER_ATTEMPT_WINDOW_MS", "60000"),
    ];
    let app = spawn_app_with(&redis, &env).await;
    let ann = app.purchase_with_key("ann", "key-ann").await;
    assert_eq!(ann.code(), "PURCHASED");
    assert_eq!(app.purchase("bob").await.code(), "PURCHASED");
    refuse_until_local(&redis, &app, "late").await;
    // The keeper counts what it refused within a period: let it settle first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused_before = refused_count(&redis).await;
    let buyers_before = redis.buyers("default").await;

    reset_stats(&redis).await;
    let started = Instant::now();
    for n in 0..200 {
        let reply = app.purchase(&format!("new{n}")).await;
        assert_eq!(reply.status, 410);
        // The whole answer, the same each time (its body is serialised once and shared).
        assert_eq!(
            reply.body,
            serde_json::json!({
                "success": false,
                "code": "SOLD_OUT",
                "message": "Sold out: no units left.",
                "remainingStock": 0
            })
        );
        assert_eq!(reply.headers["content-type"], "application/json");
        assert!(reply.headers.contains_key("x-request-id"));
    }
    for _ in 0..10 {
        assert_eq!(app.purchase("hank").await.code(), "SOLD_OUT");
    }
    let calls = command_calls(&redis, "evalsha").await;
    // The keeper's call every 40 ms (and a worker's first call again, should a slow machine
    // leave a gap long enough for the vouching to lapse), never one per refusal.
    let periods = started.elapsed().as_millis() as u64 / 40;
    assert!(
        calls < 105 && calls <= periods + 10,
        "{calls} script calls for 210 refusals in {periods} keeper periods"
    );
    let attempts: i64 = redis
        .client
        .exists(keys("default").attempts("hank"))
        .await
        .unwrap();
    assert_eq!(attempts, 0, "refusals answered alone are not attempts");

    let retry = app.purchase_with_key("ann", "key-ann").await;
    assert_eq!(retry.code(), "PURCHASED", "{:?}", retry.body);
    assert_eq!(retry.body["orderNumber"], ann.body["orderNumber"]);
    let again = app.purchase_with_key("bob", "another-key").await;
    assert_eq!(again.code(), "ALREADY_PURCHASED", "{:?}", again.body);

    let mut refused = refused_count(&redis).await;
    for _ in 0..40 {
        if refused == refused_before + 210 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        refused = refused_count(&redis).await;
    }
    assert_eq!(refused, refused_before + 210, "each refusal counted once");
    assert_eq!(redis.buyers("default").await, buyers_before);
    assert_invariants_of_default(&redis, 2).await;
}

/// An instance refusing alone, a restock through another, the new unit bought there as soon as
/// it sells, and at once the buyer's retry at the first instance: PURCHASED with the same
/// order, every time. Without the gate the unit would sell at once and the first instance,
/// still refusing alone, would tell its buyer SOLD_OUT. The unit sells once the gate lapses.
#[tokio::test]
async fn a_restock_sells_only_once_no_instance_still_refuses_alone() {
    let redis = TestRedis::start().await;
    let env = [("SALE_TOTAL_STOCK", "1"), ("ADMIN_TOKEN", TOKEN)];
    let (a, b) = (
        spawn_app_with(&redis, &env).await,
        spawn_app_with(&redis, &env).await,
    );
    assert_eq!(b.purchase("first").await.code(), "PURCHASED");
    let mut waits = Vec::new();
    for cycle in 0..8 {
        refuse_until_local(&redis, &a, &format!("late{cycle}-")).await;
        let restocked = Instant::now();
        restock_one(&b).await;
        let (buyer, key) = (format!("buyer{cycle}"), format!("key-{cycle}"));
        let bought = buy_once_on_sale(&b, &buyer, &key, restocked).await;
        assert_eq!(bought.code(), "PURCHASED", "{:?}", bought.body);
        waits.push(restocked.elapsed());
        let retry = a.purchase_with_key(&buyer, &key).await;
        assert_eq!(retry.code(), "PURCHASED", "cycle {cycle}: {:?}", retry.body);
        assert_eq!(retry.body["orderNumber"], bought.body["orderNumber"]);
    }
    let slowest = waits.iter().max().unwrap();
    // The gate is 100 ms; the bound leaves room for a loaded test machine.
    assert!(
        *slowest < Duration::from_secs(3),
        "a restock waited {slowest:?} to sell"
    );
    assert_invariants_of_default(&redis, 9).await;
}

/// The gate by the scripts themselves: `lua/purchase.lua` sells nothing while it exists (a new
/// buyer is told SOLD_OUT at 0 left, nothing written) and sells again once it is gone;
/// `lua/sold_out.lua` closes it only when vouching for an unchanged fingerprint with the
/// window open past the gate, for the time asked.
#[tokio::test]
async fn only_a_vouching_call_closes_the_gate_and_nothing_sells_behind_it() {
    use flashsale::store::scripts::SOLD_OUT_SOURCE;
    let redis = TestRedis::start().await;
    let _app = spawn_app_with(&redis, &[("SALE_TOTAL_STOCK", "1")]).await;
    let k = keys("default");
    let code = |answer: &Value| answer.clone().into_array()[0].as_string().unwrap();

    let _: () = redis
        .client
        .set(k.gate(), 1, Some(Expiration::PX(10_000)), None, false)
        .await
        .unwrap();
    // One new buyer's purchase by the script itself, no attempt limit.
    let ann = [Buy::new("ann", "aaaa")];
    let buy_ann = || purchase_script(&redis.client, "default", &ann, 0, 1000);
    let before = redis.digest().await;
    let gated = buy_ann().await;
    assert_eq!(code(&gated[0]), "SOLD_OUT", "{gated:?}");
    assert_eq!(gated[0].clone().into_array()[1].as_i64(), Some(0), "0 left");
    let refused: i64 = redis.client.get(k.refused()).await.unwrap();
    assert_eq!(refused, 1);
    let _: () = redis.client.del(k.refused()).await.unwrap();
    assert_eq!(
        redis.digest().await,
        before,
        "nothing but the refusal count"
    );
    let _: () = redis.client.del(k.gate()).await.unwrap();
    let sold = buy_ann().await;
    assert_eq!(code(&sold[0]), "PURCHASED", "{sold:?}");

    let script = crate::helpers::checked(SOLD_OUT_SOURCE);
    let call = |known: String, vouch_ms: u64| {
        let (script, client, k) = (script.clone(), redis.client.clone(), keys("default"));
        async move {
            let keys = vec![k.config(), k.refused(), k.expiries(), k.gate()];
            let args: Vec<Value> = vec![
                0.into(),
                1000.into(),
                1.into(),
                Value::Bytes(Vec::new().into()),
                known.into(),
                0.into(),
                0.into(),
                vouch_ms.to_string().into(),
            ];
            let reply: Value = script
                .evalsha_with_reload(&client, keys, args)
                .await
                .unwrap();
            reply.into_array()
        }
    };
    let gate_ttl = || async {
        let ttl: i64 = redis.client.pttl(keys("default").gate()).await.unwrap();
        ttl
    };
    let first = call(String::new(), 100).await;
    assert_eq!(first[0].as_i64(), Some(1), "no known buyers: {first:?}");
    assert_eq!(gate_ttl().await, -2, "no gate");
    let fingerprint = first[1].as_string().unwrap();
    let vouched = call(fingerprint.clone(), 100).await;
    assert_eq!(vouched[0].as_i64(), Some(3), "{vouched:?}");
    let ttl = gate_ttl().await;
    assert!((1..=100).contains(&ttl), "the gate for 100 ms: {ttl}");
    let _: () = redis.client.del(k.gate()).await.unwrap();
    assert_eq!(call(fingerprint.clone(), 0).await[0].as_i64(), Some(1));
    assert_eq!(call("stale".into(), 100).await[0].as_i64(), Some(2));
    assert_eq!(gate_ttl().await, -2, "not vouched: no gate");

    // The window closes before the gate would lapse: nothing vouched.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let _: () = redis
        .client
        .hset(k.config(), ("endMs", now_ms + 50))
        .await
        .unwrap();
    assert_eq!(call(fingerprint, 100).await[0].as_i64(), Some(1));
    assert_eq!(gate_ttl().await, -2, "the window ends first: no gate");
}

/// The same with a hold: a holder's retry at an instance refusing alone is still answered
/// RESERVED (holders are among its known buyers); the shop cancels the hold through another
/// instance, a new buyer holds the unit there as soon as it sells, and their retry at the first
/// instance is answered RESERVED with their order.
#[tokio::test]
async fn a_released_hold_sells_only_once_no_instance_still_refuses_alone() {
    use crate::checkout::{assert_adds_up, checkout_app};
    let redis = TestRedis::start().await;
    let (a, b) = (
        checkout_app(&redis, 300, 1, 1).await,
        checkout_app(&redis, 300, 1, 1).await,
    );
    let held = b.buy("holder", None, "key-holder").await;
    assert_eq!(held.code(), "RESERVED", "{:?}", held.body);
    refuse_until_local(&redis, &a, "late").await;
    let again = a.buy("holder", None, "key-holder").await;
    assert_eq!(again.code(), "RESERVED", "{:?}", again.body);
    assert_eq!(again.body["orderNumber"], held.body["orderNumber"]);

    refuse_until_local(&redis, &a, "later").await;
    let released = Instant::now();
    let order = held.body["orderNumber"].to_string();
    let cancelled = b.order_call(&order, "/cancel").await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    let bought = buy_once_on_sale(&b, "next", "key-next", released).await;
    assert_eq!(bought.code(), "RESERVED", "{:?}", bought.body);
    let retry = a.buy("next", None, "key-next").await;
    assert_eq!(retry.code(), "RESERVED", "{:?}", retry.body);
    assert_eq!(retry.body["orderNumber"], bought.body["orderNumber"]);
    let holder = a.buy("holder", None, "another-key").await;
    assert_eq!(
        holder.code(),
        "SOLD_OUT",
        "the cancelled holder: {:?}",
        holder.body
    );
    assert_adds_up(&b, &redis).await;
}
