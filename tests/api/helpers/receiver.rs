//! A real local HTTP receiver for order webhooks: it checks each request's signature with its
//! own HMAC (ring, not the service's code), answers as the test's plan says, records
//! everything, and can be taken down and brought back on the same port.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value as Json;
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

/// What the receiver does with one request.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    Accept,
    Fail(u16),
    /// Answers 200 only after this long (the service's timeout is shorter).
    Stall(Duration),
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_id: String,
    pub attempt: u32,
    pub body: Json,
    pub signature_valid: bool,
    pub action: String,
}

/// Decides the answer from the event id and how many times this event was seen before.
pub type Plan = Arc<dyn Fn(&str, usize) -> Action + Send + Sync>;

struct State {
    secret: String,
    plan: Plan,
    log: Mutex<Vec<Delivery>>,
}

pub struct Receiver {
    pub port: u16,
    state: Arc<State>,
    handle: Option<actix_web::dev::ServerHandle>,
}

impl Receiver {
    pub async fn start(secret: &str, plan: Plan) -> Self {
        let state = Arc::new(State {
            secret: secret.to_owned(),
            plan,
            log: Mutex::new(Vec::new()),
        });
        let mut receiver = Self {
            port: 0,
            state,
            handle: None,
        };
        receiver.listen(0);
        receiver
    }

    fn listen(&mut self, port: u16) {
        let state = self.state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::from(state.clone()))
                .default_service(web::to(receive))
        })
        .workers(2)
        .shutdown_timeout(0)
        .bind(("127.0.0.1", port))
        .expect("receiver binds");
        self.port = server.addrs()[0].port();
        let server = server.run();
        self.handle = Some(server.handle());
        tokio::spawn(server);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/orders", self.port)
    }

    /// Down: nothing listens on the port any more.
    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop(false).await;
        }
    }

    /// Back up on the same port.
    pub fn restart(&mut self) {
        self.listen(self.port);
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.log.lock().unwrap().clone()
    }

    /// Event ids answered 2xx at once (a stalled answer came too late to count).
    pub fn delivered(&self) -> BTreeSet<String> {
        self.deliveries()
            .into_iter()
            .filter(|delivery| delivery.action == "accept")
            .map(|delivery| delivery.event_id)
            .collect()
    }

    /// Waits (bounded) until every one of `events` was delivered; returns whether they were.
    pub async fn wait_for(&self, events: &BTreeSet<String>, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if events.is_subset(&self.delivered()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Requests per event id.
    pub fn attempts_by_event(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for delivery in self.deliveries() {
            *counts.entry(delivery.event_id).or_insert(0) += 1;
        }
        counts
    }
}

/// `t=<secs>,v1=<hex>` checked against HMAC-SHA256("t.body"), computed here independently.
fn signature_valid(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut parts = header.split(',');
    let (Some(t), Some(v1), None) = (
        parts.next().and_then(|p| p.strip_prefix("t=")),
        parts.next().and_then(|p| p.strip_prefix("v1=")),
        parts.next(),
    ) else {
        return false;
    };
    let Ok(seconds) = t.parse::<i64>() else {
        return false;
    };
    // Receivers refuse old signatures (replays); five minutes is the usual tolerance.
    if (chrono::Utc::now().timestamp() - seconds).abs() > 300 {
        return false;
    }
    let Some(tag) = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v1.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    ring::hmac::verify(&key, &signed, &tag).is_ok()
}

async fn receive(request: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let event_id = header("flashsale-event-id");
    let seen = {
        let log = state.log.lock().unwrap();
        log.iter()
            .filter(|delivery| delivery.event_id == event_id)
            .count()
    };
    let action = (state.plan)(&event_id, seen);
    let delivery = Delivery {
        event_id,
        attempt: header("flashsale-attempt").parse().unwrap_or_default(),
        body: serde_json::from_slice(&body).unwrap_or(Json::Null),
        signature_valid: signature_valid(&state.secret, &header("flashsale-signature"), &body),
        action: match action {
            Action::Accept => "accept".to_owned(),
            Action::Fail(status) => format!("fail {status}"),
            Action::Stall(_) => "stall".to_owned(),
        },
    };
    state.log.lock().unwrap().push(delivery);
    match action {
        Action::Accept => HttpResponse::NoContent().finish(),
        Action::Fail(status) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
                .finish()
        }
        Action::Stall(wait) => {
            tokio::time::sleep(wait).await;
            HttpResponse::Ok().finish()
        }
    }
}
