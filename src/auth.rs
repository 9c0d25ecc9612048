//! The admin bearer token check shared by every endpoint that needs `server.admin_token`.

use axum::http::{HeaderMap, header};
use secrecy::{ExposeSecret, SecretString};

/// Whether the request carries `Authorization: Bearer <token>`.
pub fn bearer_matches(headers: &HeaderMap, token: &SecretString) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(presented.as_bytes(), token.expose_secret().as_bytes())
}

/// Equality whose time depends only on the lengths, so a guess learns nothing from how
/// fast it was refused.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality() {
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokeN"));
        assert!(!constant_time_eq(b"token", b"token2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn bearer_header() {
        let token = SecretString::from("s3cret");
        let mut headers = HeaderMap::new();
        assert!(!bearer_matches(&headers, &token));
        headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(bearer_matches(&headers, &token));
        headers.insert(header::AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert!(!bearer_matches(&headers, &token));
        headers.insert(header::AUTHORIZATION, "Bearer s3cre".parse().unwrap());
        assert!(!bearer_matches(&headers, &token));
    }
}
