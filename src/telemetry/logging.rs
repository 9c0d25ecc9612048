//! Logging set-up, with a level that can be changed while the process runs.
//!
//! The filter sits in a `reload` layer so an operator can turn on debug logs for one
//! module during an incident (`PUT /v1/log-level`) without a restart, which would drop
//! exactly the state being debugged.

use std::sync::{Arc, Mutex};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

/// The filter used when `RUST_LOG` is unset or invalid.
pub const DEFAULT_DIRECTIVE: &str = "info";

#[derive(Debug, thiserror::Error)]
pub enum LogLevelError {
    #[error("expected an EnvFilter directive such as `pullkeeper=debug,info`")]
    Empty,
    #[error("invalid log directive: {0}")]
    Parse(#[from] tracing_subscriber::filter::ParseError),
    #[error("the logging subscriber is gone: {0}")]
    Reload(#[from] reload::Error),
}

/// A handle on the process's log filter.
#[derive(Clone)]
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    /// The directive as the operator wrote it: `EnvFilter`'s own rendering reorders it.
    current: Arc<Mutex<String>>,
}

impl LogLevel {
    /// A reloadable filter layer starting at `directive`, and its handle. The layer must be
    /// the first one on a [`Registry`].
    pub fn reloadable(
        directive: &str,
    ) -> Result<(reload::Layer<EnvFilter, Registry>, LogLevel), LogLevelError> {
        let filter = parse(directive)?;
        let (layer, handle) = reload::Layer::new(filter);
        let level = LogLevel {
            handle,
            current: Arc::new(Mutex::new(directive.trim().to_string())),
        };
        Ok((layer, level))
    }

    /// Replaces the filter; an invalid directive changes nothing.
    pub fn set(&self, directive: &str) -> Result<(), LogLevelError> {
        let filter = parse(directive)?;
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        self.handle.reload(filter)?;
        *current = directive.trim().to_string();
        tracing::info!(directive = %current, "log level changed");
        Ok(())
    }

    /// The directive in force.
    pub fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn parse(directive: &str) -> Result<EnvFilter, LogLevelError> {
    let directive = directive.trim();
    if directive.is_empty() {
        // An empty filter would silently turn every log off.
        return Err(LogLevelError::Empty);
    }
    Ok(EnvFilter::builder().parse(directive)?)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or JSON lines. Returns
/// the handle that changes the filter at run time.
pub fn init_logging(json: bool) -> LogLevel {
    let from_env = std::env::var("RUST_LOG").ok();
    let (filter, level) = match from_env.as_deref().map(LogLevel::reloadable) {
        Some(Ok(ok)) => ok,
        _ => LogLevel::reloadable(DEFAULT_DIRECTIVE).expect("the default directive parses"),
    };
    let registry = tracing_subscriber::registry().with(filter);
    // A second call (tests start several apps in one process) keeps the first subscriber.
    let _ = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    level
}
