//! The scenes file: which streams to keep playing, where, and with how many backups.
//!
//! Every scene entry is deserialized on its own when the file has type errors, so one bad
//! scene does not hide the problems of the others. serde-saphyr is a streaming parser and
//! cannot resume after an error inside a mapping, so the file is first read as an outline
//! (where each entry starts), and each entry is then parsed from a copy of the file in
//! which everything outside that entry is blanked. Blanking keeps line and column numbers
//! identical to the original file.

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::{Location, Spanned};

use super::diagnostic::{Diagnostic, Diags};
use super::env::Env;
use super::secret::SecretRef;
use super::settings::{AppWebhook, RawAppWebhook, Settings, base_dir};
use super::validate;
use super::yaml;
use crate::agora::model::Region;
use crate::model::SLATE_SLOT;

/// One stream pullkeeper keeps alive: a main player plus `backups` standby players.
#[derive(Debug, Clone)]
pub struct Scene {
    /// `[a-z0-9-]`, 1..=32 bytes, so player names `{prefix}_{scene}_{slot}_{gen}` stay
    /// within Agora's 64 bytes (8 + 1 + 32 + 1 + 2 + 1 + 10 digits of generation = 55).
    pub name: String,
    pub project: String,
    pub channel: String,
    /// What the master pulls: the primary source.
    pub stream_url: String,
    /// What backups 1, 2, … pull, in order; backups beyond the list pull the primary.
    pub backup_stream_urls: Vec<String>,
    /// An image or looping file a slot plays while every source is down (§1.4 accepts
    /// JPEG/PNG URLs), so viewers see a holding card instead of a dead channel.
    pub slate_url: Option<String>,
    pub region: Region,
    /// Standby players in addition to the main one, 0..=10.
    pub backups: u32,
    /// Higher is admitted first when the project's player quota is short.
    pub priority: i32,
    /// Seconds, 5..=600. Agora would clamp out-of-range values; pullkeeper refuses them so
    /// the configured value is the one in force.
    pub idle_timeout: u32,
    /// RTC token, when the App Certificate is enabled (§1.4).
    pub token: Option<SecretString>,
    /// Audio volume, 0..=200 (§1.7); default 100, Agora's own. Create cannot set it, so a
    /// new player gets it by Update, as does a reload that changes it.
    pub volume: u32,
    /// UIDs this scene's players use; they must be unique in the channel.
    pub uids: UidRange,
    /// What the apps do once the master is healthy again after a failover.
    pub failback: Failback,
    /// How long a recovered master must run before a revertive scene returns to it,
    /// 0s..=10m (0 returns at once); default 30s.
    pub hold_down: Duration,
    /// Consecutive 404/5xx answers or List absences before a player counts as failed,
    /// 1..=10 (YAML `strikes`); default 3.
    pub strike_threshold: u32,
    /// This scene's own app webhook; `None` uses [`Settings::app_webhook`].
    pub app_webhook: Option<AppWebhook>,
}

impl Scene {
    /// The URL the player of `slot` pulls.
    pub fn slot_url(&self, slot: u32) -> &str {
        if slot == SLATE_SLOT {
            return self.slate_url.as_deref().unwrap_or(&self.stream_url);
        }
        slot.checked_sub(1)
            .and_then(|i| self.backup_stream_urls.get(i as usize))
            .unwrap_or(&self.stream_url)
    }

    /// The bounded name of a slot's source in metrics and status: `primary`, `backup1`…
    /// (by position in `backup_stream_urls`), or `slate`.
    pub fn source_label(&self, slot: u32) -> String {
        if slot == SLATE_SLOT {
            return "slate".to_string();
        }
        match slot.checked_sub(1) {
            Some(i) if (i as usize) < self.backup_stream_urls.len() => format!("backup{}", i + 1),
            _ => "primary".to_string(),
        }
    }

    /// Every stream source (not the slate), labelled, primary first.
    pub fn sources(&self) -> Vec<(String, &str)> {
        std::iter::once(("primary".to_string(), self.stream_url.as_str()))
            .chain(
                self.backup_stream_urls
                    .iter()
                    .enumerate()
                    .map(|(i, u)| (format!("backup{}", i + 1), u.as_str())),
            )
            .collect()
    }

    /// The webhook on-air changes of this scene go to: its own, else the global one.
    pub fn effective_app_webhook<'a>(&'a self, settings: &'a Settings) -> Option<&'a AppWebhook> {
        self.app_webhook.as_ref().or(settings.app_webhook.as_ref())
    }
}

/// After a master failure the apps watch a backup; this says whether they go back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failback {
    /// Return to the master once it has run for `hold_down` (YAML `revertive`, the default).
    #[default]
    Revertive,
    /// Stay on the backup while it is healthy (YAML `non-revertive`).
    NonRevertive,
}

/// Inclusive range of RTC UIDs; `1 <= start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    pub start: u32,
    pub end: u32,
}

