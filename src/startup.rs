//! Start-up: connect Redis (or start the embedded one), load the scripts, create the configured
//! sale if it is missing, bind the listener and wire middleware and routes.

use crate::{
    config::{RedisSettings, RedisUrl, SaleSeed, Settings},
    middleware,
    routes::{self, AppState},
    status_cache::{StatusCache, STATUS_MAX_AGE},
    store::{
        local_server::{LocalRedisServer, LocalServerError},
        Store, StoreConnector, StoreError, WorkerStore,
    },
    telemetry::RequestSpan,
};
use actix_governor::Governor;
use actix_web::{
    dev::{Server, ServerHandle},
    middleware::Condition,
    web, App, HttpServer,
};
use chrono::Utc;
use std::{
    io,
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::{Duration, Instant},
};
use tracing_actix_web::TracingLogger;

/// How long in-flight requests get to finish after SIGTERM or Ctrl-C.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    LocalRedis(#[from] LocalServerError),
    #[error("cannot use Redis at {url}: {source}")]
    Redis { url: String, source: StoreError },
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
    local_redis: Option<LocalRedisServer>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
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

        // One connection is enough for start-up's few commands; the workers open their own.
        let setup = RedisSettings {
            pool_size: 1,
            ..settings.redis.clone()
        };
        let store = Store::connect(&url, &setup, &settings.sale_id)
            .await
            .map_err(redis_error)?;
        store.load_scripts().await.map_err(redis_error)?;
        warn_unless_noeviction(&store).await;

        let seed = match (&settings.sale_seed, &local_redis) {
            (Some(seed), _) => Some(seed.clone()),
            (None, Some(_)) => Some(SaleSeed::demo(Utc::now())),
            (None, None) => None,
        };
        if let Some(seed) = seed {
            let created = store
                .create_sale_if_missing(&seed)
                .await
                .map_err(redis_error)?;
            if created {
                tracing::info!(sale_id = %settings.sale_id, total_stock = seed.total_stock, start = %seed.start, end = %seed.end, "sale created");
            } else {
                tracing::info!(sale_id = %settings.sale_id, "sale exists already; left as it is");
            }
        }

        let address = SocketAddr::new(settings.host, settings.port);
        let listen_error = |source| StartupError::Listen { address, source };
        let listener = TcpListener::bind(address).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        // Start-up is done with this pool: every HTTP worker connects its own (WorkerStore).
        store.quit().await;
        let connector = StoreConnector::new(
            url.clone(),
            worker_redis_settings(&settings),
            settings.sale_id.clone(),
        );
        let server = run(listener, connector, &settings).map_err(listen_error)?;
        tracing::info!(host = %settings.host, port, redis = %url, sale_id = %settings.sale_id, "flashsale listening");
        Ok(Self {
            port,
            server,
            local_redis,
        })
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
        let result = self.server.await;
        if let Some(local) = self.local_redis {
            local.stop().await;
            tracing::info!("embedded redis-server stopped");
        }
        result
    }
}

/// Any eviction policy but `noeviction` can delete stock or buyer records (SPEC §7).
async fn warn_unless_noeviction(store: &Store) {
    match store.eviction_policy().await {
        Ok(Some(policy)) if policy == "noeviction" => {}
        Ok(Some(policy)) => tracing::warn!(
            maxmemory_policy = %policy,
            "Redis may evict keys under memory pressure, which can delete stock or buyer records; \
             set maxmemory-policy noeviction"
        ),
        Ok(None) => {
            tracing::warn!("could not read Redis maxmemory-policy; make sure it is noeviction")
        }
        Err(err) => tracing::warn!(error = %err, "could not read Redis maxmemory-policy"),
    }
}

/// HTTP worker threads: `settings.workers`, else one per available core.
fn worker_count(settings: &Settings) -> usize {
    settings
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1)
}

/// `REDIS_POOL_SIZE` is the instance's total: each worker gets its share, at least one.
fn worker_redis_settings(settings: &Settings) -> RedisSettings {
    RedisSettings {
        pool_size: settings
            .redis
            .pool_size
            .div_ceil(worker_count(settings))
            .max(1),
        ..settings.redis.clone()
    }
}

fn run(
    listener: TcpListener,
    connector: StoreConnector,
    settings: &Settings,
) -> io::Result<Server> {
    let status_cache = Arc::new(StatusCache::new(STATUS_MAX_AGE));
    let user_attempts = settings.user_attempts;
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

    let server = HttpServer::new(move || {
        // Built on each worker's own thread, so its Redis pool lives there too.
        let state = web::Data::new(AppState {
            store: WorkerStore::new(connector.clone()),
            status_cache: Arc::clone(&status_cache),
            user_attempts,
            started,
        });
        let warm_up = state.clone();
        actix_web::rt::spawn(async move {
            // Connect now rather than on this worker's first request; a failure is retried then.
            if let Err(err) = warm_up.store.get().await {
                tracing::warn!(error = %err, "worker could not connect to Redis yet");
            }
        });
        let cors = middleware::cors(&cors_origins);
        let sale_scope = web::scope("/api/sale").configure(routes::sale_routes);
        let app = App::new().app_data(state.clone());
        // Only the sale API is limited per IP: health probes must always get through.
        let app = match &governor {
            Some(config) => app.service(sale_scope.wrap(Governor::new(config))),
            None => app.service(sale_scope),
        };
        app.configure(routes::health_routes)
            .default_service(web::to(routes::not_found))
            // Condition needs a value even when off; an unused Cors costs nothing.
            .wrap(Condition::new(cors.is_some(), cors.unwrap_or_default()))
            .wrap_fn(middleware::envelope)
            .wrap(TracingLogger::<RequestSpan>::new())
    })
    .workers(worker_count(settings))
    .listen(listener)?
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs());
    Ok(server.run())
}
