//! Stream sources on loopback: what simulated players pull and what pullkeeper probes.
//!
//! Any stream URL whose path contains `/_src/{name}` refers to source `name` (other URLs
//! are outside the simulator and always play). Each source can be `up`, `down` or
//! `frozen`, and serves:
//! - `GET /_src/{name}/index.m3u8`: a live HLS media playlist that adds a segment every
//!   `hls_target_duration` (frozen: stops adding); `master.m3u8` points at it;
//!   `vod.m3u8` is a finished (on-demand) playlist;
//! - `GET /_src/{name}/{anything else}`: a 4 KiB file honouring `Range: bytes=a-b`;
//! - an RTMP handshake responder on its own port (`rtmp_url`), which breaks the handshake
//!   off while the source is not up.
//!
//! A down source answers HTTP 404. Like Agora's, a player whose source is not up fails:
//! at once (status `failed`, NCS event 4) when the source goes down, or when its
//! `connecting` phase ends while the source is down. With `source_loss: linger` a running
//! player instead keeps running until its `idleTimeout` ends (see `SourceLoss`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::{Inner, lock};
use crate::probe::rtmp::{HANDSHAKE_SIZE, VERSION};

/// Size of the file every non-playlist path serves.
const FILE_BYTES: usize = 4096;
/// Segments listed in a live playlist window.
const WINDOW: u64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceMode {
    #[default]
    Up,
    Down,
    /// Serves, but its live playlist no longer grows: a dead packager behind a live CDN.
    Frozen,
}

/// One source's mode and, when frozen, the media sequence it froze at.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SourceState {
    pub mode: SourceMode,
    pub frozen_at: u64,
}

/// The source a stream URL refers to, if it is one of the simulator's.
pub(crate) fn source_name(url: &str) -> Option<&str> {
    let rest = &url[url.find("/_src/")? + "/_src/".len()..];
    let name = rest.split(['/', '?']).next()?;
    (!name.is_empty()).then_some(name)
}

impl Inner {
    /// The live playlist's media sequence at `now`, unless frozen.
    fn hls_sequence(&self, now: Instant) -> u64 {
        let target_ms = self.config.hls_target_duration.as_millis().max(1000) as u64;
        self.clock.elapsed_ms(now) / target_ms
    }

    pub(crate) fn set_source(&self, name: &str, mode: SourceMode) {
        self.with_state(|st, now| {
            let frozen_at = self.hls_sequence(now);
            let events = st.set_source(&self.clock, name, SourceState { mode, frozen_at }, now);
            ((), events)
        });
        // An idle timeout may now be due before anything the ticker sleeps for.
        self.wake.notify_one();
    }

    fn source_state(&self, name: &str) -> (SourceState, u64) {
        self.with_state(|st, now| {
            let state = st.sources.get(name).copied().unwrap_or_default();
            ((state, self.hls_sequence(now)), Vec::new())
        })
    }

    /// Starts (once) the RTMP responder of `name`; returns its `rtmp://` URL.
    pub(crate) async fn rtmp_url(self: &Arc<Self>, name: &str) -> std::io::Result<String> {
        let existing = lock(&self.rtmp).get(name).copied();
        let addr = match existing {
            Some(addr) => addr,
            None => {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                lock(&self.rtmp).insert(name.to_string(), addr);
                tokio::spawn(accept_rtmp(self.clone(), name.to_string(), listener));
                addr
            }
        };
        Ok(format!("rtmp://{addr}/_src/{name}"))
    }
}

async fn accept_rtmp(inner: Arc<Inner>, name: String, listener: TcpListener) {
    while let Ok((socket, _)) = listener.accept().await {
        let up = inner.source_state(&name).0.mode == SourceMode::Up;
        if up {
            tokio::spawn(respond_rtmp(socket));
        }
        // A source that is not up drops the connection before S0: a broken handshake.
    }
}

/// The server side of the simple handshake: S0, S1, S2 = C1 echoed, then read C2.
async fn respond_rtmp(mut socket: TcpStream) -> std::io::Result<()> {
    let mut c0c1 = vec![0u8; 1 + HANDSHAKE_SIZE];
    socket.read_exact(&mut c0c1).await?;
    let mut reply = Vec::with_capacity(1 + 2 * HANDSHAKE_SIZE);
    reply.push(VERSION);
    let mut s1 = vec![0u8; HANDSHAKE_SIZE];
    rand::fill(&mut s1[8..]);
    reply.extend_from_slice(&s1);
    reply.extend_from_slice(&c0c1[1..]);
    socket.write_all(&reply).await?;
    let mut c2 = vec![0u8; HANDSHAKE_SIZE];
    socket.read_exact(&mut c2).await?;
    Ok(())
}

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/_src/{name}/{file}", get(serve))
        .with_state(inner)
}

async fn serve(
    State(inner): State<Arc<Inner>>,
    Path((name, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (state, live_sequence) = inner.source_state(&name);
    let sequence = match state.mode {
        SourceMode::Down => return (StatusCode::NOT_FOUND, "source down").into_response(),
        SourceMode::Frozen => state.frozen_at,
        SourceMode::Up => live_sequence,
    };
    let target = inner.config.hls_target_duration.as_secs().max(1);
    let playlist = match file.as_str() {
        "master.m3u8" => Some(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=1280x720\nindex.m3u8\n"
                .to_string(),
        ),
        "index.m3u8" => Some(media_playlist(target, sequence, false)),
        "vod.m3u8" => Some(media_playlist(target, 0, true)),
        _ => None,
    };
    match playlist {
        Some(text) => (
            [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
            text,
        )
            .into_response(),
        None => file_bytes(&headers),
    }
}

fn media_playlist(target: u64, sequence: u64, ended: bool) -> String {
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{sequence}\n"
    );
    for n in sequence..sequence + WINDOW {
        text.push_str(&format!("#EXTINF:{target}.0,\nseg{n}.ts\n"));
    }
    if ended {
        text.push_str("#EXT-X-ENDLIST\n");
    }
    text
}

/// The 4 KiB file, or the part `Range: bytes=a-b` asks for (206).
fn file_bytes(headers: &HeaderMap) -> Response {
    let body: Vec<u8> = (0..FILE_BYTES).map(|i| (i % 251) as u8).collect();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let start: usize = a.parse().ok()?;
            let end: usize = b.parse::<usize>().ok()?.min(FILE_BYTES - 1);
            (start <= end).then_some((start, end))
        });
    match range {
        Some((start, end)) => {
            let mut resp =
                (StatusCode::PARTIAL_CONTENT, body[start..=end].to_vec()).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{FILE_BYTES}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            resp
        }
        None => body.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_urls_name_their_source() {
        assert_eq!(
            source_name("http://127.0.0.1:9/_src/news/index.m3u8"),
            Some("news")
        );
        assert_eq!(source_name("rtmp://127.0.0.1:9/_src/news"), Some("news"));
        assert_eq!(source_name("rtmp://127.0.0.1:9/_src/a?k=1"), Some("a"));
        assert_eq!(source_name("rtmp://origin.example.com/live/news"), None);
        assert_eq!(source_name("http://h/_src/"), None);
    }

    #[test]
    fn playlists_slide_one_segment_per_sequence() {
        let text = media_playlist(2, 7, false);
        let parsed = crate::probe::hls::parse(&text).unwrap();
        assert_eq!(
            parsed,
            crate::probe::hls::Playlist::Media(crate::probe::hls::Media {
                target_duration: std::time::Duration::from_secs(2),
                media_sequence: 7,
                segments: WINDOW,
                ended: false,
            })
        );
    }
}
