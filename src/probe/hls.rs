//! HLS sources: the playlist must parse and, when live, keep growing.
//!
//! A master playlist is followed to its first variant (one media playlist is enough to
//! tell a dead origin from a live one). A media playlist with `#EXT-X-ENDLIST` is on
//! demand: parsing it is the whole check. A live one must add a segment: a packager that
//! died leaves a playlist that still parses and still lists segments, but never changes.
//! RFC 8216 (section 6.3.4) has clients re-check an unchanged playlist after half a
//! target duration; the probe does the same and calls the playlist stale when its last
//! segment number has not grown within 1.5 target durations (a live packager adds one
//! about every target duration).

use std::time::Duration;

use reqwest::{Client, Url};

use super::Finding;
use super::http::{classify, judge_status};

/// Playlists bigger than this are not playlists a player would accept either.
const MAX_PLAYLIST_BYTES: usize = 1 << 20;
/// Never re-fetch faster than this, whatever the target duration says.
const MIN_RECHECK: Duration = Duration::from_millis(250);

/// `.m3u8` (or `.m3u`) paths are HLS playlists; everything else is a plain file.
pub fn is_playlist(url: &Url) -> bool {
    let path = url.path().to_ascii_lowercase();
    path.ends_with(".m3u8") || path.ends_with(".m3u")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playlist {
    /// Variant stream URIs, as written (possibly relative).
    Master {
        variants: Vec<String>,
    },
    Media(Media),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Media {
    pub target_duration: Duration,
    pub media_sequence: u64,
    pub segments: u64,
    /// `#EXT-X-ENDLIST`: on demand (or a finished event), never grows again.
    pub ended: bool,
}

impl Media {
    /// The sequence number after the last segment: grows whenever a segment is added,
    /// whether the window slides (media sequence) or only grows (EVENT playlists).
    pub fn end(&self) -> u64 {
        self.media_sequence + self.segments
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlsError {
    #[error("not an HLS playlist: the first line is not #EXTM3U")]
    NotM3u,
    #[error("line {line}: bad {tag} value {value:?}")]
    BadValue {
        line: usize,
        tag: &'static str,
        value: String,
    },
    #[error("media playlist without #EXT-X-TARGETDURATION")]
    NoTargetDuration,
    #[error("playlist lists no segments and no variants")]
    Empty,
}

/// Parses the tags a liveness check needs and ignores the rest, as players must
/// (RFC 8216, section 4.1: unknown tags are ignored).
pub fn parse(text: &str) -> Result<Playlist, HlsError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    match lines.next() {
        Some((_, first)) if first.trim_start_matches('\u{feff}') == "#EXTM3U" => {}
        _ => return Err(HlsError::NotM3u),
    }
    let mut variants = Vec::new();
    let mut target = None;
    let mut sequence = 0;
    let mut segments = 0;
    let mut ended = false;
    let mut expect_variant = false;
    for (line, text) in lines {
        let number = |tag: &'static str, value: &str| {
            value.trim().parse::<u64>().map_err(|_| HlsError::BadValue {
                line,
                tag,
                value: value.to_string(),
            })
        };
        if let Some(v) = text.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = Some(number("#EXT-X-TARGETDURATION", v)?);
        } else if let Some(v) = text.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = number("#EXT-X-MEDIA-SEQUENCE", v)?;
        } else if text == "#EXT-X-ENDLIST" {
            ended = true;
        } else if text.starts_with("#EXT-X-STREAM-INF") {
            expect_variant = true;
        } else if text.starts_with('#') {
            continue;
        } else if expect_variant {
            variants.push(text.to_string());
            expect_variant = false;
        } else {
            segments += 1;
        }
    }
    if !variants.is_empty() {
        return Ok(Playlist::Master { variants });
    }
    let target = target.ok_or(HlsError::NoTargetDuration)?;
    if segments == 0 {
        return Err(HlsError::Empty);
    }
    Ok(Playlist::Media(Media {
        target_duration: Duration::from_secs(target.max(1)),
        media_sequence: sequence,
        segments,
        ended,
    }))
}

/// What two looks at a live playlist, `waited` apart, say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Advanced,
    Stale,
    /// Not grown yet, but a packager may still be within its target duration.
    Wait,
}

/// How long a live playlist may stay unchanged before it counts as dead.
pub fn stale_after(target: Duration) -> Duration {
    target * 3 / 2
}

/// Pure: has the playlist that ended at `first` grown by `latest`, after `waited`?
pub fn freshness(first: &Media, latest: &Media, waited: Duration) -> Freshness {
    if latest.end() > first.end() || latest.media_sequence > first.media_sequence {
        Freshness::Advanced
    } else if waited >= stale_after(first.target_duration) {
        Freshness::Stale
    } else {
        Freshness::Wait
    }
}

