//! flashsale: a stateless HTTP service that runs flash sales out of Redis.
//!
//! Every purchase is decided by one Lua script (`lua/purchase.lua`, called from
//! [`store::Store::purchase`]) that runs atomically inside Redis, so any number of instances
//! share one source of truth and the stock is never oversold.
//!
//! Layout, in the order a request walks through it; every import points down this list
//! (a module uses only those below it, and only handlers touch `routes::AppState`):
//! - [`startup`]: `Application::build` wires it all (each worker's state, the route table, the
//!   background tasks).
//! - [`telemetry`] and [`request_id`]: structured logs (JSON by default), the request span and
//!   its id.
//! - [`middleware`]: per-IP rate limit, CORS, and the envelope that makes every error JSON.
//! - [`client_ip`]: the address a request comes from (the peer, or the entry a trusted proxy
//!   wrote), as every per-address limit counts it.
//! - [`routes`]: HTTP only: the route table, the extractors (sale, `Idempotency-Key`, bearer
//!   roles), one file per resource, and the OpenAPI document from the handlers' annotations.
//! - [`webhooks`]: the delivery loop that POSTs every order, signed, to `ORDER_WEBHOOK_URL`.
//! - [`checkout`]: the sweeper that releases expired holds, and Stripe's signed events.
//! - [`queue`]: the waiting room: which sales have one, signed admissions and tickets, the
//!   shared read of drawn places.
//! - [`live`], [`status_cache`], [`redis_health`]: event streams (one watcher per sale), the
//!   ≤ 100 ms status cache, and why `/health` says degraded.
//! - [`config`]: the environment read once and checked per subsystem, into the settings the
//!   modules above take.
//! - [`auth`]: optional JWT verification (a secret, a public key or a JWKS): who the buyer is.
//! - [`error`]: the one error type and the one JSON body, mapped to HTTP in one place.
//! - [`store`]: the only module that talks to Redis: the pool, one type per script call,
//!   typed records (nothing above it sees a Redis value), key names, the layout migration, the
//!   embedded `redis-server`.
//! - [`domain`]: validated types (`SaleId`, `UserId`, `RequestToken`, `ProductName`,
//!   `SaleWindow`) and the answer vocabulary (`Code`, `PurchaseOutcome`): one name per concept
//!   from the Lua reply to the JSON.
//! - [`metrics`]: Prometheus counters, one function per thing counted.
#![forbid(unsafe_code)]

pub mod auth;
pub mod checkout;
pub mod client_ip;
pub mod config;
pub mod domain;
pub mod error;
pub mod live;
pub mod metrics;
pub mod middleware;
pub mod queue;
pub mod redis_health;
pub mod request_id;
pub mod routes;
pub mod startup;
pub mod status_cache;
pub mod store;
pub mod telemetry;
pub mod webhooks;
