//! Agora Notification Center Service (webhooks): what a notice means and what is done
//! with it, short of HTTP. The webhook's route and address guard are in `http::ncs`.

pub mod allowlist;
pub mod decode;
pub mod dedupe;
pub mod inbox;
pub mod intake;
pub mod ip_refresh;
pub mod notice;
pub mod order;
pub mod signature;

#[cfg(test)]
pub(crate) mod fuzz_tests;
