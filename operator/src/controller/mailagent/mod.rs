//! The MailAgent controller.
pub mod build;
