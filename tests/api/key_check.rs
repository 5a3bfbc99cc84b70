//! `lua/key_check.lua`, which every test app runs in front of its scripts
//! (`REDIS_SCRIPT_KEY_CHECK`): a script that touches a key it was not given in KEYS fails, so
//! the rest of the suite proves that no script of the service does (SPEC §2). Here the check
//! itself is shown to catch what it must and to let through what it must.

use crate::helpers::{checked, TestRedis};
use fred::{error::Error, prelude::*};

/// Runs `body` under the check with these KEYS and ARGV.
async fn run(redis: &TestRedis, body: &str, keys: &[&str], args: &[&str]) -> Result<Value, Error> {
    let keys: Vec<String> = keys.iter().map(|key| key.to_string()).collect();
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    checked(body)
        .evalsha_with_reload(&redis.client, keys, args)
        .await
}

fn refused(answer: Result<Value, Error>, key: &str) {
    let error = answer
        .expect_err("an undeclared key is an error")
        .to_string();
    assert!(
        error.contains("key check") && error.contains(key),
        "{key}: {error}"
    );
}

#[tokio::test]
async fn a_key_missing_from_keys_is_an_error_and_a_declared_one_is_not() {
    let redis = TestRedis::start().await;
    let before = redis.digest().await;

    // A key made inside the script, as the release of a hold once made its holder's bucket.
    let made = "return redis.call('HGET', KEYS[1] .. ':7', ARGV[1])";
    refused(
        run(&redis, made, &["sale:{s}:buyers"], &["ann"]).await,
        "sale:{s}:buyers:7",
    );
    // A key passed as an argument is no better.
    let write = "return redis.call('SET', ARGV[1], 1)";
    refused(
        run(&redis, write, &["sale:{s}:a"], &["sale:{s}:b"]).await,
        "sale:{s}:b",
    );
    assert_eq!(redis.digest().await, before, "a refused command ran");

    // Every key of a many-key command is checked, and redis.pcall is checked as call is.
    let del = "return redis.call('DEL', KEYS[1], 'sale:{s}:other')";
    refused(
        run(&redis, del, &["sale:{s}:a"], &[]).await,
        "sale:{s}:other",
    );
    let rename = "return redis.pcall('RENAME', KEYS[1], 'sale:{s}:to')";
    refused(
        run(&redis, rename, &["sale:{s}:a"], &[]).await,
        "sale:{s}:to",
    );
    let group = "return redis.call('XGROUP', 'CREATE', 'sale:{s}:stream', 'g', '0', 'MKSTREAM')";
    refused(
        run(&redis, group, &["sale:{s}:a"], &[]).await,
        "sale:{s}:stream",
    );
    let read = "return redis.call('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', KEYS[1], 'sale:{s}:y', '>', '>')";
    refused(run(&redis, read, &["sale:{s}:x"], &[]).await, "sale:{s}:y");
    assert_eq!(redis.digest().await, before, "a refused command ran");

    // Declared keys, keyless commands and command names in any case pass and do their work.
    let fine = "redis.call('hset', KEYS[1], 'f', ARGV[1]) \
                redis.call('TIME') \
                redis.call('XGROUP', 'CREATE', KEYS[2], 'g', '0', 'MKSTREAM') \
                redis.call('RENAME', KEYS[1], KEYS[3]) \
                return redis.call('HGET', KEYS[3], 'f')";
    let answer = run(
        &redis,
        fine,
        &["sale:{s}:h", "sale:{s}:stream", "sale:{s}:h2"],
        &["v"],
    )
    .await
    .unwrap();
    assert_eq!(answer.as_str().as_deref(), Some("v"));
    let moved: Option<String> = redis.client.hget("sale:{s}:h2", "f").await.unwrap();
    assert_eq!(moved.as_deref(), Some("v"));
}
