//! The NCS webhook's HTTP side: the route NCS delivers to, the address guard in front of
//! it, and the address list as the admin API shows it.
//!
//! What a notice means (signature, decoding, dedupe, ordering, the hand-off to the
//! controller) is decided by [`crate::ncs`]; these modules receive and answer.

pub mod forwarded;
pub mod guard;
pub mod ips;
pub mod route;

#[cfg(test)]
mod fuzz_tests;
