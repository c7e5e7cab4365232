//! The mailagent operator: reconciles `MailAgent` (and, later, `AuthPolicy`) into hardened workloads.

pub mod controller;
pub mod labels;
