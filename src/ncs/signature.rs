//! NCS request signatures (docs/agora-api.md §2.4).
//!
//! NCS signs the raw body with the product's secret twice: HMAC-SHA1 in `Agora-Signature`
//! and HMAC-SHA256 in `Agora-Signature-V2`, both lowercase hex. Verification goes through
//! `Mac::verify_slice`, which compares in constant time, so a forged signature learns
//! nothing from how long the rejection took.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

pub const HEADER_SHA1: &str = "Agora-Signature";
pub const HEADER_SHA256: &str = "Agora-Signature-V2";

/// Which of the two NCS signatures was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
}

/// Lowercase-hex HMAC-SHA1 of `body`.
pub fn sign_sha1(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Lowercase-hex HMAC-SHA256 of `body`.
pub fn sign_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks `signature_hex` against `body` in constant time. Bad hex or a wrong length is
/// simply "not valid": callers answer 401 either way and must not say which.
pub fn verify(algorithm: Algorithm, secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Ok(sig) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    match algorithm {
        Algorithm::Sha1 => {
            let mut mac =
                <Hmac<Sha1> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        }
        Algorithm::Sha256 => {
            let mut mac =
                <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official test vector (§2.4, from OLDNCS).
    const BODY: &str = r#"{"eventMs":1560408533119,"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f","notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}"#;
    const SHA1: &str = "033c62f40f687675f17f0f41f91a40c71c0f134c";
    const SHA256: &str = "6d3320c60b11101395b7fc8f9068748808a0aa1bfa064438e39d1bc2c7d74d99";

    #[test]
    fn official_test_vector_signs() {
        assert_eq!(sign_sha1(b"secret", BODY.as_bytes()), SHA1);
        assert_eq!(sign_sha256(b"secret", BODY.as_bytes()), SHA256);
    }

    #[test]
    fn official_test_vector_verifies() {
        assert!(verify(Algorithm::Sha1, b"secret", BODY.as_bytes(), SHA1));
        assert!(verify(
            Algorithm::Sha256,
            b"secret",
            BODY.as_bytes(),
            SHA256
        ));
    }

    #[test]
    fn wrong_secret_body_or_encoding_fails() {
        assert!(!verify(
            Algorithm::Sha256,
            b"secreT",
            BODY.as_bytes(),
            SHA256
        ));
        assert!(!verify(Algorithm::Sha256, b"secret", b"{}", SHA256));
        assert!(!verify(Algorithm::Sha256, b"secret", BODY.as_bytes(), SHA1));
        assert!(!verify(Algorithm::Sha1, b"secret", BODY.as_bytes(), "zz"));
        assert!(!verify(Algorithm::Sha1, b"secret", BODY.as_bytes(), ""));
    }
}
