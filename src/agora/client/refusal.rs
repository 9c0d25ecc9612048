//! Reading a refusal: everything Agora said about a non-2xx answer, with the ids its
//! docs ask us to log (§1.12) and how long it asks us to wait.

use std::time::Duration;

use reqwest::{Response, StatusCode};

use super::MAX_RETRY_AFTER;
use crate::agora::error::{ApiError, Op, Refusal};
use crate::agora::wire::ErrorBody;

pub(super) async fn read(op: Op, response: Response, sent_request_id: &str) -> ApiError {
    let status = response.status();
    let headers = response.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && *v != "null")
            .map(str::to_string)
    };
    // Agora echoes X-Request-ID, or X-Custom-Request-ID per the quick start (§1.3); a 401
    // carries neither, so fall back to the id we sent.
    let request_id = header("X-Request-ID")
        .or_else(|| header("X-Custom-Request-ID"))
        .or_else(|| Some(sent_request_id.to_string()));
    let resource_id = header("X-Resource-ID");
    let retry_after = header("Retry-After")
        .and_then(|v| retry_after(&v, std::time::SystemTime::now()))
        .map(|d| d.min(MAX_RETRY_AFTER));
    let body = response.bytes().await.unwrap_or_default();
    let message = serde_json::from_slice::<ErrorBody>(&body)
        .ok()
        .and_then(|b| b.message.or(b.reason))
        .unwrap_or_else(|| reason_phrase(status));
    ApiError::Status {
        op,
        refusal: Refusal {
            status: status.as_u16(),
            message,
            request_id,
            resource_id,
            retry_after,
        },
    }
}

/// A `Retry-After` value in either of its forms (RFC 9110, section 10.2.3): delay seconds, or an
/// HTTP-date, which counts from `now` (a date already past means no wait).
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn reason_phrase(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("no message")
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::retry_after;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        // RFC 9110's example date is 784111777 s after the epoch.
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:57 GMT", now),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:30 GMT", now),
            Some(Duration::ZERO),
            "a date already past means no wait"
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);
    }
}
