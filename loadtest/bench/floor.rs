//! The floor servers of the benchmark (README, Benchmarks): what actix-web 4 and fred 10 cost
//! on their own, so flashsale's figures can be read against the least a service on this stack
//! could spend.
//!
//! - `floor http PORT`: `POST /api/sale/purchase` parses the JSON body (`userId`) and answers a
//!   purchase-sized JSON body; no Redis.
//! - `floor redis PORT REDIS_URL`: the same, plus one `EVALSHA` of a one-command script (`INCR`
//!   of one key) through fred, before answering.
//!
//! As flashsale runs: one actix worker per core, mimalloc, each worker with its own fred
//! clients on its own thread (4 connections shared out among the workers), a script loaded
//! at start-up and called by SHA.
//!
//! Build: `cargo build --release --example floor`.

use actix_web::{web, App, HttpResponse, HttpServer};
use fred::{prelude::*, types::scripts::Script};
use serde::Deserialize;
use std::{num::NonZeroUsize, time::Duration};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The one-command script: as cheap as a script call can be.
const INCR: &str = "return redis.call('INCR', KEYS[1])";
const POOL: usize = 4;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    user_id: String,
}

struct Floor {
    redis: Option<(Pool, Script)>,
}

/// A reply the size of flashsale's `PURCHASED` answer.
fn answer(user: &str, order: i64) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "success": true, "code": "PURCHASED", "message": "You got one! Your unit is reserved.",
        "remainingStock": 1_999_999, "purchaseTime": "2026-12-03T12:00:00.000Z",
        "orderNumber": order, "userId": user.len(),
    }))
}

async fn purchase(floor: web::Data<Floor>, body: web::Json<Body>) -> HttpResponse {
    let Some((pool, script)) = &floor.redis else {
        return answer(&body.user_id, 1);
    };
    let reply: Result<i64, _> = script
        .evalsha(pool.next(), vec!["floor:counter"], Vec::<String>::new())
        .await;
    match reply {
        Ok(order) => answer(&body.user_id, order),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn connect(url: &str, connections: usize) -> Result<(Pool, Script), Error> {
    let config = Config::from_url(url)?;
    let pool = Builder::from_config(config)
        .with_connection_config(|c| c.connection_timeout = Duration::from_secs(2))
        .build_pool(connections)?;
    pool.init().await?;
    let script = Script::from_lua(INCR);
    script.load(pool.next()).await?;
    Ok((pool, script))
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, port) = match args.as_slice() {
        [mode, port, ..] => (mode.clone(), port.parse::<u16>().unwrap_or(0)),
        _ => {
            eprintln!("usage: floor http PORT | floor redis PORT REDIS_URL");
            std::process::exit(2);
        }
    };
    let url = match (mode.as_str(), args.get(2)) {
        ("http", _) => None,
        ("redis", Some(url)) => Some(url.clone()),
        _ => {
            eprintln!("usage: floor http PORT | floor redis PORT REDIS_URL");
            std::process::exit(2);
        }
    };
    let workers = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            // Each worker's share of the pool, as flashsale's (connections_of_worker).
            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % workers;
            let share = (POOL / workers + usize::from(index < POOL % workers)).max(1);
            let url = url.clone();
            App::new()
                .app_data(web::JsonConfig::default().limit(4096))
                .data_factory(move || {
                    let url = url.clone();
                    async move {
                        let redis = match url {
                            Some(url) => Some(connect(&url, share).await.map_err(|err| {
                                eprintln!("floor: Redis: {err}");
                                std::io::Error::other(err.to_string())
                            })?),
                            None => None,
                        };
                        Ok::<_, std::io::Error>(Floor { redis })
                    }
                })
                .route("/api/sale/purchase", web::post().to(purchase))
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}
