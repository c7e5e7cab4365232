//! The mail and calendar domain behind every door: providers, triage, unsubscribe discovery and
//! execution, digest, availability and durable state. No HTTP server here; `mailagent-service`
//! adapts these capabilities to REST, A2A and MCP.

pub mod api;
mod assistant;
pub mod calendar;
pub mod candidates;
pub mod digest;
pub mod dkim;
pub mod endpoint;
pub mod guard;
#[doc(hidden)]
pub mod header_invariants;
pub mod intervals;
pub mod layout;
pub mod list_unsubscribe;
pub mod live;
pub mod mailto;
pub mod message;
pub mod outgoing;
pub mod provider;
pub mod records;
pub mod schedule;
pub mod state;
pub mod triage;
pub mod unsubscribe;

pub use api::{Assistant, DomainError};
pub use assistant::{AssistantOptions, maildir_assistant, maildir_assistant_with, provider_assistant};
pub use schedule::{run_digest_schedule, run_scan_schedule};
