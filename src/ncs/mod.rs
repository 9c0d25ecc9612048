//! Agora Notification Center Service (webhooks).

pub mod dedupe;
pub mod inbox;
pub mod notice;
pub mod order;
pub mod receiver;
pub mod signature;

#[cfg(test)]
mod fuzz_tests;
