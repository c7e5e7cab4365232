//! The mailagent workload: one backend behind three doors (REST, A2A, MCP).

pub mod a2a;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod busy_clients;
pub mod capability;
pub mod error;
pub mod http;
pub mod jsonrpc;
pub mod mailbox;
pub mod mcp;
pub mod metrics;
pub mod ratelimit;
pub mod reload;
pub mod security;
pub mod server;
pub mod settings;
pub mod tasks;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
