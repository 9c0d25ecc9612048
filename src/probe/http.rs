//! Progressive HTTP sources (FLV, MP4, MPEG-TS, JPEG/PNG slates): a ranged GET.
//!
//! `Range: bytes=0-1023` asks for the first KiB only; a server that ignores ranges answers
//! 200 with the whole (possibly endless, for live FLV) body, so only the first chunk is
//! read. Bytes prove the URL serves something; they do not prove it decodes.

use std::io::ErrorKind;

use reqwest::header::RANGE;
use reqwest::{Client, StatusCode, Url};

use super::Finding;

pub const PROBE_RANGE: &str = "bytes=0-1023";

pub async fn probe(client: &Client, url: Url) -> Finding {
    let response = match client.get(url).header(RANGE, PROBE_RANGE).send().await {
        Ok(r) => r,
        Err(e) => return classify(&e),
    };
    let status = response.status();
    if let Some(finding) = judge_status(status) {
        return finding;
    }
    let mut response = response;
    match response.chunk().await {
        Ok(Some(bytes)) if !bytes.is_empty() => Finding::up(format!("HTTP {}", status.as_u16())),
        Ok(_) => Finding::down(format!("HTTP {} with no bytes", status.as_u16())),
        Err(e) => classify(&e),
    }
}

/// `Some` when the status alone decides: an error status is a dead source.
pub(super) fn judge_status(status: StatusCode) -> Option<Finding> {
    (status.is_client_error() || status.is_server_error())
        .then(|| Finding::down(format!("HTTP {}", status.as_u16())))
}

/// Turns a transport error into a verdict. Only what the origin itself did is `down`
/// (refused or reset the connection); a timeout or a name that does not resolve may be
/// our own network's fault and is `unknown`. The detail names the cause, never the URL.
pub(super) fn classify(e: &reqwest::Error) -> Finding {
    if e.is_timeout() {
        return Finding::unknown("timed out");
    }
    let mut cause: &dyn std::error::Error = e;
    let mut io_kind = None;
    while let Some(next) = cause.source() {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        cause = next;
    }
    let detail = cause.to_string();
    match io_kind {
        Some(ErrorKind::ConnectionRefused) => Finding::down("connection refused"),
        Some(
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof,
        ) => Finding::down(format!("connection dropped: {detail}")),
        Some(ErrorKind::TimedOut) => Finding::unknown("timed out"),
        _ if e.is_connect() => Finding::unknown(format!("cannot connect: {detail}")),
        _ => Finding::down(format!("request failed: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Verdict;

    #[test]
    fn error_statuses_are_down_and_success_reads_on() {
        assert_eq!(
            judge_status(StatusCode::NOT_FOUND).map(|o| o.verdict),
            Some(Verdict::Down)
        );
        assert_eq!(
            judge_status(StatusCode::SERVICE_UNAVAILABLE).map(|o| o.detail),
            Some("HTTP 503".to_string())
        );
        assert!(judge_status(StatusCode::PARTIAL_CONTENT).is_none());
        assert!(judge_status(StatusCode::OK).is_none());
    }
}
