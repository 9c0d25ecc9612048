//! Agora Notification Center Service (webhooks).

pub mod inbox;
pub mod notice;
pub mod signature;
