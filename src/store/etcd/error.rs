//! What can go wrong talking to etcd.

/// What can go wrong talking to etcd; each names the endpoint where one is involved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd: set-up: {0}")]
    Setup(String),
    #[error("etcd {endpoint}: unreachable: {cause}")]
    Unreachable { endpoint: String, cause: String },
    #[error("etcd {endpoint}: answered {status}: {message}")]
    Answer {
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error("etcd {endpoint}: user {user:?} not authenticated: {message}")]
    Auth {
        endpoint: String,
        user: String,
        message: String,
    },
    #[error("etcd refused: {0}")]
    Refused(String),
    #[error("etcd: malformed answer: {0}")]
    Malformed(String),
}
