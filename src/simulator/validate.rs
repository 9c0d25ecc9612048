//! Stateless request validation (§1.4, §1.6, §1.7).
//!
//! Each failure names the offending parameter, as Agora's 400 messages do (§1.9), so a
//! client bug shows up as a precise error rather than a generic "bad request".

use serde_json::Value;

use super::error::ApiError;
use crate::agora::wire::{CreatePlayer, CreateRequest, UpdatePlayer, UpdateRequest, limits};

const UID_MAX: u64 = u32::MAX as u64;
const STREAM_SCHEMES: [&str; 4] = ["rtmp", "rtmps", "http", "https"];

/// Whether a Create body carries a `name`; decides which QPS window applies (§1.10).
/// Looked at before validation, so an unparsable body counts as "without name".
pub fn create_has_name(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("player")?.get("name").cloned())
        .is_some_and(|n| !n.is_null())
}

/// Parses and checks a Create body; returns the player with `idleTimeout` clamped.
pub fn create(body: &[u8]) -> Result<CreatePlayer, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::BadRequest("Request body is not valid JSON.".into()))?;
    let Some(player) = value.get("player").and_then(Value::as_object) else {
        return Err(ApiError::param("player"));
    };
    // Required strings must be present and non-empty ("do not send null or \"\"", §1.4).
    for field in ["streamUrl", "channelName"] {
        if player
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::param(field));
        }
    }
    let req: CreateRequest = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::param(path.strip_prefix("player.").unwrap_or(&path))
    })?;
    let mut p = req.player;
    check_stream_url(&p.stream_url)?;
    check_channel_like(
        &p.channel_name,
        limits::CHANNEL_NAME_MAX_BYTES,
        "channelName",
    )?;
    match (p.uid, &p.account) {
        (Some(_), Some(_)) | (None, None) => return Err(ApiError::param("uid")),
        (Some(uid), None) if uid > UID_MAX => return Err(ApiError::param("uid")),
        (None, Some(account)) if account.is_empty() => return Err(ApiError::param("account")),
        (None, Some(account)) => check_channel_like(account, limits::ACCOUNT_MAX_BYTES, "account")?,
        (Some(_), None) => {}
    }
    if let Some(name) = &p.name
        && (name.is_empty()
            || name.len() > limits::PLAYER_NAME_MAX_BYTES
            || limits::bad_name_char(name).is_some())
    {
        return Err(ApiError::param("name"));
    }
    // Out-of-range values are clamped, not rejected (§1.4).
    p.idle_timeout = Some(
        p.idle_timeout
            .unwrap_or(300)
            .clamp(limits::IDLE_TIMEOUT_MIN, limits::IDLE_TIMEOUT_MAX),
    );
    Ok(p)
}

fn check_stream_url(url: &str) -> Result<(), ApiError> {
    let ok = url.len() <= limits::STREAM_URL_MAX_BYTES
        && url.split_once("://").is_some_and(|(scheme, rest)| {
            STREAM_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) && !rest.is_empty()
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::param("streamUrl"))
    }
}

fn check_channel_like(s: &str, max: usize, param: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > max || limits::bad_channel_char(s).is_some() {
        Err(ApiError::param(param))
    } else {
        Ok(())
    }
}

/// Parses the required `sequence` query parameter of Update (≥ 0, §1.7).
pub fn sequence(raw: Option<&str>) -> Result<u64, ApiError> {
    raw.and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| ApiError::param("sequence"))
}

/// Parses and checks an Update body (§1.7).
pub fn update(body: &[u8]) -> Result<UpdatePlayer, ApiError> {
    let req: UpdateRequest = serde_path_to_error::deserialize(
        &mut serde_json::Deserializer::from_slice(body),
    )
    .map_err(|e| {
        let path = e.path().to_string();
        ApiError::param(path.strip_prefix("player.").unwrap_or(&path))
    })?;
    let p = req.player;
    if let Some(url) = &p.stream_url {
        check_stream_url(url)?;
    }
    if p.audio_options
        .as_ref()
        .and_then(|a| a.volume)
        .is_some_and(|v| v > 200)
    {
        return Err(ApiError::param("audioOptions.volume"));
    }
    Ok(p)
}

/// Parses List's `pageSize` (1..=500, default 200, §1.6).
pub fn page_size(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw else {
        return Ok(limits::PAGE_SIZE_DEFAULT);
    };
    raw.parse::<usize>()
        .ok()
        .filter(|n| (1..=limits::PAGE_SIZE_MAX).contains(n))
        .ok_or_else(|| ApiError::param("pageSize"))
}

/// Parses List's `filter`; `channelName eq {name}` is the only supported form (§1.6).
pub fn filter(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    raw.strip_prefix("channelName eq ")
        .filter(|name| !name.is_empty())
        .map(|name| Some(name.to_string()))
        .ok_or_else(|| ApiError::param("filter"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(e: ApiError) -> String {
        e.to_string()
    }

    #[test]
    fn create_names_the_bad_parameter() {
        let bad = |b: &str| msg(create(b.as_bytes()).expect_err(b));
        assert!(bad(r#"{"player":{"channelName":"c","uid":1}}"#).contains("streamUrl"));
        assert!(
            bad(r#"{"player":{"streamUrl":"ftp://x","channelName":"c","uid":1}}"#)
                .contains("streamUrl")
        );
        assert!(
            bad(r#"{"player":{"streamUrl":"rtmp://x","channelName":"c","uid":-1}}"#)
                .contains("uid")
        );
        assert!(
            bad(r#"{"player":{"streamUrl":"rtmp://x","channelName":"c","uid":4294967296}}"#)
                .contains("uid")
        );
        assert!(
            bad(r#"{"player":{"streamUrl":"rtmp://x","channelName":"c","account":"a/b"}}"#)
                .contains("account")
        );
        assert!(
            bad(r#"{"player":{"streamUrl":"rtmp://x","channelName":"c","uid":1,"name":"a b"}}"#)
                .contains("name")
        );
    }

    #[test]
    fn idle_timeout_is_clamped() {
        let p = create(
            br#"{"player":{"streamUrl":"rtmp://x","channelName":"c","uid":1,"idleTimeout":1}}"#,
        )
        .expect("valid");
        assert_eq!(p.idle_timeout, Some(5));
        let p = create(br#"{"player":{"streamUrl":"rtmp://x","channelName":"c","uid":1}}"#)
            .expect("valid");
        assert_eq!(p.idle_timeout, Some(300));
    }

    #[test]
    fn list_parameters() {
        assert_eq!(page_size(None).ok(), Some(200));
        assert!(page_size(Some("0")).is_err() && page_size(Some("501")).is_err());
        assert_eq!(
            filter(Some("channelName eq a b")).ok(),
            Some(Some("a b".into()))
        );
        assert!(filter(Some("name eq x")).is_err());
    }
}
