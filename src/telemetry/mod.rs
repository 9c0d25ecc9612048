//! Metrics and logging set-up.

pub mod leadership;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod scenes;
pub mod scrape;
pub mod text;
pub mod uids_free;

pub use logging::{LogLevel, LogLevelError, init_logging};
pub use metrics::Metrics;
