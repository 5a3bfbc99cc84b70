//! Test harness, split by concern: a real Redis ([`redis`]), app instances and their replies
//! ([`app`]), a crowd of buyers and the SPEC §1 checks ([`crowd`]), a real Redis Cluster
//! ([`cluster`]), the binary as a user runs it ([`binary`]), a webhook receiver ([`receiver`]), a TCP fault proxy ([`proxy`]), and the purchase
//! script called by hand ([`script`]).

pub mod app;
pub mod binary;
pub mod cluster;
pub mod crowd;
pub mod proxy;
pub mod receiver;
pub mod redis;
pub mod script;

pub use app::*;
pub use binary::*;
pub use crowd::*;
pub use proxy::*;
pub use receiver::*;
pub use redis::*;
pub use script::*;
