//! Agora Media Pull: wire model and REST client.

pub mod client;
pub mod domains;
pub mod error;
pub mod wire;

pub use client::{ApiLimiters, ClientConfig, CreateOutcome, MediaPullClient};
pub use error::{ApiError, CODE_CLASSES, ErrorClass, Op, Refusal};

#[cfg(test)]
mod fuzz_tests;
