//! Stripe's webhook events, signed in the test exactly as Stripe documents
//! (`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`), with Redis unchanged wherever
//! nothing should change.

use super::{checkout_app, STRIPE_SECRET};
use crate::helpers::{spawn_app, Reply, TestApp, TestRedis};
use serde_json::{json, Value};

fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut payload = t.to_string().into_bytes();
    payload.push(b'.');
    payload.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &payload);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// A Checkout Session event as Stripe sends it (the fields flashsale reads, and some it
/// does not).
fn event(id: &str, kind: &str, session: Value) -> Vec<u8> {
    let mut object = json!({
        "id": "cs_test_a1", "object": "checkout.session", "mode": "payment",
        "amount_total": 12900, "currency": "eur",
    });
    object
        .as_object_mut()
        .unwrap()
        .extend(session.as_object().unwrap().clone());
    serde_json::to_vec(&json!({
        "id": id, "object": "event", "api_version": "2024-06-20", "created": 1_700_000_000,
        "type": kind, "livemode": false, "data": { "object": object },
    }))
    .unwrap()
}

fn paid(order: u64) -> Value {
    json!({"metadata": {"saleId": "default", "orderNumber": order.to_string()}, "payment_status": "paid"})
}

impl TestApp {
    async fn stripe(&self, body: &[u8], signature: Option<&str>) -> Reply {
        let mut request = self
            .http
            .post(self.url("/api/payments/stripe/webhook"))
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    async fn stripe_signed(&self, body: &[u8]) -> Reply {
        let now = chrono::Utc::now().timestamp();
        self.stripe(body, Some(&sign(STRIPE_SECRET, now, body)))
            .await
    }
}

#[tokio::test]
async fn a_signed_payment_confirms_once_and_every_bad_event_changes_nothing() {
    let redis = TestRedis::start().await;
    let app = checkout_app(&redis, 300, 1, 10).await;
    for (n, user) in ["ann", "bo", "cat", "dan"].iter().enumerate() {
        let held = app.buy(user, None, &format!("key-{user}")).await;
        assert_eq!(held.body["orderNumber"], n as i64 + 1);
    }
    let now = chrono::Utc::now().timestamp();
    let body = event("evt_1", "checkout.session.completed", paid(1));

    // Refused before it is read: each a 400 JSON error, and Redis as it was.
    let digest = redis.digest().await;
    let wrong_secret = sign("whsec_not_the_secret_0000", now, &body);
    let stale = sign(STRIPE_SECRET, now - 301, &body);
    let mut altered = body.clone();
    let at = altered.iter().position(|b| *b == b'1').unwrap();
    altered[at] = b'2';
    let signed_for_body = sign(STRIPE_SECRET, now, &body);
    for (what, payload, signature) in [
        ("wrong secret", &body, Some(wrong_secret.as_str())),
        ("stale", &body, Some(stale.as_str())),
        (
            "altered after signing",
            &altered,
            Some(signed_for_body.as_str()),
        ),
        ("no header", &body, None),
        ("no v1", &body, Some("t=1700000000")),
    ] {
        let reply = app.stripe(payload, signature).await;
        assert_eq!(reply.status, 400, "{what}: {:?}", reply.body);
        reply.assert_error(400, "INVALID_REQUEST");
    }
    // Signed but about nothing this sale has: 404, nothing written.
    let unknown = app
        .stripe_signed(&event("evt_2", "checkout.session.completed", paid(99)))
        .await;
    unknown.assert_error(404, "ORDER_NOT_FOUND");
    let no_sale = json!({"client_reference_id": "nosuch:1", "payment_status": "paid"});
    app.stripe_signed(&event("evt_3", "checkout.session.completed", no_sale))
        .await
        .assert_error(404, "SALE_NOT_FOUND");
    let unnamed = json!({"payment_status": "paid"});
    app.stripe_signed(&event("evt_4", "checkout.session.completed", unnamed))
        .await
        .assert_error(400, "INVALID_REQUEST");
    // Not an event flashsale acts on: 200, so Stripe does not retry it, and nothing written.
    let other = app
        .stripe_signed(&event("evt_5", "payment_intent.created", paid(1)))
        .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.body["ignored"], "payment_intent.created");
    let unpaid =
        json!({"metadata": {"saleId": "default", "orderNumber": "1"}, "payment_status": "unpaid"});
    let waiting = app
        .stripe_signed(&event("evt_6", "checkout.session.completed", unpaid))
        .await;
    assert_eq!(waiting.status, 200);
    assert_eq!(waiting.body["ignored"], "checkout.session.completed");
    assert_eq!(redis.digest().await, digest, "refused events write nothing");

    // The valid event, with several v1 signatures (a rolled secret) as Stripe may send.
    let rolled = format!("{},v1={}", sign(STRIPE_SECRET, now, &body), "0".repeat(64));
    let confirmed = app.stripe(&body, Some(&rolled)).await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    assert_eq!(
        (
            &confirmed.body["orderNumber"],
            &confirmed.body["state"],
            &confirmed.body["duplicate"]
        ),
        (&json!(1), &json!("confirmed"), &json!(false))
    );
    assert_eq!(app.order_call("1", "").await.body["state"], "confirmed");
    // The same event again: remembered, nothing changes.
    let digest = redis.digest().await;
    let replayed = app.stripe_signed(&body).await;
    assert_eq!(replayed.status, 200);
    assert_eq!(replayed.body["duplicate"], true);
    assert_eq!(
        redis.digest().await,
        digest,
        "a replayed event writes nothing"
    );

    // The other documented events: expired and failed cancel, async success confirms; the
    // order named by client_reference_id.
    let by_reference = |order: u64, status: &str| json!({"client_reference_id": format!("default:{order}"), "payment_status": status});
    let expired = app
        .stripe_signed(&event(
            "evt_7",
            "checkout.session.expired",
            by_reference(2, "unpaid"),
        ))
        .await;
    assert_eq!(expired.body["state"], "released", "{:?}", expired.body);
    let failed = app
        .stripe_signed(&event(
            "evt_8",
            "checkout.session.async_payment_failed",
            by_reference(3, "unpaid"),
        ))
        .await;
    assert_eq!(failed.body["state"], "released");
    let later = app
        .stripe_signed(&event(
            "evt_9",
            "checkout.session.async_payment_succeeded",
            by_reference(4, "paid"),
        ))
        .await;
    assert_eq!(later.body["state"], "confirmed");
    let view = app.sale_view().await;
    assert_eq!(
        (&view["confirmed"], &view["held"], &view["remaining"]),
        (&json!(2), &json!(0), &json!(8))
    );
    assert_eq!(view["consistent"], true);
    // A session that expires after its order was paid leaves the order paid: Stripe is told 200.
    let after_paid = app
        .stripe_signed(&event(
            "evt_10",
            "checkout.session.expired",
            by_reference(1, "unpaid"),
        ))
        .await;
    assert_eq!(after_paid.status, 200);
    assert_eq!(after_paid.body["state"], "confirmed");
    assert_eq!(app.sale_view().await["confirmed"], 2);
}

#[tokio::test]
async fn without_a_stripe_secret_the_route_does_not_exist() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let body = event("evt_1", "checkout.session.completed", paid(1));
    let reply = app
        .stripe(
            &body,
            Some(&sign(STRIPE_SECRET, chrono::Utc::now().timestamp(), &body)),
        )
        .await;
    reply.assert_error(404, "NOT_FOUND");
}
