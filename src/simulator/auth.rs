//! Basic authentication of every REST call, Media Pull and NCS IP query alike.

use axum::http::HeaderMap;
use base64::Engine;

use super::Inner;
use super::error::ApiError;

/// `Authorization: Basic base64(customerId:customerSecret)` (§3).
pub(crate) fn authenticate(inner: &Inner, headers: &HeaderMap) -> Result<(), ApiError> {
    let decoded = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or(ApiError::Unauthorized)?;
    let (id, secret) = decoded.split_once(':').ok_or(ApiError::Unauthorized)?;
    let known = inner
        .config
        .credentials
        .iter()
        .any(|(cid, csecret)| cid == id && csecret == secret);
    if known {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}
