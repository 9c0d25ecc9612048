//! The scenes file: which streams to keep playing, where, and with how many backups.
//!
//! Every scene entry is deserialized on its own when the file has type errors, so one bad
//! scene does not hide the problems of the others. serde-saphyr is a streaming parser and
//! cannot resume after an error inside a mapping, so the file is first read as an outline
//! (where each entry starts), and each entry is then parsed from a copy of the file in
//! which everything outside that entry is blanked. Blanking keeps line and column numbers
//! identical to the original file.

use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::{Location, Spanned};

use super::diagnostic::{Diagnostic, Diags};
use super::env::Env;
use super::scene::{RawScene, Scene};
use super::settings::{Settings, base_dir};
use super::validate;
use super::yaml;

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
}
