//! Start-up: connect Redis (or start the embedded one), bring its data to this build's layout,
//! create the configured sale if it is missing, start the background tasks, bind the listener,
//! and give every HTTP worker its own Redis connections on its own thread.
//!
//! [`Application`] here; the Redis steps in `redis`, the HTTP server in `server`, the signals
//! in `signals`.

mod redis;
mod server;
mod signals;

pub use server::SHUTDOWN_GRACE;

use crate::{
    auth::{AuthError, Verifier},
    config::Settings,
    domain::SaleSeed,
    live::Live,
    middleware,
    redis_health::RedisHealth,
    store::{
        local_server::{LocalRedisServer, LocalServerError},
        RedisUrl, Store, StoreError,
    },
};
use chrono::Utc;
use signals::ShutdownSignals;
use std::{
    io,
    net::{SocketAddr, TcpListener},
    num::NonZeroUsize,
    time::Duration,
};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    LocalRedis(#[from] LocalServerError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot reach Redis at {url} (tried for {waited_secs} s): {source}{}",
        cause.as_deref().map(|cause| format!("; the connection failed with: {cause}")).unwrap_or_default())]
    RedisUnreachable {
        url: String,
        waited_secs: u64,
        source: StoreError,
        /// The connection's own error (TLS, refused, AUTH), when it had one.
        cause: Option<String>,
    },
    #[error("cannot use Redis at {url}: {source}")]
    Redis { url: String, source: StoreError },
    /// Sales with a waiting room exist and this instance cannot sign or check admissions.
    #[error(
        "WAITING_ROOM_SECRET: must be set: sale {sales} has a waiting room, and every instance \
         needs the same secret to sign and check its admissions"
    )]
    RoomWithoutSecret { sales: String },
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
    server: actix_web::dev::Server,
    live: Live,
    /// Background tasks that run for the whole life of the service, stopped after it.
    background: Vec<JoinHandle<()>>,
    /// `METRICS_PORT`'s listener, stopped with the main one.
    metrics_server: Option<actix_web::dev::Server>,
    signals: ShutdownSignals,
    local_redis: Option<LocalRedisServer>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // First of all, so a signal at any point of start-up or later stops the service cleanly.
        let signals = ShutdownSignals::listen();
        let (url, local_redis) = redis_url(&settings).await?;
        let redis_error = |source| StartupError::Redis {
            url: url.to_string(),
            source,
        };

        // The control connection: start-up's commands, then the background checks. The HTTP
        // workers open their own connections (REDIS_POOL_SIZE) on their own threads.
        let control = Store::new(&url, settings.redis.timeout, NonZeroUsize::MIN)
            .with_key_check(settings.redis.script_key_check);
        redis::wait_for_redis(&control, &url, settings.redis.startup_timeout).await?;
        let seed = match (&settings.sale_seed, &local_redis) {
            (Some(seed), _) => Some(seed.clone()),
            (None, Some(_)) => SaleSeed::demo(Utc::now()).map(|demo| SaleSeed {
                checkout: settings.sale_checkout,
                // Checked at start-up against the latest possible start; a room that cannot
                // open before the demo's start (now) is left off.
                waiting_room: settings.sale_room.room(demo.window.start()).unwrap_or(None),
                ..demo
            }),
            (None, None) => None,
        };
        if let Some(seed) = seed {
            redis::seed_sale(
                &control,
                &settings.sale_id,
                &seed,
                settings.sale_window_given,
            )
            .await
            .map_err(redis_error)?;
        }
        // After the seed, so a first start records the layout with its first sale, and a
        // restart finds Redis as it left it.
        redis::migrate(&control, &settings.sale_id)
            .await
            .map_err(redis_error)?;
        if settings.room_secret.is_none() {
            let rooms = control.sales_with_rooms_on().await.map_err(redis_error)?;
            if !rooms.is_empty() {
                return Err(StartupError::RoomWithoutSecret {
                    sales: rooms.join(", "),
                });
            }
        }

        let redis_health = RedisHealth::default();
        let mut background = vec![
            // Shares the control connection: with no sale with holds, a round is one SMEMBERS.
            crate::checkout::spawn_sweeper(control.clone()),
            redis_health.spawn_check(control, settings.redis.health_check),
        ];
        if let Some(webhook) = &settings.webhook {
            // The loop gets connections of its own: deliveries never wait behind purchases.
            let store = Store::new(&url, settings.redis.timeout, NonZeroUsize::MIN)
                .with_key_check(settings.redis.script_key_check);
            store.connect();
            background.push(
                crate::webhooks::spawn(store, webhook.clone())
                    .map_err(|err| StartupError::Webhooks(err.to_string()))?,
            );
        }
        let verifier = match &settings.auth {
            Some(auth) => {
                let verifier = Verifier::new(auth).await?;
                background.extend(verifier.spawn_refresh());
                Some(verifier)
            }
            None => None,
        };
        let ip_limit = settings
            .ip_rate_limit
            .and_then(|limit| middleware::ip_rate_limit(limit, settings.client_ip.clone()));
        if let Some(config) = &ip_limit {
            background.push(forget_idle_clients(config));
        }

        let address = SocketAddr::new(settings.host, settings.port);
        let listen_error = |source| StartupError::Listen { address, source };
        let listener = listen(address).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        let live = Live::new(
            settings.sse_max_streams,
            settings.sse_max_streams_per_client,
        );
        let shared = server::Shared {
            verifier,
            live: live.clone(),
            redis_health,
            ip_limit,
        };
        let server =
            server::serve(listener, url.clone(), shared, &settings).map_err(listen_error)?;
        let metrics_server = match settings.metrics_port {
            Some(metrics_port) => {
                let address = SocketAddr::new(settings.host, metrics_port);
                let listen_error = |source| StartupError::Listen { address, source };
                let listener = listen(address).map_err(listen_error)?;
                Some(server::serve_metrics(listener).map_err(listen_error)?)
            }
            None => None,
        };
        tracing::info!(host = %settings.host, port, metrics_port = settings.metrics_port, redis = %url, sale_id = %settings.sale_id, "flashsale listening");
        Ok(Self {
            port,
            server,
            metrics_server,
            live,
            background,
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
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM, SIGINT or [`actix_web::dev::ServerHandle::stop`], then stops the
    /// background tasks and the embedded `redis-server`, if any (the workers' Redis connections
    /// close with their threads).
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
        let metrics = self.metrics_server.map(|server| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let result = self.server.await;
        if let Some(metrics) = metrics {
            metrics.stop(true).await;
        }
        self.live.close_all();
        // Webhook deliveries in flight stop here; their orders stay pending and another
        // instance (or this one, restarted) claims them after ORDER_WEBHOOK_CLAIM_IDLE_MS.
        for task in self.background {
            task.abort();
        }
        if let Some(local) = self.local_redis {
            local.stop().await;
            tracing::info!("embedded redis-server stopped");
        }
        result
    }
}

/// `REDIS_URL`, or the URL of an embedded `redis-server` started for local mode.
async fn redis_url(
    settings: &Settings,
) -> Result<(RedisUrl, Option<LocalRedisServer>), StartupError> {
    if let Some(url) = &settings.redis.url {
        return Ok((url.clone(), None));
    }
    let server = LocalRedisServer::start().await?;
    tracing::warn!(
        redis_port = server.port(),
        redis_pid = server.pid(),
        "LOCAL MODE: REDIS_URL is unset, so flashsale started its own redis-server \
         (loopback only, persistence off, stopped on exit). Set REDIS_URL in production."
    );
    let url = RedisUrl::parse(&server.url()).map_err(|reason| LocalServerError::NotReady {
        port: server.port(),
        reason,
    })?;
    Ok((url, Some(server)))
}

/// The per-IP state grows with every address seen; forget the idle ones now and then.
fn forget_idle_clients(config: &middleware::IpGovernorConfig) -> JoinHandle<()> {
    let limiter = config.limiter().clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    })
}

/// The listener on `address`. An unspecified address (`0.0.0.0` or `::`, the default) means
/// every address, IPv4 and IPv6 both: one dual-stack socket on `[::]`, so a platform whose
/// private network is IPv6 (Fly.io's, for a Prometheus scrape) reaches the service as well as
/// its IPv4 proxy does. Where the kernel has no IPv6, IPv4 alone.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    if !address.ip().is_unspecified() {
        return TcpListener::bind(address);
    }
    let any = SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), address.port());
    match dual_stack(any) {
        Ok(listener) => Ok(listener),
        Err(_) => TcpListener::bind(SocketAddr::new(
            std::net::Ipv4Addr::UNSPECIFIED.into(),
            address.port(),
        )),
    }
}

fn dual_stack(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, None)?;
    socket.set_only_v6(false)?;
    // As std's bind does, so a restart can take the port while old connections linger.
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    // actix-web's own default backlog for the listeners it binds itself.
    socket.listen(2048)?;
    Ok(socket.into())
}
