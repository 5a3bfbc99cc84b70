//! The waiting room (README, Waiting room): joins and exact positions, the draw anyone can
//! check, admission on Redis's clock, signed admissions, the queue stream, over real HTTP
//! against a real Redis and several instances.

mod admission;
mod draw;
mod joins;
mod streams;

use crate::{
    events::Events,
    helpers::{spawn_app_with, Reply, TestApp, TestRedis},
};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "an-admin-token-for-tests";
pub const SECRET: &str = "a-waiting-room-secret-of-32-chars!";

/// An instance with the admin API and the room secret; no sale of its own.
pub async fn room_app(redis: &TestRedis, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("ADMIN_TOKEN", TOKEN),
        ("WAITING_ROOM_SECRET", SECRET),
        ("SALE_TOTAL_STOCK", ""),
        ("SALE_START", ""),
        ("SALE_END", ""),
        ("SALE_PRODUCT_NAME", ""),
        ("SSE_MAX_STREAMS_PER_CLIENT", "10000"),
    ];
    vars.extend_from_slice(extra);
    spawn_app_with(redis, &vars).await
}

impl TestApp {
    /// `PUT /api/admin/sales/{sale}` with a waiting room (`room`: the body's `waitingRoom`).
    pub async fn put_room_sale(
        &self,
        sale: &str,
        stock: u32,
        start: DateTime<Utc>,
        room: Value,
    ) -> Reply {
        let body = json!({
            "productName": "Drop",
            "totalStock": stock,
            "startTime": start,
            "endTime": start + ChronoDuration::hours(1),
            "waitingRoom": room,
        });
        let url = self.url(&format!("/api/admin/sales/{sale}"));
        Reply::read(
            self.http
                .put(url)
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// `PATCH /api/admin/sales/{sale}`.
    pub async fn patch_sale(&self, sale: &str, body: Value) -> Reply {
        let url = self.url(&format!("/api/admin/sales/{sale}"));
        let request = self.http.patch(url).bearer_auth(TOKEN).json(&body);
        Reply::read(request.send().await.unwrap()).await
    }

    /// Starts a sale now, on the service's clock (its pre-queue is drawn at once).
    pub async fn start_now(&self, sale: &str) {
        let reply = self
            .patch_sale(sale, json!({ "startTime": Utc::now() }))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    /// `POST /api/sales/{sale}/queue`.
    pub async fn join(&self, sale: &str, user: &str) -> Reply {
        let url = self.url(&format!("/api/sales/{sale}/queue"));
        let body = json!({ "userId": user });
        Reply::read(self.http.post(url).json(&body).send().await.unwrap()).await
    }

    /// `GET /api/sales/{sale}/queue/me?userId=`.
    pub async fn queue_me(&self, sale: &str, user: &str) -> Reply {
        self.get(&format!("/api/sales/{sale}/queue/me?userId={user}"))
            .await
    }

    /// A purchase with an admission header (none: no header).
    pub async fn buy_admitted(&self, sale: &str, user: &str, admission: Option<&str>) -> Reply {
        let url = self.url(&format!("/api/sales/{sale}/purchase"));
        let mut request = self.http.post(url).json(&json!({ "userId": user }));
        if let Some(admission) = admission {
            request = request.header("Flashsale-Admission", admission);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    /// `GET /api/admin/sales/{sale}`.
    pub async fn admin_view(&self, sale: &str) -> Value {
        let url = self.url(&format!("/api/admin/sales/{sale}"));
        Reply::read(self.http.get(url).bearer_auth(TOKEN).send().await.unwrap())
            .await
            .body
    }
}

/// A sale whose start is an hour away, with a room (admitPerSecond `rate`) open now.
pub async fn upcoming_room_sale(app: &TestApp, sale: &str, stock: u32, rate: u32) -> Value {
    let start = Utc::now() + ChronoDuration::hours(1);
    let room =
        json!({ "admitPerSecond": rate, "opensAt": Utc::now() - ChronoDuration::seconds(5) });
    let reply = app.put_room_sale(sale, stock, start, room).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body
}

/// A queue stream opened with a join's ticket.
pub async fn queue_stream(app: &TestApp, sale: &str, ticket: &str) -> Events {
    let path = format!("/api/sales/{sale}/queue/events?ticket={}", encode(ticket));
    let response = Events::open(app, &path).await;
    assert_eq!(response.status(), 200);
    Events::new(response)
}

/// Percent-encodes what a query value may not hold as is.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl Events {
    /// The next `queue` event whose state is `state`, within `patience`.
    pub async fn next_queue_state(&mut self, state: &str, patience: Duration) -> Option<Value> {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let event = self.next_event("queue", left).await?;
            if event["state"] == state {
                return Some(event);
            }
        }
    }
}
