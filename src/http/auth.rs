//! The admin API's bearer token: one middleware in front of every `/v1/` route.
//!
//! Anything that reads pullkeeper's view of the players, or acts on it, goes through
//! [`require_admin`]; `/healthz`, `/readyz`, `/metrics` and the NCS webhook (which has its
//! own signature) stay outside it. Without a configured token the admin API is closed,
//! not open: an unset setting must never expose it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};

use super::answer;

/// Puts every route of `routes` behind `Authorization: Bearer <token>`. Routes added
/// to the returned router afterwards are not covered, so merge admin routes first.
pub fn require_admin(routes: Router, token: Option<SecretString>) -> Router {
    routes.route_layer(middleware::from_fn_with_state(
        Arc::new(token),
        check_bearer,
    ))
}

async fn check_bearer(
    State(token): State<Arc<Option<SecretString>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = token.as_ref() else {
        return answer::message(
            StatusCode::FORBIDDEN,
            "the admin API is off: set server.admin_token",
        );
    };
    let presented = bearer(request.headers()).unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), expected.expose_secret().as_bytes()) {
        let mut response = answer::message(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <server.admin_token>)",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer …` header; the scheme is case-insensitive
/// (RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
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
    fn bearer_scheme_is_case_insensitive_and_required() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            bearer(&h).map(str::to_string)
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("abc"), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
