//! The HTTP surface: every route pullkeeper serves and how it is served.
//!
//! Everything here reads shared state or hands a signal on (to a project's inbox);
//! nothing decides. That happens in `reconcile`, below this layer, and no module below
//! imports this one.

pub mod auth;
pub mod bounded;
pub mod loglevel;
pub mod ncs;
pub mod reports;
pub mod serve;
pub mod server;
pub mod tls;
