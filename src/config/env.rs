//! Where `{ env: NAME }` secrets are looked up, and whether secrets are read at all.
//!
//! A trait rather than `std::env::var` so tests can hand in a map instead of mutating the
//! process environment (which is racy across test threads), and so `check --no-secrets`
//! can validate a configuration on a machine that has none of its secrets.

use std::collections::HashMap;

/// A source of environment variables.
pub trait Env {
    /// The variable's value, or `None` when unset or not valid Unicode.
    fn var(&self, name: &str) -> Option<String>;

    /// Whether `{ env }` and `{ file }` secrets are read. When not, every well-formed
    /// reference is accepted as written and stands for an empty placeholder, so the
    /// result is only good for validation, never for running.
    fn reads_secrets(&self) -> bool {
        true
    }
}

/// Reads no secret: for `pullkeeper check --no-secrets`, e.g. a GitOps pre-merge lint that
/// has no Agora credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecrets;

impl Env for NoSecrets {
    fn var(&self, _: &str) -> Option<String> {
        None
    }

    fn reads_secrets(&self) -> bool {
        false
    }
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}
