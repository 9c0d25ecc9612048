//! Logging set-up, with a level that can be changed while the process runs.
//!
//! The filter sits in a `reload` layer so an operator can turn on debug logs for one
//! module during an incident (`PUT /v1/log-level`) without a restart, which would drop
//! exactly the state being debugged.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

/// The filter used when `RUST_LOG` is unset or empty.
pub const DEFAULT_DIRECTIVE: &str = "info";

/// What SIGUSR1 switches to: pullkeeper's own debug logs, without the HTTP stack's, which
/// would drown them.
pub const DEBUG_DIRECTIVE: &str = "pullkeeper=debug,info";

#[derive(Debug, thiserror::Error)]
pub enum LogLevelError {
    #[error("expected an EnvFilter directive such as `pullkeeper=debug,info`")]
    Empty,
    #[error("invalid log directive: {0}")]
    Parse(#[from] tracing_subscriber::filter::ParseError),
    #[error("the logging subscriber is gone: {0}")]
    Reload(#[from] reload::Error),
}

/// `RUST_LOG` was set to something that is not a filter. Starting anyway at `info` would
/// hide that the operator's debug (or quiet) setting never took effect.
#[derive(Debug, thiserror::Error)]
pub enum InvalidRustLog {
    #[error("RUST_LOG is not valid UTF-8 (unset it for the default `{default}`)", default = DEFAULT_DIRECTIVE)]
    NotUtf8,
    #[error(
        "RUST_LOG={value:?} is not a valid log filter: {source} (unset it for the default \
         `{default}`)",
        default = DEFAULT_DIRECTIVE
    )]
    Filter {
        value: String,
        source: LogLevelError,
    },
}

/// A handle on the process's log filter.
#[derive(Clone)]
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    directives: Arc<Mutex<Directives>>,
}

struct Directives {
    /// As the operator wrote it: `EnvFilter`'s own rendering reorders it.
    current: String,
    /// What was in force before SIGUSR1 turned debug on; `None` while it is off.
    before_debug: Option<String>,
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
            directives: Arc::new(Mutex::new(Directives {
                current: directive.trim().to_string(),
                before_debug: None,
            })),
        };
        Ok((layer, level))
    }

    /// Replaces the filter; an invalid directive changes nothing. An explicit level ends a
    /// SIGUSR1 debug toggle.
    pub fn set(&self, directive: &str) -> Result<(), LogLevelError> {
        let mut directives = self.lock();
        self.apply(&mut directives, directive)?;
        directives.before_debug = None;
        Ok(())
    }

    /// Switches to [`DEBUG_DIRECTIVE`], or back to what was in force before; returns the
    /// directive now in force.
    pub fn toggle_debug(&self) -> Result<String, LogLevelError> {
        let mut directives = self.lock();
        match directives.before_debug.clone() {
            Some(before) => {
                self.apply(&mut directives, &before)?;
                directives.before_debug = None;
            }
            None => {
                let before = directives.current.clone();
                self.apply(&mut directives, DEBUG_DIRECTIVE)?;
                directives.before_debug = Some(before);
            }
        }
        Ok(directives.current.clone())
    }

    /// The directive in force.
    pub fn current(&self) -> String {
        self.lock().current.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Directives> {
        self.directives.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn apply(&self, directives: &mut Directives, directive: &str) -> Result<(), LogLevelError> {
        self.handle.reload(parse(directive)?)?;
        directives.current = directive.trim().to_string();
        tracing::info!(directive = %directives.current, "log level changed");
        Ok(())
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

/// Logs to stderr, filtered by `RUST_LOG` (default `info`; set but empty counts as
/// unset), as text or JSON lines. Returns the handle that changes the filter at run time,
/// or why `RUST_LOG` cannot be used.
pub fn init_logging(json: bool) -> Result<LogLevel, InvalidRustLog> {
    let (filter, level) = match std::env::var_os("RUST_LOG") {
        Some(value) if !value.is_empty() => {
            let text = value.to_str().ok_or(InvalidRustLog::NotUtf8)?;
            LogLevel::reloadable(text).map_err(|source| InvalidRustLog::Filter {
                value: text.to_string(),
                source,
            })?
        }
        _ => LogLevel::reloadable(DEFAULT_DIRECTIVE).expect("the default directive parses"),
    };
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let registry = tracing_subscriber::registry().with(filter);
    // A second call (tests start several apps in one process) keeps the first subscriber.
    let _ = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_ansi(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
            .try_init()
    };
    Ok(level)
}

/// Colour escape codes only for a person at a terminal: a file or a log collector would
/// store them as noise. `NO_COLOR` set to anything but the empty string turns them off
/// (no-color.org).
fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn debug_toggle_returns_to_the_level_before_and_an_explicit_level_ends_it() {
        let (layer, level) = LogLevel::reloadable("warn").unwrap();
        // The handle only works while its layer is part of a live subscriber.
        let _dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        assert_eq!(level.toggle_debug().unwrap(), DEBUG_DIRECTIVE);
        assert_eq!(level.toggle_debug().unwrap(), "warn");
        assert_eq!(level.toggle_debug().unwrap(), DEBUG_DIRECTIVE);
        level.set("info").unwrap();
        assert_eq!(level.toggle_debug().unwrap(), DEBUG_DIRECTIVE);
        assert_eq!(level.toggle_debug().unwrap(), "info");
        assert!(matches!(level.set("x=loud"), Err(LogLevelError::Parse(_))));
        assert!(matches!(level.set(" "), Err(LogLevelError::Empty)));
        assert_eq!(level.current(), "info");
    }

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(
            colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(true, Some(OsStr::new("false"))), "any value counts");
        assert!(!colour(false, None));
    }
}
