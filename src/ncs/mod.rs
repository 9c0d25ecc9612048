//! Agora Notification Center Service (webhooks).

pub mod notice;
pub mod signature;
