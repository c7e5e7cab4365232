//! The mailagent workload: one backend behind three doors (REST, A2A, MCP).

pub mod a2a;
pub mod app;
pub mod audit;
pub mod auth;
pub mod capability;
pub mod http;
pub mod mailbox;
pub mod mcp;
pub mod metrics;
pub mod ratelimit;
pub mod reload;
pub mod server;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
