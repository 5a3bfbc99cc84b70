//! Start-up: connect Redis (or start the embedded one), load the scripts, create the configured
//! sale if it is missing, bind the listener, and give every HTTP worker its own Redis
//! connections on its own thread.

use crate::{
    auth::{AuthError, Verifier},
    config::Settings,
    domain::{rfc3339_ms, SaleId},
    live::Live,
    middleware,
    redis_health::RedisHealth,
    routes::{self, AppState},
    status_cache::{StatusCache, MAX_SALES, STATUS_MAX_AGE},
    store::{
        admin::SaleStats,
        local_server::{LocalRedisServer, LocalServerError},
        RedisUrl, SaleSeed, Store, StoreError,
    },
    telemetry::RequestSpan,
};
use actix_governor::Governor;
use actix_web::{
    dev::{Server, ServerHandle},
    http::header,
    middleware::{Condition, DefaultHeaders},
    web, App, HttpServer,
};
use chrono::Utc;
use std::{
    io,
    net::{SocketAddr, TcpListener},
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

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    LocalRedis(#[from] LocalServerError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot reach Redis at {url} (tried for {waited_secs} s): {source}")]
    RedisUnreachable {
        url: String,
        waited_secs: u64,
        source: StoreError,
    },
    #[error("cannot use Redis at {url}: {source}")]
    Redis { url: String, source: StoreError },
    #[error("cannot start order webhooks: {0}")]
    Webhooks(String),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: io::Error,
    },
}

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
    live: Live,
    webhooks: Option<tokio::task::JoinHandle<()>>,
    signals: ShutdownSignals,
    local_redis: Option<LocalRedisServer>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // First of all, so a signal at any point of start-up or later stops the service cleanly.
        let signals = ShutdownSignals::listen();
        let (url, local_redis) = match &settings.redis.url {
            Some(url) => (url.clone(), None),
            None => {
                let server = LocalRedisServer::start().await?;
                tracing::warn!(
                    redis_port = server.port(),
                    redis_pid = server.pid(),
                    "LOCAL MODE: REDIS_URL is unset, so flashsale started its own redis-server \
                     (loopback only, persistence off, stopped on exit). Set REDIS_URL in production."
                );
                let url = RedisUrl::parse(&server.url()).map_err(|reason| {
                    LocalServerError::NotReady {
                        port: server.port(),
                        reason,
                    }
                })?;
                (url, Some(server))
            }
        };
        let redis_error = |source| StartupError::Redis {
            url: url.to_string(),
            source,
        };

        // The control connection: start-up's commands, then the background checks. The HTTP
        // workers open their own connections (REDIS_POOL_SIZE) on their own threads.
        let control = Store::new(&url, settings.redis.timeout, NonZeroUsize::MIN);
        wait_for_redis(&control, &url, settings.redis.startup_timeout).await?;
        let seed = match (&settings.sale_seed, &local_redis) {
            (Some(seed), _) => Some(seed.clone()),
            (None, Some(_)) => Some(SaleSeed::demo(Utc::now())),
            (None, None) => None,
        };
        for sale in control
            .upgrade_sales(&settings.sale_id)
            .await
            .map_err(redis_error)?
        {
            tracing::info!(sale_id = %sale, "sale moved to this build's data layout (sold count in its config, buyers in buckets)");
        }
        if let Some(seed) = seed {
            seed_sale(
                &control,
                &settings.sale_id,
                &seed,
                settings.sale_window_given,
            )
            .await
            .map_err(redis_error)?;
        }
        let redis_health = RedisHealth::default();
        redis_health.spawn_check(control.clone(), settings.redis.health_check);
        let webhooks = match &settings.webhook {
            // The loop gets connections of its own: deliveries never wait behind purchases.
            Some(webhook) => {
                let store = Store::new(&url, settings.redis.timeout, NonZeroUsize::MIN);
                store.connect();
                Some(
                    crate::webhooks::spawn(store, webhook.clone())
                        .map_err(|err| StartupError::Webhooks(err.to_string()))?,
                )
            }
            None => None,
        };
        let verifier = match &settings.auth {
            Some(auth) => {
                let verifier = Verifier::new(auth).await?;
                verifier.spawn_refresh();
                Some(verifier)
            }
            None => None,
        };

        let address = SocketAddr::new(settings.host, settings.port);
        let listen_error = |source| StartupError::Listen { address, source };
        let listener = TcpListener::bind(address).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        let live = Live::new(settings.sse_max_streams);
        let server = run(
            listener,
            url.clone(),
            Shared {
                verifier,
                live: live.clone(),
                redis_health,
            },
            &settings,
        )
        .map_err(listen_error)?;
        tracing::info!(host = %settings.host, port, redis = %url, sale_id = %settings.sale_id, "flashsale listening");
        Ok(Self {
            port,
            server,
            live,
            webhooks,
            signals,
            local_redis,
        })
    }

    /// Whether this instance runs its own embedded `redis-server` (no `REDIS_URL`).
    pub fn is_local_mode(&self) -> bool {
        self.local_redis.is_some()
    }

    /// The bound port (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server gracefully when asked (tests use it; signals do the same in production).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM, SIGINT or [`ServerHandle::stop`], then stops the embedded
    /// `redis-server`, if any (the workers' Redis connections close with their threads).
    pub async fn run_until_stopped(self) -> io::Result<()> {
        // actix waits for open responses on shutdown; event streams never end by themselves,
        // so they are told to end when the signal comes.
        let live = self.live.clone();
        let handle = self.server.handle();
        let signals = self.signals;
        tokio::spawn(async move {
            signals.recv().await;
            live.close_all();
            handle.stop(true).await;
        });
        let result = self.server.await;
        self.live.close_all();
        // Deliveries in flight stop here; their orders stay pending and another instance (or
        // this one, restarted) claims them after ORDER_WEBHOOK_CLAIM_IDLE_MS.
        if let Some(webhooks) = self.webhooks {
            webhooks.abort();
        }
        if let Some(local) = self.local_redis {
            local.stop().await;
            tracing::info!("embedded redis-server stopped");
        }
        result
    }
}

