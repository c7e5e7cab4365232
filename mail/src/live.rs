//! A number the workload may be told to change while it runs: the operator re-renders an agent's
//! Gmail quota share and scan delay as its quota group grows or shrinks, and a pod must follow
//! without a restart. One writer (the reload loop), any number of readers, no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A shared, live `u32`. Clones see the same value.
#[derive(Clone)]
pub struct Live(Arc<AtomicU32>);

impl Live {
    /// A live value starting at `value`.
    pub fn new(value: u32) -> Self {
        Self(Arc::new(AtomicU32::new(value)))
    }

    /// The value now.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Changes the value for every holder; returns whether it changed.
    pub fn set(&self, value: u32) -> bool {
        self.0.swap(value, Ordering::Relaxed) != value
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// Equal when the values are (settings compare by what they say, not by which cell holds it).
impl PartialEq for Live {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}
