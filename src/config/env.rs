//! Where `{ env: NAME }` secrets are looked up.
//!
//! A trait rather than `std::env::var` so tests can hand in a map instead of mutating the
//! process environment (which is racy across test threads).

use std::collections::HashMap;

/// A source of environment variables.
pub trait Env {
    /// The variable's value, or `None` when unset or not valid Unicode.
    fn var(&self, name: &str) -> Option<String>;
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
