//! Agora Notification Center Service (webhooks).

pub mod allowlist;
pub mod dedupe;
pub mod forwarded;
pub mod inbox;
pub mod ip_refresh;
pub mod notice;
pub mod order;
pub mod receiver;
pub mod signature;

#[cfg(test)]
mod fuzz_tests;
