//! What a REST operation answers when it succeeds; a refusal is an
//! [`ApiError`](super::error::ApiError).

/// A successful answer.
pub(crate) struct Reply {
    pub body: Option<serde_json::Value>,
    pub resource_id: Option<String>,
}
