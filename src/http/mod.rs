//! The per-run HTTP endpoint (§11).

pub mod ca;
pub mod call;
pub mod dns;
pub mod live;
pub mod server;
pub mod sse;
pub mod upstream;
pub mod usage;
