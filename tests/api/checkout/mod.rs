//! Checkout (README, Checkout): holds, quantity, confirm and cancel, late payments, the
//! sweeper and Stripe's signed events, over real HTTP against a real Redis.

mod expiry;
mod holds;
mod stripe;

use crate::helpers::{keys, spawn_app_with, Reply, TestApp, TestRedis};
use fred::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const TOKEN: &str = "an-admin-token-for-tests";
pub const STRIPE_SECRET: &str = "whsec_test_0123456789abcdef";

/// An app whose configured sale (`default`) has these checkout rules and this stock.
pub async fn checkout_app(redis: &TestRedis, hold: u32, max: u32, stock: u32) -> TestApp {
    spawn_app_with(
        redis,
        &[
            ("ADMIN_TOKEN", TOKEN),
            ("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
            ("SALE_HOLD_SECONDS", &hold.to_string()),
            ("SALE_MAX_PER_BUYER", &max.to_string()),
            ("SALE_TOTAL_STOCK", &stock.to_string()),
        ],
    )
    .await
}

impl TestApp {
    /// `POST /api/sale/purchase` with a quantity (none: the field is left out) and a key.
    pub async fn buy(&self, user: &str, quantity: Option<i64>, key: &str) -> Reply {
        let mut body = json!({ "userId": user });
        if let Some(quantity) = quantity {
            body["quantity"] = json!(quantity);
        }
        let request = self
            .http
            .post(self.url("/api/sale/purchase"))
            .header("Idempotency-Key", key);
        Reply::read(request.json(&body).send().await.unwrap()).await
    }

    /// An admin call on an order of `default`: `""` (GET), `"/confirm"` or `"/cancel"`.
    pub async fn order_call(&self, order: &str, action: &str) -> Reply {
        let url = self.url(&format!("/api/admin/sales/default/orders/{order}{action}"));
        let request = if action.is_empty() {
            self.http.get(url)
        } else {
            self.http.post(url)
        };
        Reply::read(request.bearer_auth(TOKEN).send().await.unwrap()).await
    }

    /// `DELETE /api/sale/reservation` with this token header (none: no header).
    pub async fn cancel_hold(&self, token: Option<&str>) -> Reply {
        let mut request = self.http.delete(self.url("/api/sale/reservation"));
        if let Some(token) = token {
            request = request.header("Flashsale-Reservation", token);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    /// The buyers export of `default` as JSON: `?state=` when given.
    pub async fn export(&self, state: Option<&str>) -> Value {
        let query = state.map(|s| format!("?state={s}")).unwrap_or_default();
        let url = self.url(&format!("/api/admin/sales/default/buyers{query}"));
        let reply = Reply::read(self.http.get(url).bearer_auth(TOKEN).send().await.unwrap()).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body
    }

    /// `GET /api/admin/sales/default`.
    pub async fn sale_view(&self) -> Value {
        let request = self.http.get(self.url("/api/admin/sales/default"));
        Reply::read(request.bearer_auth(TOKEN).send().await.unwrap())
            .await
            .body
    }
}

/// Every entry of a sale's order stream, as field maps, oldest first.
pub async fn order_stream(redis: &TestRedis, sale: &str) -> Vec<BTreeMap<String, String>> {
    let entries: Vec<(String, BTreeMap<String, String>)> = redis
        .client
        .xrange(keys(sale).orders(), "-", "+", None)
        .await
        .unwrap();
    entries.into_iter().map(|(_, fields)| fields).collect()
}

/// The counters a checkout sale's config keeps: sold, held, confirmed, released, total.
pub async fn counters(redis: &TestRedis, sale: &str) -> BTreeMap<String, i64> {
    redis
        .config(sale)
        .await
        .into_iter()
        .filter(|(name, _)| {
            [
                "sold",
                "held",
                "confirmed",
                "released",
                "totalStock",
                "orderSeq",
            ]
            .contains(&name.as_str())
        })
        .map(|(name, value)| (name, value.parse().unwrap()))
        .collect()
}

/// SPEC §1 with checkouts: remaining + held + confirmed = total, never oversold, and the admin
/// view agrees.
pub async fn assert_adds_up(app: &TestApp, redis: &TestRedis) {
    let c = counters(redis, "default").await;
    let total = c["totalStock"];
    let remaining = total - c["sold"];
    assert!(remaining >= 0, "oversold: {c:?}");
    assert_eq!(c["held"] + c["confirmed"], c["sold"], "{c:?}");
    let view = app.sale_view().await;
    assert_eq!(view["consistent"], true, "{view}");
    assert_eq!(view["remaining"], remaining, "{view}");
    assert_eq!(view["held"], c["held"], "{view}");
}
