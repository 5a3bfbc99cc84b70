//! The HTTP server: the app of each worker (its own Redis connections and state, the route
//! table, the middleware stack) and the limits of the listener.

use crate::{
    auth::Verifier,
    config::Settings,
    domain::{DefaultSale, MAX_SALES},
    live::Live,
    middleware::{self, IpGovernorConfig},
    redis_health::RedisHealth,
    routes::{self, extract::TokenFailures, AppState, MetricsToken, Mounts},
    status_cache::{StatusCache, STATUS_MAX_AGE},
    store::{RedisUrl, Store},
    telemetry::RequestSpan,
};
use actix_web::{
    dev::Server,
    http::header,
    middleware::{Condition, DefaultHeaders},
    web, App, HttpServer,
};
use std::{
    io,
    net::TcpListener,
    num::NonZeroUsize,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tracing_actix_web::TracingLogger;

/// How long in-flight requests get to finish after SIGTERM or Ctrl-C.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What every HTTP worker shares with the rest of the instance.
pub(super) struct Shared {
    pub verifier: Option<Verifier>,
    pub live: Live,
    pub redis_health: RedisHealth,
    pub ip_limit: Option<IpGovernorConfig>,
}

/// HTTP worker threads: `settings.workers`, else one per available core; never more than
/// Redis connections, so every worker has one of its own.
fn worker_count(settings: &Settings) -> usize {
    settings
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, settings.redis.pool_size.get())
}

/// Worker `index`'s share of `REDIS_POOL_SIZE`: the shares add up to exactly the setting.
fn connections_of_worker(pool_size: NonZeroUsize, workers: usize, index: usize) -> NonZeroUsize {
    let (base, extra) = (pool_size.get() / workers, pool_size.get() % workers);
    NonZeroUsize::new(base + usize::from(index < extra)).unwrap_or(NonZeroUsize::MIN)
}

/// The server on `listener`, not yet running.
pub(super) fn serve(
    listener: TcpListener,
    url: RedisUrl,
    shared: Shared,
    settings: &Settings,
) -> io::Result<Server> {
    let Shared {
        verifier,
        live,
        redis_health,
        ip_limit,
    } = shared;
    let user_id_case = settings.user_id_case;
    let status_cache = StatusCache::new(STATUS_MAX_AGE, MAX_SALES);
    // One per instance, so every worker sees a room switched on as soon as any of them does.
    let rooms = crate::queue::Rooms::new(settings.room_secret.as_ref());
    let user_attempts = settings.user_attempts;
    let default_sale = web::Data::new(DefaultSale(settings.sale_id.clone()));
    let redis_health_data = web::Data::new(redis_health.clone());
    let client_ip = web::Data::new(settings.client_ip.clone());
    let token_failures = settings
        .token_failures_per_minute
        .map(|limit| web::Data::new(TokenFailures::new(limit)));
    let timeout = settings.redis.timeout;
    let pool_size = settings.redis.pool_size;
    let workers = worker_count(settings);
    let next_worker = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let cors_origins = settings.cors.clone();
    let client_timeout = settings.client_timeout;
    let replica_wait = settings.replica_wait;
    let batch_max = settings.purchase_batch_max;
    let key_check = settings.redis.script_key_check;
    // A vouching call's gate is not waited for on replicas: with the replica wait on, a
    // failover must not be able to lose it, so every refusal goes to Redis.
    let local_refusals = settings.purchase_local_refusals && settings.replica_wait.is_none();
    let prometheus = crate::metrics::install().map(web::Data::new);
    let admin_token = settings.admin_token.clone().map(web::Data::new);
    let stripe_secret = settings.stripe_secret.clone().map(web::Data::new);
    let metrics_token = settings
        .metrics_token
        .clone()
        .map(|token| web::Data::new(MetricsToken(token)));

    let server = HttpServer::new(move || {
        // Runs on each worker's own thread: its connections and their tasks live there too.
        let index = next_worker.fetch_add(1, Ordering::Relaxed) % workers;
        let store = Store::new(
            &url,
            timeout,
            connections_of_worker(pool_size, workers, index),
        )
        .with_replica_wait(replica_wait)
        .with_batch_max(batch_max)
        .with_local_refusals(local_refusals)
        .with_key_check(key_check);
        store.connect();
        let state = web::Data::new(AppState {
            store,
            status_cache: status_cache.clone(),
            user_attempts,
            verifier: verifier.clone(),
            user_id_case,
            live: live.clone(),
            rooms: rooms.clone(),
            started,
        });
        let cors = middleware::cors(&cors_origins);
        let mut app = App::new()
            .app_data(state)
            .app_data(default_sale.clone())
            .app_data(redis_health_data.clone())
            .app_data(client_ip.clone());
        if let Some(failures) = &token_failures {
            app = app.app_data(failures.clone());
        }
        if let Some(handle) = &prometheus {
            app = app.app_data(handle.clone());
        }
        if let Some(token) = &metrics_token {
            app = app.app_data(token.clone());
        }
        let mounts = Mounts {
            admin_token: admin_token.as_ref(),
            ip_limit: ip_limit.as_ref(),
            stripe_secret: stripe_secret.as_ref(),
        };
        app.configure(|cfg| routes::table(cfg, mounts))
            // On every answer; the page sets its own, fuller Content-Security-Policy.
            .wrap(security_headers())
            .wrap_fn(middleware::body_deadline(client_timeout))
            // Condition needs a value even when off; an unused Cors costs nothing.
            .wrap(Condition::new(cors.is_some(), cors.unwrap_or_default()))
            .wrap_fn(middleware::envelope)
            .wrap(TracingLogger::<RequestSpan>::new())
    })
    .workers(workers)
    // Per worker in actix: the instance's cap shared out. Past it, new connections wait in
    // the kernel's listen backlog (bounded) instead of each taking memory here.
    .max_connections(settings.max_connections.div_ceil(workers))
    .client_request_timeout(settings.client_timeout)
    // A client that closes its side is gone (browsers never half-close): its event stream,
    // and the stream's slot, are dropped at once instead of at the next write.
    .h1_allow_half_closed(false)
    .listen(listener)?
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs());
    Ok(server.run())
}

/// Headers every answer carries: no MIME sniffing, no framing, no referrer, and a policy that
/// lets a JSON answer load nothing.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
}

/// `METRICS_PORT`'s listener: `GET /metrics` only, without the token (the port is for a private
/// network's scraper), one worker; anything else is a JSON 404.
pub(super) fn serve_metrics(listener: TcpListener) -> std::io::Result<Server> {
    let prometheus = crate::metrics::install().map(web::Data::new);
    let server = HttpServer::new(move || {
        let mut app = App::new();
        if let Some(handle) = &prometheus {
            app = app.app_data(handle.clone());
        }
        app.route("/metrics", web::get().to(routes::health::metrics_private))
            .default_service(web::to(routes::not_found))
    })
    .workers(1)
    .listen(listener)?
    .shutdown_timeout(1);
    Ok(server.run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_shares_add_up_to_the_pool_size() {
        for (pool, workers) in [(4, 2), (5, 2), (7, 3), (1, 1), (256, 16)] {
            let pool_size = NonZeroUsize::new(pool).unwrap();
            let total: usize = (0..workers)
                .map(|index| connections_of_worker(pool_size, workers, index).get())
                .sum();
            assert_eq!(total, pool, "{pool} over {workers}");
        }
    }
}
