//! The shared harness lives in the crate (`mailagent_service::testing`, feature `testing`) so the
//! bench uses the same setup.
#![allow(dead_code, unused_imports)]

pub use mailagent_service::testing::*;
