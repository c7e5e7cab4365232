//! Controllers, one folder each.
pub mod mailagent;
