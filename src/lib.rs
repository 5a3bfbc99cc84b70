//! flashsale: a stateless HTTP service that runs a flash sale out of Redis.
//!
//! Every purchase is decided by one Lua script (`lua/purchase.lua`) that runs atomically inside
//! Redis, so any number of instances share one source of truth and the stock is never oversold.
//!
//! Layout:
//! - [`config`]: environment variables (SPEC §4), read with envy and validated at start-up.
//! - [`startup`]: [`startup::Application`] binds the listener, connects Redis and wires the routes.
//! - [`store`]: the only module that talks to Redis: pool, key names, scripts, embedded server.
//! - [`routes`]: one file per endpoint; handlers call typed [`store::Store`] functions.
//! - [`domain`]: validated newtypes (`UserId`, `SaleId`, `RequestToken`) and sale types.
//! - [`error`]: the one error type, mapped to HTTP in one place.
//! - [`middleware`]: per-IP rate limit, CORS and the JSON error envelope with request ids.
//! - [`telemetry`]: structured logs (JSON by default).
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod error;
pub mod middleware;
pub mod routes;
pub mod startup;
pub mod status_cache;
pub mod store;
pub mod telemetry;
