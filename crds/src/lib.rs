//! The `mailagent.dev/v1alpha1` API and the contract between the operator and the workload.
//!
//! This crate holds types only: no Kubernetes client, no I/O. The operator renders what
//! [`contract`] names; the workload reads the same names, inside a pod or on a laptop.

pub mod contract;
pub mod scope;

pub use scope::Scope;

/// The API group of every kind in this crate.
pub const GROUP: &str = "mailagent.dev";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
