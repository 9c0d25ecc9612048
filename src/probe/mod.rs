//! Source probes: is the stream a player pulls there at all?
//!
//! Agora's best practice (docs/agora-api.md §1.9) says that after a player failed, first
//! check that the stream address plays, and only then destroy and recreate the player.
//! Recreating players whose source is down churns UIDs, spends the create rate other
//! scenes need and hides the real problem. These probes tell "source down" from "player
//! down":
//! - `rtmp://`, `rtmps://`: TCP (and TLS) connect plus the RTMP handshake ([`rtmp`]);
//! - `http(s)://….m3u8`: the HLS playlist parses and, when live, grows ([`hls`]);
//! - other `http(s)://` (FLV, MP4, MPEG-TS, images): a ranged GET returns bytes ([`http`]).
//!
//! A probe runs from pullkeeper's network, not from Agora's: `up` proves the origin answers
//! here, `down` that it refuses or serves nothing playable here. Anything that may be our
//! own network's fault (a timeout, a name that does not resolve) is `unknown`, which
//! never holds a replacement back.

pub mod hls;
pub mod http;
pub mod monitor;
pub mod rtmp;

use std::time::Duration;

use serde::Serialize;

/// What a probe found out about a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Up,
    /// Refused, 4xx/5xx, handshake failed, nothing playable, or a stale live playlist.
    Down,
    /// Timed out, unreachable for reasons that may be ours, or a scheme we cannot probe.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Up => "up",
            Verdict::Down => "down",
            Verdict::Unknown => "unknown",
        }
    }
}

/// A verdict and why, for the log. `detail` never contains the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub detail: String,
}

impl Finding {
    pub fn up(detail: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Up,
            detail: detail.into(),
        }
    }

    pub fn down(detail: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Down,
            detail: detail.into(),
        }
    }

    pub fn unknown(detail: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Unknown,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot build the probe's HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot set up TLS for rtmps probes: {0}")]
    Tls(#[from] rustls::Error),
}

/// Probes stream URLs, each step bounded by `timeout`.
pub struct Prober {
    client: reqwest::Client,
    tls: std::sync::Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl Prober {
    pub fn new(timeout: Duration) -> Result<Prober, ProbeError> {
        use rustls_platform_verifier::ConfigVerifierExt;
        crate::crypto::install_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect to another origin is still the same source to a player.
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        let tls = std::sync::Arc::new(rustls::ClientConfig::with_platform_verifier()?);
        Ok(Prober {
            client,
            tls,
            timeout,
        })
    }

    /// Probes `url` once. Never fails: every problem is a verdict.
    pub async fn probe(&self, url: &str) -> Finding {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Finding::unknown("not a URL");
        };
        match parsed.scheme() {
            "rtmp" | "rtmps" => rtmp::probe(&parsed, &self.tls, self.timeout).await,
            "http" | "https" if hls::is_playlist(&parsed) => hls::probe(&self.client, parsed).await,
            "http" | "https" => http::probe(&self.client, parsed).await,
            other => Finding::unknown(format!("cannot probe {other}:// sources")),
        }
    }
}

/// The URL as logs may show it: no user info, query or fragment (tokens live there), and
/// for RTMP only the application, because the stream key is the rest of the path.
pub fn redact(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return "<unparsable URL>".to_string();
    };
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    if matches!(u.scheme(), "rtmp" | "rtmps") {
        let app = u
            .path_segments()
            .and_then(|mut s| s.next())
            .unwrap_or("")
            .to_string();
        u.set_path(&format!("/{app}/…"));
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_credentials_query_and_stream_keys() {
        assert_eq!(
            redact("https://user:pw@cdn.example.com/live/index.m3u8?token=abc#x"),
            "https://cdn.example.com/live/index.m3u8"
        );
        let rtmp = redact("rtmp://origin.example.com:1935/live/secret-key?auth=1");
        assert!(
            !rtmp.contains("secret-key") && !rtmp.contains("auth"),
            "{rtmp}"
        );
        assert!(
            rtmp.starts_with("rtmp://origin.example.com:1935/live/"),
            "{rtmp}"
        );
        assert_eq!(redact("::"), "<unparsable URL>");
    }

    #[tokio::test]
    async fn unsupported_schemes_are_unknown() {
        let prober = Prober::new(Duration::from_secs(1)).unwrap();
        assert_eq!(
            prober.probe("srt://127.0.0.1:9/x").await.verdict,
            Verdict::Unknown
        );
        assert_eq!(prober.probe("nonsense").await.verdict, Verdict::Unknown);
    }
}
