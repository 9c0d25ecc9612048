//! Agora Media Pull: wire model and REST client.

pub mod model;
