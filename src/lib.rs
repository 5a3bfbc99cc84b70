//! flashsale: a stateless HTTP service that runs flash sales out of Redis.
//!
//! Every purchase is decided by one Lua script (`lua/purchase.lua`, called from
//! [`store::Store::purchase`]) that runs atomically inside Redis, so any number of instances
//! share one source of truth and the stock is never oversold.
//!
//! Layout, in the order a request walks through it:
//! - [`telemetry`]: structured logs (JSON by default) and the request span with its id.
//! - [`middleware`]: per-IP rate limit, CORS, and the envelope that makes every error JSON.
//! - [`routes`]: HTTP only, one file per resource; handlers call typed [`store::Store`]
//!   functions with the [`domain::SaleId`] of the request.
//! - [`domain`]: validated types (`SaleId`, `UserId`, `RequestToken`) and the answer
//!   vocabulary (`Code`, `PurchaseOutcome`): one name per concept from the Lua reply to the JSON.
//! - [`auth`]: optional JWT verification (a secret, a public key or a JWKS): who the buyer is.
//! - [`store`]: the only module that talks to Redis: connections, key names, scripts, the
//!   embedded `redis-server`.
//! - [`redis_health`]: why `/health` says degraded (memory, eviction policy, failing purchases).
//! - [`status_cache`]: the per-sale, bounded, 100 ms status cache.
//! - [`live`]: one watcher per watched sale, fanning its status out to event streams.
//! - [`webhooks`]: the delivery loop that POSTs every order, signed, to `ORDER_WEBHOOK_URL`.
//! - [`error`]: the one error type and the one JSON body, mapped to HTTP in one place.
//! - [`metrics`]: Prometheus counters, one function per thing counted.
//! - [`config`] and [`startup`]: the environment read once; `Application::build` wires it all.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod live;
pub mod metrics;
pub mod middleware;
pub mod redis_health;
pub mod request_id;
pub mod routes;
pub mod startup;
pub mod status_cache;
pub mod store;
pub mod telemetry;
pub mod webhooks;