impl UidRange {
    pub fn overlaps(&self, other: &UidRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

pub(crate) type Text = Spanned<String>;

/// A scene as written. Numbers are wide (`i64`) so that out-of-range values get a range
/// message instead of a bare type error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScene {
    pub name: Text,
    pub project: Text,
    pub channel: Text,
    pub stream_url: Text,
    #[serde(default)]
    pub backup_stream_urls: Option<Spanned<Vec<Text>>>,
    #[serde(default)]
    pub slate_url: Option<Text>,
    pub region: Text,
    #[serde(default)]
    pub backups: Option<Spanned<i64>>,
    #[serde(default)]
    pub priority: Option<Spanned<i32>>,
    #[serde(default)]
    pub idle_timeout: Option<Spanned<i64>>,
    #[serde(default)]
    pub token: Option<Spanned<SecretRef>>,
    #[serde(default)]
    pub volume: Option<Spanned<i64>>,
    pub uids: Spanned<RawUids>,
    #[serde(default)]
    pub failback: Option<Failback>,
    #[serde(default)]
    pub hold_down: Option<Text>,
    #[serde(default)]
    pub strikes: Option<Spanned<i64>>,
    #[serde(default)]
    pub app_webhook: Option<RawAppWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUids {
    pub start: Spanned<i64>,
    pub end: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenesFile {
    scenes: Vec<RawScene>,
}

/// Where the entries are, without looking inside them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Outline {
    /// `Option` so that `scenes:` with nothing after it reads as "no scenes".
    scenes: Spanned<Option<Vec<Spanned<IgnoredAny>>>>,
}

/// Parses and checks a scenes file against `settings`, looking up `{ env: NAME }` tokens in
/// `env`. Problems are appended to `out`; the returned scenes are only meaningful when no
/// problem was recorded.
pub(crate) fn parse_into(
    file: &Path,
    text: &str,
    settings: &Settings,
    env: &dyn Env,
    out: &mut Vec<Diagnostic>,
) -> Vec<Scene> {
    let first_own = out.len();
    if let Err(d) = yaml::check_size(file, text.len()) {
        out.push(d);
        return Vec::new();
    }
    let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    if text.lines().all(blank) {
        let message = "no scenes: the file is empty; expected `scenes:` with at least one scene";
        out.push(Diagnostic::file_level(file, message));
        return Vec::new();
    }
    let outline: Outline = match yaml::parse(file, text, "") {
        Ok(o) => o,
        Err(d) => {
            out.push(d);
            return Vec::new();
        }
    };
    let entries = outline.scenes.value.as_deref().unwrap_or_default();
    if entries.is_empty() {
        let message = "no scenes: at least one scene is required";
        out.push(Diagnostic::at(
            file,
            outline.scenes.referenced,
            "scenes",
            message,
        ));
        return Vec::new();
    }
    let raws = match yaml::parse::<ScenesFile>(file, text, "") {
        Ok(f) => f.scenes.into_iter().enumerate().collect(),
        Err(first) => parse_entries(file, text, outline.scenes.referenced, entries, first, out),
    };
    let scenes = validate::scenes(
        &raws,
        settings,
        &base_dir(file),
        env,
        &mut Diags { file, out },
    );
    // Parse and rule problems were found in two passes; list them in file order.
    out[first_own..].sort_by_key(|d| (d.line, d.column));
    scenes
}

/// Parses each entry on its own; falls back to the whole-file error when the layout is not
/// a block sequence (e.g. `scenes: [{...}, {...}]`) or the error lies outside the entries.
fn parse_entries(
    file: &Path,
    text: &str,
    seq: Location,
    entries: &[Spanned<IgnoredAny>],
    first: Diagnostic,
    out: &mut Vec<Diagnostic>,
) -> Vec<(usize, RawScene)> {
    let Some(docs) = entry_documents(text, seq, entries) else {
        out.push(first);
        return Vec::new();
    };
    let before = out.len();
    let mut raws = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        match yaml::parse::<RawScene>(file, doc, &format!("scenes[{i}]")) {
            Ok(raw) => raws.push((i, raw)),
            Err(d) => out.push(d),
        }
    }
    if out.len() == before {
        out.push(first);
    }
    raws
}

/// For each entry, the file text with everything outside the entry blanked out.
fn entry_documents(
    text: &str,
    seq: Location,
    entries: &[Spanned<IgnoredAny>],
) -> Option<Vec<String>> {
    let seq_start = usize::try_from(seq.span().byte_offset()?).ok()?;
    if text.get(seq_start..)?.starts_with('[') {
        return None;
    }
    let starts = entries
        .iter()
        .map(|e| usize::try_from(e.referenced.span().byte_offset()?).ok())
        .collect::<Option<Vec<usize>>>()?;
    let mut docs = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let end = match starts.get(k + 1) {
            Some(&next) => dash_before(text, next)?,
            None => text.len(),
        };
        let body = text.get(start..end)?;
        let blank: String = text
            .get(..start)?
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        docs.push(blank + body);
    }
    Some(docs)
}

/// The offset of the `-` that opens the block sequence entry starting at `pos`.
fn dash_before(text: &str, pos: usize) -> Option<usize> {
    let before = text.get(..pos)?.trim_end();
    before.ends_with('-').then(|| before.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_blanked_in_place() {
        let text = "scenes:\n  - name: a\n    x: 1\n  -\n    name: b\n";
        let outline: Outline = yaml::parse(Path::new("f"), text, "").unwrap();
        let entries = outline.scenes.value.as_deref().unwrap();
        let docs = entry_documents(text, outline.scenes.referenced, entries).unwrap();
        assert_eq!(docs[0], "       \n    name: a\n    x: 1\n  ");
        assert_eq!(
            docs[1],
            format!(
                "{}\n{}\n{}\n{}\n    name: b\n",
                " ".repeat(7),
                " ".repeat(11),
                " ".repeat(8),
                " ".repeat(3)
            )
        );
    }

    #[test]
    fn flow_sequences_fall_back_to_whole_file_errors() {
        let text = "scenes: [{name: a}, {name: b}]\n";
        let outline: Outline = yaml::parse(Path::new("f"), text, "").unwrap();
        let entries = outline.scenes.value.as_deref().unwrap();
        assert!(entry_documents(text, outline.scenes.referenced, entries).is_none());
    }

    #[test]
    fn uid_ranges() {
        let r = UidRange { start: 10, end: 19 };
        assert!(r.overlaps(&UidRange { start: 19, end: 30 }));
        assert!(!r.overlaps(&UidRange { start: 20, end: 30 }));
    }
}