/// Connects and loads the scripts, retrying with back-off for up to `within`: a Redis that is
/// still starting (a deploy brings both up at once) or failing over is waited for, and one that
/// stays away ends start-up with one clear line.
async fn wait_for_redis(
    store: &Store,
    url: &RedisUrl,
    within: Duration,
) -> Result<(), StartupError> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    store.connect();
    let mut first = true;
    loop {
        // The first try gets its whole REDIS_TIMEOUT_MS; later ones only what is left.
        let left = within.saturating_sub(started.elapsed());
        let attempt = store.load_scripts();
        let result = if first {
            attempt.await
        } else {
            tokio::time::timeout(left, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(fred::error::Error::new(
                        fred::error::ErrorKind::Timeout,
                        "no answer before REDIS_STARTUP_TIMEOUT_MS",
                    )))
                })
        };
        first = false;
        let error = match result {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        if started.elapsed() + backoff > within {
            return Err(StartupError::RedisUnreachable {
                url: url.to_string(),
                waited_secs: started.elapsed().as_secs(),
                source: error,
            });
        }
        tracing::warn!(redis = %url, error = %error, retry_in_ms = backoff.as_millis() as u64, "Redis not reachable yet; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// SIGTERM and SIGINT, listened for from the moment the application is built.
///
/// Registered eagerly: actix registers its own handlers only once its server task first runs,
/// and a SIGTERM that arrived in between (right after "ready" was printed) took the default
/// action, killing the process without stopping its embedded `redis-server` (seen as
/// orphaned `redis-server`s after the local-mode test).
struct ShutdownSignals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The first of them.
    async fn recv(self) {
        #[cfg(unix)]
        {
            async fn next(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = next(self.terminate) => {}
                _ = next(self.interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn seed_sale(
    store: &Store,
    sale: &SaleId,
    seed: &SaleSeed,
    window_given: bool,
) -> Result<(), StoreError> {
    if store.create_sale_if_missing(sale, seed).await? {
        tracing::info!(sale_id = %sale, total_stock = seed.total_stock, start = %seed.start, end = %seed.end, "sale created");
    } else {
        tracing::info!(sale_id = %sale, "sale exists already; left as it is");
        if let Some(stored) = store.sale_stats(sale).await? {
            warn_on_differences(sale, seed, &stored, window_given);
        }
    }
    store.index_sale(sale).await
}

/// A changed `SALE_*` never touches a live sale; say so, naming each difference.
fn warn_on_differences(sale: &SaleId, seed: &SaleSeed, stored: &SaleStats, window_given: bool) {
    let differences = [
        (
            "SALE_PRODUCT_NAME",
            seed.product_name != stored.product_name,
            stored.product_name.clone(),
        ),
        (
            "SALE_TOTAL_STOCK",
            seed.total_stock as i64 != stored.total_stock,
            stored.total_stock.to_string(),
        ),
        (
            "SALE_START",
            window_given && seed.start.timestamp_millis() != stored.start_ms,
            rfc3339_ms(stored.start_ms),
        ),
        (
            "SALE_END",
            window_given && seed.end.timestamp_millis() != stored.end_ms,
            rfc3339_ms(stored.end_ms),
        ),
    ];
    for (variable, _, stored_value) in differences.iter().filter(|(_, differs, _)| *differs) {
        tracing::warn!(
            sale_id = %sale,
            variable,
            stored = %stored_value,
            "{variable} differs from the stored sale, which is left as it is; change a live sale \
             with PATCH /api/admin/sales/{sale} (or PUT with ?force=true to replace it)"
        );
    }
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

/// What every HTTP worker shares with the rest of the instance.
struct Shared {
    verifier: Option<Verifier>,
    live: Live,
    redis_health: RedisHealth,
}

fn run(
    listener: TcpListener,
    url: RedisUrl,
    shared: Shared,
    settings: &Settings,
) -> io::Result<Server> {
    let Shared {
        verifier,
        live,
        redis_health,
    } = shared;
    let user_id_case = settings.user_id_case;
    let status_cache = StatusCache::new(STATUS_MAX_AGE, MAX_SALES);
    let user_attempts = settings.user_attempts;
    let default_sale = settings.sale_id.clone();
    let timeout = settings.redis.timeout;
    let pool_size = settings.redis.pool_size;
    let workers = worker_count(settings);
    let next_worker = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let governor = settings
        .ip_rate_limit
        .and_then(|limit| middleware::ip_rate_limit(limit, settings.client_ip_header.clone()));
    if let Some(config) = &governor {
        // The per-IP state grows with every address seen; forget the idle ones now and then.
        let limiter = config.limiter().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
    }
    let cors_origins = settings.cors.clone();
    let client_timeout = settings.client_timeout;
    let replica_wait = settings.replica_wait;
    let prometheus = crate::metrics::install().map(web::Data::new);
    let admin_token = settings.admin_token.clone().map(web::Data::new);
    let metrics_token = settings
        .metrics_token
        .clone()
        .map(|token| web::Data::new(routes::MetricsToken(token)));

    let server = HttpServer::new(move || {
        // Runs on each worker's own thread: its connections and their tasks live there too.
        let index = next_worker.fetch_add(1, Ordering::Relaxed) % workers;
        let store = Store::new(
            &url,
            timeout,
            connections_of_worker(pool_size, workers, index),
        )
        .with_replica_wait(replica_wait);
        store.connect();
        let state = web::Data::new(AppState {
            store,
            status_cache: status_cache.clone(),
            user_attempts,
            default_sale: default_sale.clone(),
            verifier: verifier.clone(),
            user_id_case,
            live: live.clone(),
            redis_health: redis_health.clone(),
            started,
        });
        let cors = middleware::cors(&cors_origins);
        let sales = web::scope("/api/sales/{saleId}").configure(routes::sale_routes);
        let alias = web::scope("/api/sale").configure(routes::sale_routes);
        let mut app = App::new().app_data(state);
        if let Some(handle) = &prometheus {
            app = app.app_data(handle.clone());
        }
        if let Some(token) = &metrics_token {
            app = app.app_data(token.clone());
        }
        // The admin API exists only with ADMIN_TOKEN set (else its routes are plain 404s).
        if let Some(token) = &admin_token {
            app = app.service(
                web::scope("/api/admin")
                    .app_data(token.clone())
                    .configure(routes::admin::routes),
            );
        }
        // Only the sale API is limited per IP: health probes must always get through. The
        // alias goes first: its prefix is static, so its requests never run the regex that
        // matches `{saleId}` (1.8 % of the service's CPU in a profile of the alias).
        let app = match &governor {
            Some(config) => app
                .service(alias.wrap(Governor::new(config)))
                .service(sales.wrap(Governor::new(config))),
            None => app.service(alias).service(sales),
        };
        app.configure(routes::health_routes)
            .configure(routes::page_routes)
            .default_service(web::to(routes::not_found))
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
