//! Limits pullkeeper imposes on itself so Agora never has to: per-API call rates.

pub mod window;

pub use window::{RateLimiter, WindowSpec};