pub async fn probe(client: &Client, url: Url) -> Finding {
    let (url, first) = match media_playlist(client, url).await {
        Ok(found) => found,
        Err(finding) => return finding,
    };
    if first.ended {
        return Finding::up("on-demand playlist");
    }
    let recheck = (first.target_duration / 2).max(MIN_RECHECK);
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(recheck).await;
        let latest = match fetch(client, &url).await {
            Ok(Playlist::Media(m)) => m,
            Ok(Playlist::Master { .. }) => {
                return Finding::down("the media playlist turned into a master playlist");
            }
            Err(finding) => return finding,
        };
        match freshness(&first, &latest, started.elapsed()) {
            Freshness::Advanced => return Finding::up("live playlist advances"),
            Freshness::Stale => {
                return Finding::down(format!(
                    "stale live playlist: media sequence {} unchanged for {} ms (target duration {} s)",
                    latest.media_sequence,
                    started.elapsed().as_millis(),
                    first.target_duration.as_secs()
                ));
            }
            Freshness::Wait => {}
        }
    }
}

/// The media playlist at `url`, or behind the first variant of the master at `url`.
async fn media_playlist(client: &Client, url: Url) -> Result<(Url, Media), Finding> {
    match fetch(client, &url).await? {
        Playlist::Media(m) => Ok((url, m)),
        Playlist::Master { variants } => {
            let variant = url
                .join(&variants[0])
                .map_err(|_| Finding::down("master playlist names an invalid variant URI"))?;
            match fetch(client, &variant).await? {
                Playlist::Media(m) => Ok((variant, m)),
                Playlist::Master { .. } => Err(Finding::down(
                    "a master playlist's variant is another master",
                )),
            }
        }
    }
}

async fn fetch(client: &Client, url: &Url) -> Result<Playlist, Finding> {
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| classify(&e))?;
    if let Some(finding) = judge_status(response.status()) {
        return Err(finding);
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_PLAYLIST_BYTES as u64)
    {
        return Err(Finding::down("playlist larger than 1 MiB"));
    }
    let body = response.bytes().await.map_err(|e| classify(&e))?;
    if body.len() > MAX_PLAYLIST_BYTES {
        return Err(Finding::down("playlist larger than 1 MiB"));
    }
    let text = String::from_utf8_lossy(&body);
    parse(&text).map_err(|e| Finding::down(format!("unplayable playlist: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n#EXTINF:2.0,\nseg41.ts\n#EXTINF:2.0,\nseg42.ts\n";

    fn media(seq: u64, segments: u64) -> Media {
        Media {
            target_duration: Duration::from_secs(2),
            media_sequence: seq,
            segments,
            ended: false,
        }
    }

    #[test]
    fn parses_live_media_playlists() {
        assert_eq!(parse(LIVE), Ok(Playlist::Media(media(41, 2))));
        let vod = format!("{LIVE}#EXT-X-ENDLIST\n");
        assert!(matches!(parse(&vod), Ok(Playlist::Media(m)) if m.ended));
    }

    #[test]
    fn parses_master_playlists_to_their_variants() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nlow/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2000000\nhigh/index.m3u8\n";
        assert_eq!(
            parse(master),
            Ok(Playlist::Master {
                variants: vec!["low/index.m3u8".into(), "high/index.m3u8".into()]
            })
        );
    }

    #[test]
    fn rejects_what_no_player_would_play() {
        assert_eq!(parse("<html>"), Err(HlsError::NotM3u));
        assert_eq!(parse(""), Err(HlsError::NotM3u));
        assert_eq!(
            parse("#EXTM3U\n#EXTINF:2,\na.ts\n"),
            Err(HlsError::NoTargetDuration)
        );
        assert_eq!(
            parse("#EXTM3U\n#EXT-X-TARGETDURATION:2\n"),
            Err(HlsError::Empty)
        );
        assert!(matches!(
            parse("#EXTM3U\n#EXT-X-TARGETDURATION:two\n"),
            Err(HlsError::BadValue { line: 2, .. })
        ));
    }

    #[test]
    fn a_live_playlist_must_grow_within_one_and_a_half_target_durations() {
        let first = media(41, 3);
        let ms = Duration::from_millis;
        assert_eq!(
            freshness(&first, &media(42, 3), ms(1000)),
            Freshness::Advanced
        );
        // An EVENT playlist grows without sliding.
        assert_eq!(
            freshness(&first, &media(41, 4), ms(1000)),
            Freshness::Advanced
        );
        assert_eq!(freshness(&first, &media(41, 3), ms(2999)), Freshness::Wait);
        assert_eq!(freshness(&first, &media(41, 3), ms(3000)), Freshness::Stale);
    }

    #[test]
    fn only_m3u8_paths_are_playlists() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(is_playlist(&u("https://a.example/x/INDEX.M3U8?t=1")));
        assert!(!is_playlist(&u("https://a.example/x/live.flv")));
    }
}
