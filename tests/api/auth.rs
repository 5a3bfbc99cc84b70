//! Trusted buyers: with JWT verification on, the token names the buyer; every refused token is
//! 401 or 403 JSON and leaves Redis untouched.

use crate::helpers::{spawn_app_with, Reply, TestApp, TestRedis};
use actix_web::{web, App, HttpResponse, HttpServer};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use futures::StreamExt;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

const SECRET: &str = "a-test-secret-of-at-least-32-characters";
const ISSUER: &str = "https://shop.example.com/";
const AUDIENCE: &str = "flashsale";
const RSA_PRIVATE: &str = include_str!("../fixtures/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/rsa_public.pem");
const ED_PRIVATE: &str = include_str!("../fixtures/ed25519_private.pem");
const ED_PUBLIC: &str = include_str!("../fixtures/ed25519_public.pem");

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a token for `sub`, valid for ten minutes, for this issuer and audience.
fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 600 })
}

fn sign(claims: &Value, algorithm: Algorithm, key: &EncodingKey, kid: Option<&str>) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(
        claims,
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        None,
    )
}

async fn app_with_secret(redis: &TestRedis) -> TestApp {
    spawn_app_with(
        redis,
        &[
            ("AUTH_JWT_SECRET", SECRET),
            ("AUTH_JWT_ISSUER", ISSUER),
            ("AUTH_JWT_AUDIENCE", AUDIENCE),
        ],
    )
    .await
}

impl TestApp {
    async fn purchase_as(&self, token: Option<&str>, body: Value) -> Reply {
        let mut request = self.http.post(self.url("/api/sale/purchase")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    async fn user_as(&self, token: &str, user: &str) -> Reply {
        let request = self
            .http
            .get(self.url(&format!("/api/sale/user/{user}")))
            .bearer_auth(token);
        Reply::read(request.send().await.unwrap()).await
    }
}

#[tokio::test]
async fn a_valid_token_buys_as_its_subject_and_the_body_user_is_optional() {
    let redis = TestRedis::start().await;
    let app = app_with_secret(&redis).await;

    let without_body_user = app
        .purchase_as(Some(&hs256(&claims("amy"))), json!({}))
        .await;
    let same_body_user = app
        .purchase_as(Some(&hs256(&claims("ben"))), json!({"userId": "ben"}))
        .await;
    let own_lookup = app.user_as(&hs256(&claims("amy")), "amy").await;

    assert_eq!(
        without_body_user.code(),
        "PURCHASED",
        "{:?}",
        without_body_user.body
    );
    assert_eq!(same_body_user.code(), "PURCHASED");
    assert_eq!(own_lookup.body["hasPurchased"], true);
    let buyers: Vec<String> = redis.buyers("default").await.into_keys().collect();
    assert_eq!(buyers, ["amy", "ben"]);
}

#[tokio::test]
async fn flashsale_token_mints_a_token_the_same_configuration_accepts() {
    let redis = TestRedis::start().await;
    let app = app_with_secret(&redis).await;
    let mint = |user: &str, secret: &str| {
        crate::helpers::binary::flashsale()
            .args(["token", user])
            .env("AUTH_JWT_SECRET", secret)
            .env("AUTH_JWT_ISSUER", ISSUER)
            .env("AUTH_JWT_AUDIENCE", AUDIENCE)
            .output()
            .unwrap()
    };

    let minted = mint("carla", SECRET);
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).unwrap();
    let bought = app.purchase_as(Some(token.trim()), json!({})).await;
    assert_eq!(bought.code(), "PURCHASED", "{:?}", bought.body);
    assert_eq!(
        app.user_as(token.trim(), "carla").await.body["hasPurchased"],
        true
    );

    // Another secret's token is refused; a bad user or no key source mints nothing.
    let foreign = mint("dora", "another-secret-of-at-least-32-characters");
    let refused = app
        .purchase_as(
            Some(String::from_utf8(foreign.stdout).unwrap().trim()),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 401);
    let bad_user = mint("no spaces", SECRET);
    assert_eq!(bad_user.status.code(), Some(2));
    assert!(bad_user.stdout.is_empty());
    let off = crate::helpers::binary::flashsale()
        .args(["token", "erin"])
        .output()
        .unwrap();
    assert_eq!(off.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&off.stderr).contains("AUTH_JWT_SECRET"));
    let buyers: Vec<String> = redis.buyers("default").await.into_keys().collect();
    assert_eq!(buyers, ["carla"]);
}

