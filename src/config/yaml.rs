//! Bounded, located YAML parsing shared by the settings and scenes files.
//!
//! serde-saphyr gives line and column; serde_path_to_error gives the field path; this module
//! joins the two into one [`Diagnostic`] (reference rust-stack §1.4). Input is bounded before
//! parsing: files over 1 MiB are refused, and serde-saphyr's budgets (on by default) stop
//! alias bombs.

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_saphyr::{DuplicateKeyPolicy, Options};

use super::diagnostic::Diagnostic;

/// Largest configuration file accepted. A scenes file for 1,000 projects of 25 scenes
/// (the scale benchmark) is about 5 MiB; anything much larger is a mistake (or an attack)
/// and parsing it would only waste memory.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Most YAML nodes (maps, sequences, scalars) in one file: about 25 per scene, so room for
/// 100,000 scenes. The parser's default (250,000) stops at about 10,000.
const MAX_NODES: usize = 2_500_000;

/// Parser options: duplicate keys are errors and the default budgets (events, nodes, alias
/// expansion, nesting depth) stay on, so a "billion laughs" document fails fast.
pub(crate) fn options() -> Options {
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_NODES;
    budget.max_events = 2 * MAX_NODES;
    options.budget = Some(budget);
    options.with_snippet = false;
    options
}

/// Reads a configuration file, refusing oversized and non-UTF-8 content.
pub(crate) fn read_text(file: &Path) -> Result<String, Diagnostic> {
    let opened = std::fs::File::open(file)
        .map_err(|e| Diagnostic::file_level(file, format!("cannot read file: {e}")))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit so a file that grows while being read is still caught.
    let limit = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
    opened
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| Diagnostic::file_level(file, format!("cannot read file: {e}")))?;
    check_size(file, bytes.len())?;
    String::from_utf8(bytes).map_err(|e| not_utf8(file, e.as_bytes(), e.utf8_error()))
}

/// Refuses text over [`MAX_FILE_BYTES`]; also applied to text handed in by hot reload.
pub(crate) fn check_size(file: &Path, len: usize) -> Result<(), Diagnostic> {
    if len > MAX_FILE_BYTES {
        return Err(Diagnostic::file_level(
            file,
            format!(
                "file is larger than the limit of {MAX_FILE_BYTES} bytes ({} MiB)",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    Ok(())
}

fn not_utf8(file: &Path, bytes: &[u8], err: std::str::Utf8Error) -> Diagnostic {
    let valid = &bytes[..err.valid_up_to()];
    let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
    let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = 1 + String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count();
    Diagnostic {
        file: file.to_path_buf(),
        line: Some(line),
        column: Some(column),
        path: String::new(),
        message: format!(
            "file is not valid UTF-8 (invalid byte at offset {}); save it as UTF-8",
            err.valid_up_to()
        ),
    }
}

/// Deserializes `text` into `T`, returning the first problem with its location and field
/// path. `prefix` is prepended to the path (e.g. `scenes[2]` when parsing one entry).
pub(crate) fn parse<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    prefix: &str,
) -> Result<T, Diagnostic> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let location = e.location().unwrap_or(serde_saphyr::Location::UNKNOWN);
        Diagnostic::at(file, location, join_path(prefix, &path), bare_message(&e))
    })
}

/// serde-saphyr appends " at line L, column C" to its messages; the diagnostic carries the
/// location separately, so the suffix is dropped, as is the duplicate-key hint aimed at
/// programmers ("set DuplicateKeyPolicy in Options").
fn bare_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let end = [" at line ", ", set DuplicateKeyPolicy"]
        .iter()
        .filter_map(|cut| text.find(cut))
        .min()
        .unwrap_or(text.len());
    let message = &text[..end];
    // "invalid u32" names a Rust type, not what to write.
    let integer = message
        .strip_prefix("invalid ")
        .is_some_and(|t| t.len() > 1 && t[1..].bytes().all(|b| b.is_ascii_digit()));
    if integer {
        format!("{message}: expected a whole number")
    } else {
        message.to_string()
    }
}

/// Cleans a serde_path_to_error path: `Spanned<T>` adds a `.value` step, the root is `.`, and
/// an unknown position is `?`; none of those mean anything to someone editing the file.
pub(crate) fn join_path(prefix: &str, raw: &str) -> String {
    let mut p = raw.replace(".value", "").replace(".?", "");
    if let Some(rest) = p.strip_prefix("value") {
        p = rest.trim_start_matches('.').to_string();
    }
    if p == "." || p == "?" {
        p.clear();
    }
    match (prefix.is_empty(), p.is_empty()) {
        (true, _) => p,
        (false, true) => prefix.to_string(),
        (false, false) if p.starts_with('[') => format!("{prefix}{p}"),
        (false, false) => format!("{prefix}.{p}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        port: serde_saphyr::Spanned<u16>,
    }

    #[test]
    fn valid_text_parses() {
        let doc = parse::<Doc>(Path::new("f.yaml"), "port: 80\n", "").unwrap();
        assert_eq!(doc.port.value, 80);
    }

    #[test]
    fn type_error_has_line_column_and_path() {
        let d = parse::<Doc>(Path::new("f.yaml"), "\nport: nope\n", "").unwrap_err();
        assert_eq!((d.line, d.column), (Some(2), Some(7)));
        assert_eq!(d.path, "port");
        assert_eq!(d.message, "invalid u16: expected a whole number");
        assert!(!d.message.contains("at line"), "{}", d.message);
    }

    #[test]
    fn prefix_is_joined() {
        assert_eq!(join_path("scenes[1]", "uids.zz"), "scenes[1].uids.zz");
        assert_eq!(join_path("scenes[1]", "."), "scenes[1]");
        assert_eq!(join_path("", "scenes.value[0].value"), "scenes[0]");
        assert_eq!(join_path("a", "[2]"), "a[2]");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let d = parse::<Doc>(Path::new("f"), "port: 1\nport: 2\n", "").unwrap_err();
        assert_eq!(d.line, Some(2));
        assert_eq!(d.message, "duplicate mapping key: port");
    }

    #[test]
    fn oversized_and_non_utf8_text_is_refused() {
        assert!(check_size(Path::new("f"), MAX_FILE_BYTES).is_ok());
        assert!(check_size(Path::new("f"), MAX_FILE_BYTES + 1).is_err());
        let bytes = [b"a: 1\nb: ".as_slice(), &[0xff], b"\n"].concat();
        let e = std::str::from_utf8(&bytes).unwrap_err();
        let d = not_utf8(Path::new("f"), &bytes, e);
        assert_eq!((d.line, d.column), (Some(2), Some(4)));
        assert!(d.message.contains("UTF-8"));
    }
}
