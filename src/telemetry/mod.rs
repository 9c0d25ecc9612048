//! Metrics and logging set-up.

pub mod leadership;
pub mod logging;
pub mod metrics;
pub mod scenes;

pub use logging::{LogLevel, LogLevelError, init_logging};
pub use metrics::Metrics;