#[tokio::test]
async fn every_refused_token_is_401_or_403_json_and_changes_nothing() {
    // Arrange
    let redis = TestRedis::start().await;
    let app = app_with_secret(&redis).await;
    let digest = redis.digest().await;
    let mut expired = claims("eve");
    expired["exp"] = json!(now() - 3600);
    let mut not_yet = claims("eve");
    not_yet["nbf"] = json!(now() + 3600);
    let mut wrong_issuer = claims("eve");
    wrong_issuer["iss"] = json!("https://evil.example/");
    let mut wrong_audience = claims("eve");
    wrong_audience["aud"] = json!("someone-else");
    let mut no_exp = claims("eve");
    no_exp.as_object_mut().unwrap().remove("exp");
    let wrong_key = sign(
        &claims("eve"),
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-chars!"),
        None,
    );
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims("eve").to_string())
    );
    let invalid = [
        hs256(&expired),
        hs256(&not_yet),
        hs256(&wrong_issuer),
        hs256(&wrong_audience),
        hs256(&no_exp),
        wrong_key,
        alg_none,
        "not.a.token".to_owned(),
    ];

    // Act + Assert: a missing token, then each invalid one.
    let missing = app.purchase_as(None, json!({"userId": "eve"})).await;
    missing.assert_error(401, "UNAUTHORIZED");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    let basic = app
        .http
        .post(app.url("/api/sale/purchase"))
        .header("Authorization", "Basic ZXZlOmV2ZQ==")
        .json(&json!({"userId": "eve"}))
        .send()
        .await
        .unwrap();
    Reply::read(basic).await.assert_error(401, "UNAUTHORIZED");
    for token in &invalid {
        let reply = app.purchase_as(Some(token), json!({})).await;
        reply.assert_error(401, "UNAUTHORIZED");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(r#"Bearer error="invalid_token""#),
            "{token}"
        );
    }
    // A valid token for amy, used to buy or look up as someone else: 403, revealing nothing.
    let amy = hs256(&claims("amy"));
    app.purchase_as(Some(&amy), json!({"userId": "bob"}))
        .await
        .assert_error(403, "FORBIDDEN");
    app.user_as(&amy, "bob")
        .await
        .assert_error(403, "FORBIDDEN");
    assert_eq!(redis.digest().await, digest, "Redis untouched");
}

#[tokio::test]
async fn a_pem_public_key_verifies_rs256_and_refuses_hs256_forged_with_it() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("AUTH_JWT_PUBLIC_KEY", RSA_PUBLIC)]).await;
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let forged = sign(
        &claims("mallory"),
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        None,
    );

    let valid = app
        .purchase_as(
            Some(&sign(&claims("rita"), Algorithm::RS256, &rsa, None)),
            json!({}),
        )
        .await;
    let refused = app.purchase_as(Some(&forged), json!({})).await;

    assert_eq!(valid.code(), "PURCHASED", "{:?}", valid.body);
    refused.assert_error(401, "UNAUTHORIZED");
    assert!(!redis.buyers("default").await.contains_key("mallory"));
}

#[tokio::test]
async fn an_ed25519_public_key_verifies_eddsa_tokens() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("AUTH_JWT_PUBLIC_KEY", ED_PUBLIC)]).await;
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();

    let reply = app
        .purchase_as(
            Some(&sign(&claims("edna"), Algorithm::EdDSA, &ed, None)),
            json!({}),
        )
        .await;

    assert_eq!(reply.code(), "PURCHASED", "{:?}", reply.body);
}

/// A local JWKS endpoint whose key set the test changes, or takes down (503).
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Option<Value>>>,
    handle: actix_web::dev::ServerHandle,
}

