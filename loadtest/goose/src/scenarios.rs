//! The scenarios: flash-burst, steady, retry-storm and waiting-room, and the requests they make.

use crate::ledger::{Ledger, Place};
use goose::prelude::*;
use serde::Deserialize;
use std::{sync::OnceLock, time::Duration};

static LEDGER: OnceLock<Ledger> = OnceLock::new();
static BASE: OnceLock<String> = OnceLock::new();

/// Sets the run's ledger and the sale's routes (`/api/sale` or `/api/sales/{id}`); goose
/// transactions are plain functions, so they are globals.
pub fn install(ledger: Ledger, base: String) {
    let _ = LEDGER.set(ledger);
    let _ = BASE.set(base);
}

/// A route of the sale under load, e.g. `path("/purchase")`.
fn path(route: &str) -> String {
    format!("{}{route}", BASE.get().map_or("/api/sale", String::as_str))
}

/// Creates a fresh sale for the run through the admin API: `stock` units, open from 2000 to
/// 2100 (so no clock matters), no holds, no room.
pub async fn create_sale(
    http: &reqwest::Client,
    host: &str,
    token: &str,
    sale: &str,
    stock: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let body = serde_json::json!({
        "productName": format!("Load test {sale}"),
        "totalStock": stock,
        "startTime": "2000-01-01T00:00:00Z",
        "endTime": "2100-01-01T00:00:00Z",
    });
    let reply = http
        .put(format!("{host}/api/admin/sales/{sale}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    if !reply.status().is_success() {
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        return Err(format!("PUT /api/admin/sales/{sale} answered {status}: {text}").into());
    }
    Ok(())
}

pub fn ledger() -> &'static Ledger {
    LEDGER.get_or_init(|| Ledger::new(0, String::new()))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleStatus {
    pub status: String,
    pub total_stock: i64,
    pub remaining_stock: i64,
}

pub async fn sale_status(
    http: &reqwest::Client,
    host: &str,
    base: &str,
) -> Result<SaleStatus, Box<dyn std::error::Error>> {
    let reply = http.get(format!("{host}{base}/status")).send().await?;
    if !reply.status().is_success() {
        return Err(format!(
            "GET {base}/status answered {}: is the sale there?",
            reply.status()
        )
        .into());
    }
    Ok(reply.json().await?)
}

/// `flash-burst`: N distinct buyers, each buying once, as fast as the users can send.
pub fn flash_burst() -> Scenario {
    scenario!("flash-burst").register_transaction(transaction!(buy_once).set_name("purchase"))
}

/// `steady`: status pollers (9 in 10 users) and a trickle of buyers.
pub fn steady() -> Vec<Scenario> {
    let pollers = scenario!("pollers")
        .set_weight(9)
        .and_then(|s| s.set_wait_time(Duration::from_millis(200), Duration::from_millis(1000)))
        .map(|s| s.register_transaction(transaction!(poll_status).set_name("status")));
    let buyers = scenario!("buyers")
        .set_weight(1)
        .and_then(|s| s.set_wait_time(Duration::from_millis(500), Duration::from_millis(1500)))
        .map(|s| s.register_transaction(transaction!(buy_once).set_name("purchase")));
    [pollers, buyers]
        .into_iter()
        .filter_map(Result::ok)
        .collect()
}

/// `retry-storm`: buyers who retry on 503 and 429 with their Idempotency-Key until answered.
pub fn retry_storm() -> Scenario {
    scenario!("retry-storm")
        .register_transaction(transaction!(buy_with_retries).set_name("purchase"))
}

async fn poll_status(user: &mut GooseUser) -> TransactionResult {
    let _ = user.get_named(&path("/status"), "status").await?;
    Ok(())
}

async fn buy_once(user: &mut GooseUser) -> TransactionResult {
    let Some(buyer) = ledger().next_buyer() else {
        return Ok(());
    };
    let answer = purchase_with(user, &buyer, None, None).await?;
    let final_code = answer.code.as_deref().filter(|_| answer.status != 503);
    ledger().record(&buyer, final_code, answer.order_number);
    Ok(())
}

const MAX_TRIES: usize = 20;

async fn buy_with_retries(user: &mut GooseUser) -> TransactionResult {
    let Some(buyer) = ledger().next_buyer() else {
        return Ok(());
    };
    let key = format!("{buyer}-checkout");
    for _ in 0..MAX_TRIES {
        let answer = purchase_with(user, &buyer, Some(&key), None).await?;
        match answer.status {
            503 | 429 | 0 => tokio::time::sleep(retry_wait(&answer)).await,
            _ => {
                ledger().record(&buyer, answer.code.as_deref(), answer.order_number);
                return Ok(());
            }
        }
    }
    ledger().record(&buyer, None, None);
    Ok(())
}

/// How long a buyer waits before trying again: the answer's `Retry-After` (at most 5 s, so a
/// run stays bounded), or a quarter of a second when there was no answer at all.
fn retry_wait(answer: &Answer) -> Duration {
    match answer.retry_after {
        Some(seconds) => Duration::from_secs(seconds.clamp(1, 5)),
        None => Duration::from_millis(250),
    }
}

struct Answer {
    status: u16,
    code: Option<String>,
    order_number: Option<i64>,
    retry_after: Option<u64>,
}

/// One `POST /api/sale/purchase`, with an `Idempotency-Key` and a waiting-room admission when
/// given. Every answer the SPEC defines for a well-formed request counts as a success in goose's
/// report; only 503s, other statuses and transport errors fail.
async fn purchase_with(
    user: &mut GooseUser,
    buyer: &str,
    key: Option<&str>,
    admission: Option<&str>,
) -> Result<Answer, Box<TransactionError>> {
    let mut builder = user
        .get_request_builder(&GooseMethod::Post, &path("/purchase"))?
        .json(&serde_json::json!({ "userId": buyer }));
    if let Some(key) = key {
        builder = builder.header("Idempotency-Key", key);
    }
    if let Some(admission) = admission {
        builder = builder.header("Flashsale-Admission", admission);
    }
    let request = GooseRequest::builder()
        .set_request_builder(builder)
        .name("purchase")
        .build();
    let mut goose = user.request(request).await?;
    let Ok(response) = goose.response else {
        return Ok(Answer {
            status: 0,
            code: None,
            order_number: None,
            retry_after: None,
        });
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if matches!(status, 200 | 403 | 409 | 410 | 429) {
        // The update must not carry the error again, or goose counts it twice.
        goose.request.error.clear();
        user.set_success(&mut goose.request)?;
    }
    Ok(Answer {
        status,
        code: body["code"].as_str().map(str::to_owned),
        order_number: body["orderNumber"].as_i64(),
        retry_after,
    })
}

/// `waiting-room`: each buyer joins the sale's waiting room, waits on the queue stream, and buys
/// the moment it is admitted (with the admission), as a storefront does.
pub fn waiting_room() -> Scenario {
    scenario!("waiting-room").register_transaction(transaction!(queue_and_buy).set_name("queue"))
}

/// How long one buyer waits for its turn before giving up.
const TURN_PATIENCE: Duration = Duration::from_secs(300);

/// The client that reads queue streams: goose times whole answers, and a stream is not one.
fn stream_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

async fn queue_and_buy(user: &mut GooseUser) -> TransactionResult {
    let Some(buyer) = ledger().next_buyer() else {
        return Ok(());
    };
    let builder = user
        .get_request_builder(&GooseMethod::Post, &path("/queue"))?
        .json(&serde_json::json!({ "userId": buyer }));
    let request = GooseRequest::builder()
        .set_request_builder(builder)
        .name("queue/join")
        .build();
    let mut goose = user.request(request).await?;
    let joined: serde_json::Value = match goose.response {
        Ok(response) if response.status().is_success() => {
            user.set_success(&mut goose.request)?;
            response.json().await.unwrap_or_default()
        }
        _ => {
            ledger().record(&buyer, None, None);
            return Ok(());
        }
    };
    let place = match joined["state"].as_str() {
        Some("admitted" | "sold_out" | "ended" | "expired") => joined.clone(),
        _ => match joined["ticket"].as_str() {
            Some(ticket) => wait_for_turn(&user.base_url, ticket, &buyer).await,
            None => joined.clone(),
        },
    };
    let position = place["position"].as_i64().unwrap_or(0);
    let Some(admission) = place["admission"].as_str() else {
        // Sold out (or ended) before this buyer's turn: an honest "no", told at once.
        let code = match place["state"].as_str() {
            Some("sold_out") => Some("SOLD_OUT"),
            Some("ended") => Some("SALE_ENDED"),
            _ => None,
        };
        ledger().record(&buyer, code, None);
        let place = Place {
            position,
            bought: false,
            admission_expires: None,
        };
        ledger().record_place(&buyer, place);
        return Ok(());
    };
    // As a storefront buys: one Idempotency-Key, retried on 503 or no answer (an idle
    // keep-alive connection the server closed while the buyer waited its turn, say).
    let key = format!("{buyer}-room");
    let mut answer = purchase_with(user, &buyer, Some(&key), Some(admission)).await?;
    for _ in 1..MAX_TRIES {
        if !matches!(answer.status, 0 | 503) {
            break;
        }
        tokio::time::sleep(retry_wait(&answer)).await;
        answer = purchase_with(user, &buyer, Some(&key), Some(admission)).await?;
    }
    let code = answer.code.as_deref().filter(|_| answer.status != 503);
    ledger().record(&buyer, code, answer.order_number);
    if code.is_none() {
        // Unknown outcome: neither a buyer nor a buyer who was refused.
        return Ok(());
    }
    let place = Place {
        position,
        bought: code == Some("PURCHASED"),
        admission_expires: place["admissionExpiresAt"].as_str().map(str::to_owned),
    };
    ledger().record_place(&buyer, place);
    Ok(())
}

/// Whether a place is final for this scenario: the buyer's turn came, or never will.
fn is_final(place: &serde_json::Value) -> bool {
    matches!(
        place["state"].as_str(),
        Some("admitted" | "sold_out" | "ended" | "expired")
    )
}

/// Waits for the buyer's turn: on the queue stream, or, when the stream is refused (an instance
/// caps streams per client address, `SSE_MAX_STREAMS_PER_CLIENT`), by polling `queue/me` every
/// 100 ms, as a storefront falls back. The last place seen.
async fn wait_for_turn(base: &reqwest::Url, ticket: &str, buyer: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + TURN_PATIENCE;
    let last = read_stream(base, ticket, deadline).await;
    if is_final(&last) {
        return last;
    }
    let mut url = base.clone();
    url.set_path(&path("/queue/me"));
    url.query_pairs_mut().append_pair("userId", buyer);
    let mut last = last;
    while tokio::time::Instant::now() < deadline {
        if let Ok(reply) = stream_client().get(url.clone()).send().await {
            if reply.status().is_success() {
                last = reply.json().await.unwrap_or_default();
                if is_final(&last) {
                    return last;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// Reads the queue stream until the place is final, the stream ends or is refused.
async fn read_stream(
    base: &reqwest::Url,
    ticket: &str,
    deadline: tokio::time::Instant,
) -> serde_json::Value {
    let mut url = base.clone();
    url.set_path(&path("/queue/events"));
    url.query_pairs_mut().append_pair("ticket", ticket);
    let mut last = serde_json::Value::Null;
    let Ok(mut response) = stream_client().get(url).send().await else {
        return last;
    };
    if !response.status().is_success() {
        return last;
    }
    let mut buffer = String::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, response.chunk()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|line| line.strip_prefix("data: ")) else {
                continue;
            };
            last = serde_json::from_str(data).unwrap_or_default();
            if is_final(&last) {
                return last;
            }
        }
    }
    last
}
