//! Test support: a real local control plane (kube-apiserver + etcd), per-test namespaces, CRD
//! installation, deadline-bounded waits and an audit-log write counter. Used by the integration
//! tests in `tests/tests/`, by `make run` (through the `mailagent-control-plane` binary) and by
//! `make bench`.

pub mod audit;
mod binaries;
mod controller_manager;
mod namespace;
pub mod node;
mod pki;
mod plane;
pub mod proc;
mod process;
pub mod product;
mod wait;

pub use audit::{AuditEvent, AuditLog, AuditMark, WriteFilter};
pub use binaries::image;
pub use namespace::{TestNamespace, install_crds, shared};
pub use node::Node;
pub use plane::{ControlPlane, PlaneOptions};
pub use process::free_port;
pub use wait::{await_condition, await_event};
