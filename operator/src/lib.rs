//! The mailagent operator.