impl JwksServer {
    fn start(initial: Value) -> Self {
        let keys = Arc::new(Mutex::new(Some(initial)));
        let shared = Arc::clone(&keys);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/.well-known/jwks.json",
            listener.local_addr().unwrap().port()
        );
        let server = HttpServer::new(move || {
            let keys = Arc::clone(&shared);
            App::new().route(
                "/.well-known/jwks.json",
                web::get().to(move || {
                    let current = keys.lock().unwrap().clone();
                    async move {
                        match current {
                            Some(set) => HttpResponse::Ok().json(set),
                            None => HttpResponse::ServiceUnavailable().finish(),
                        }
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, keys, handle }
    }

    fn set(&self, keys: Option<Value>) {
        *self.keys.lock().unwrap() = keys;
    }
}

/// An Ed25519 key made for the test: the signing key and its public JWK.
fn ed25519_jwk(kid: &str) -> (EncodingKey, Value) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = json!({
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    });
    (EncodingKey::from_ed_der(pkcs8.as_ref()), jwk)
}

#[tokio::test]
async fn a_rotating_jwks_is_followed_and_an_outage_keeps_the_last_keys() {
    // Arrange: the provider starts with key A.
    let redis = TestRedis::start().await;
    let (key_a, jwk_a) = ed25519_jwk("key-a");
    let (key_b, jwk_b) = ed25519_jwk("key-b");
    let jwks = JwksServer::start(json!({ "keys": [jwk_a] }));
    let app = spawn_app_with(&redis, &[("AUTH_JWKS_URL", jwks.url.as_str())]).await;
    let token = |sub: &str, key: &EncodingKey, kid: &str| {
        sign(&claims(sub), Algorithm::EdDSA, key, Some(kid))
    };

    // Act + Assert: key A works; B is unknown until the provider rotates to it.
    let with_a = app
        .purchase_as(Some(&token("ann", &key_a, "key-a")), json!({}))
        .await;
    assert_eq!(with_a.code(), "PURCHASED", "{:?}", with_a.body);
    jwks.set(Some(json!({ "keys": [jwk_b] })));
    // An unknown kid fetches the set again at most every 5 s; wait out the start-up fetch.
    tokio::time::sleep(Duration::from_millis(5_200)).await;
    let with_b = app
        .purchase_as(Some(&token("bea", &key_b, "key-b")), json!({}))
        .await;
    assert_eq!(
        with_b.code(),
        "PURCHASED",
        "rotation picked up: {:?}",
        with_b.body
    );

    // The provider goes down: the last good keys keep verifying, unknown keys stay refused.
    jwks.set(None);
    tokio::time::sleep(Duration::from_millis(5_200)).await;
    let (key_c, _) = ed25519_jwk("key-c");
    app.purchase_as(Some(&token("cid", &key_c, "key-c")), json!({}))
        .await
        .assert_error(401, "UNAUTHORIZED");
    let still_b = app
        .purchase_as(Some(&token("dot", &key_b, "key-b")), json!({}))
        .await;
    assert_eq!(still_b.code(), "PURCHASED", "{:?}", still_b.body);
    jwks.handle.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_buyers_with_their_own_tokens_on_two_instances_buy_exactly_the_stock() {
    let redis = TestRedis::start().await;
    let (a, b) = (app_with_secret(&redis).await, app_with_secret(&redis).await);
    let tokens: Vec<String> = (0..1_000)
        .map(|n| hs256(&claims(&format!("t{n}"))))
        .collect();

    let replies: Vec<Reply> = futures::stream::iter(tokens.iter().enumerate().map(|(n, token)| {
        let app = if n % 2 == 0 { &a } else { &b };
        app.purchase_as(Some(token), json!({}))
    }))
    .buffer_unordered(64)
    .collect()
    .await;

    let purchased = replies.iter().filter(|r| r.code() == "PURCHASED").count();
    assert_eq!(purchased, 100);
    assert!(replies
        .iter()
        .all(|r| matches!(r.code(), "PURCHASED" | "SOLD_OUT")));
    assert_eq!(redis.buyers("default").await.len(), 100);
    assert_eq!(redis.stock("default").await, Some(0));
}

#[tokio::test]
async fn case_insensitive_ids_make_one_buyer_of_two_spellings() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(&redis, &[("USER_ID_CASE", "insensitive")]).await;

    let first = app.purchase("Bob@Example.com").await;
    let second = app.purchase("bob@example.com").await;

    assert_eq!(first.code(), "PURCHASED");
    assert_eq!(second.code(), "ALREADY_PURCHASED");
    let buyers: Vec<String> = redis.buyers("default").await.into_keys().collect();
    assert_eq!(buyers, ["bob@example.com"]);
}

#[tokio::test]
async fn a_configured_issuer_and_audience_must_be_in_the_token() {
    // Arrange: tokens that match when they carry the claims, but leave one or both out.
    let redis = TestRedis::start().await;
    let app = app_with_secret(&redis).await;
    let digest = redis.digest().await;
    let bare = json!({ "sub": "x", "exp": now() + 600 });
    let mut no_audience = claims("x");
    no_audience.as_object_mut().unwrap().remove("aud");
    let mut no_issuer = claims("x");
    no_issuer.as_object_mut().unwrap().remove("iss");

    // Act + Assert
    for token in [hs256(&bare), hs256(&no_audience), hs256(&no_issuer)] {
        app.purchase_as(Some(&token), json!({}))
            .await
            .assert_error(401, "UNAUTHORIZED");
    }
    assert_eq!(redis.digest().await, digest, "Redis untouched");
    let full = app.purchase_as(Some(&hs256(&claims("x"))), json!({})).await;
    assert_eq!(full.code(), "PURCHASED");
}

#[tokio::test]
async fn an_auth0_subject_buys_and_reads_its_unit() {
    let redis = TestRedis::start().await;
    let app = app_with_secret(&redis).await;
    let sub = "auth0|64f1c2a3b4c5d6e7f8a9b0c1";
    let token = hs256(&claims(sub));

    let bought = app.purchase_as(Some(&token), json!({})).await;
    let mine = app
        .user_as(&token, "auth0%7C64f1c2a3b4c5d6e7f8a9b0c1")
        .await;

    assert_eq!(bought.code(), "PURCHASED", "{:?}", bought.body);
    assert_eq!(mine.body["hasPurchased"], true, "{:?}", mine.body);
    assert!(redis.buyers("default").await.contains_key(sub));
}

#[tokio::test]
async fn a_signed_in_buyer_cancels_their_own_hold_with_the_token_alone() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(
        &redis,
        &[
            ("AUTH_JWT_SECRET", SECRET),
            ("AUTH_JWT_ISSUER", ISSUER),
            ("AUTH_JWT_AUDIENCE", AUDIENCE),
            ("SALE_HOLD_SECONDS", "60"),
        ],
    )
    .await;
    let (ana, ben) = (hs256(&claims("ana")), hs256(&claims("ben")));
    let held = app.purchase_as(Some(&ana), json!({})).await;
    assert_eq!(held.code(), "RESERVED", "{:?}", held.body);
    let reservation = held.body["reservationToken"].as_str().unwrap().to_owned();
    let cancel = |token: Option<String>, reservation: Option<String>| {
        let mut request = app.http.delete(app.url("/api/sale/reservation"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(reservation) = reservation {
            request = request.header("Flashsale-Reservation", reservation);
        }
        async move { Reply::read(request.send().await.unwrap()).await }
    };

    // Without a bearer token, or with another buyer's (even holding ana's reservation token):
    // refused, nothing written.
    let digest = redis.digest().await;
    cancel(None, Some(reservation.clone()))
        .await
        .assert_error(401, "UNAUTHORIZED");
    cancel(Some(ben.clone()), None)
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    cancel(Some(ben), Some(reservation.clone()))
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    assert_eq!(redis.digest().await, digest);

    // Her own token alone finds and releases her hold; with the reservation token a repeat
    // answers the released order again.
    let released = cancel(Some(ana.clone()), None).await;
    assert_eq!(released.status, 200, "{:?}", released.body);
    assert_eq!(released.body["state"], "released");
    assert_eq!(released.body["userId"], "ana");
    let again = cancel(Some(ana), Some(reservation)).await;
    assert_eq!(again.body["state"], "released");
}
