//! Test harness, split by concern: a real Redis ([`redis`]), app instances and their replies
//! ([`app`]), and the binary as a user runs it ([`binary`]).

pub mod app;
pub mod binary;
pub mod redis;

pub use app::*;
pub use binary::*;
pub use redis::*;
