//! Bounded, located YAML parsing shared by the settings and scenes files.
//!
//! serde-saphyr gives line and column; serde_path_to_error gives the field path; this
//! module joins the two into one [`Diagnostic`], since serde-saphyr alone names no field.
//! Input is bounded before parsing: files over 1 MiB are refused, and serde-saphyr's
//! budgets (on by default) stop alias bombs.

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_saphyr::{DuplicateKeyPolicy, Options};

use super::diagnostic::{Diagnostic, Severity};

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
        severity: Severity::Error,
        file: file.to_path_buf(),
        line: Some(line),
        column: Some(column),
        path: String::new(),
        message: format!(
            "file is not valid UTF-8 (invalid byte at offset {}); save it as UTF-8",
            err.valid_up_to()
        ),
        related: None,
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
        // Where inside an expansion a limit ran out means nothing to the reader.
        if expansion_limit(&e) {
            path.clear();
        }
        let message = bare_message(&e, text, location);
        Diagnostic::at(file, location, join_path(prefix, &path), message)
    })
}

/// The error under its alias and snippet wrappers.
fn original(mut e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    use serde_saphyr::Error;
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = e {
        e = error;
    }
    e
}

/// Whether the parser stopped because aliases expanded the document too far.
fn expansion_limit(e: &serde_saphyr::Error) -> bool {
    use serde_saphyr::Error;
    matches!(
        original(e),
        Error::Budget { .. }
            | Error::AliasReplayLimitExceeded { .. }
            | Error::AliasExpansionLimitExceeded { .. }
            | Error::AliasReplayStackDepthExceeded { .. }
    )
}

/// What the parser's own wording means for someone editing the file.
const PLAIN_WORDS: [(&str, &str); 3] = [
    (
        "expected string scalar",
        "expected a single value here, not a list or a mapping",
    ),
    (
        "expected mapping start",
        "expected a mapping here (`key: value` lines or `{ key: value }`)",
    ),
    (
        "expected sequence start",
        "expected a list here (`- item` lines or `[a, b]`)",
    ),
];

/// serde-saphyr appends " at line L, column C" to its messages; the diagnostic carries the
/// location separately, so the suffix is dropped, as is the duplicate-key hint aimed at
/// programmers ("set DuplicateKeyPolicy in Options"). Parser terms ("invalid u32",
/// "mapping start", "use Option<String>", budget internals) become what to write instead.
fn bare_message(e: &serde_saphyr::Error, text: &str, location: serde_saphyr::Location) -> String {
    use serde_saphyr::Error;
    if expansion_limit(e) {
        return "the document is too large to load: its aliases expand beyond the parser's \
                limits (a \"billion laughs\" document?); write the values out instead"
            .to_string();
    }
    match original(e) {
        Error::NullIntoString { .. } => return "expected a value here, found nothing".to_string(),
        Error::InvalidScalar { ty, .. } if is_integer_type(ty) => {
            return match scalar_at(text, location) {
                Some(t)
                    if t.strip_prefix('-')
                        .unwrap_or(t)
                        .bytes()
                        .all(|b| b.is_ascii_digit()) =>
                {
                    format!("the number {t} is too large")
                }
                Some(t) => format!("expected a whole number, got {t}"),
                None => "expected a whole number".to_string(),
            };
        }
        _ => {}
    }
    let rendered = e.without_snippet().to_string();
    let end = [" at line ", ", set DuplicateKeyPolicy"]
        .iter()
        .filter_map(|cut| rendered.find(cut))
        .min()
        .unwrap_or(rendered.len());
    let message = &rendered[..end];
    match PLAIN_WORDS.iter().find(|(raw, _)| *raw == message) {
        Some((_, plain)) => (*plain).to_string(),
        None => message.to_string(),
    }
}

/// `u8`, `i64`, ...: the names serde-saphyr uses for integers it could not read.
fn is_integer_type(ty: &str) -> bool {
    ty.strip_prefix(['u', 'i'])
        .is_some_and(|bits| !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()))
}

/// The plain scalar written at `location`, as far as the end of its flow or line.
fn scalar_at(text: &str, location: serde_saphyr::Location) -> Option<&str> {
    let start = usize::try_from(location.span().byte_offset()?).ok()?;
    let rest = text.get(start..)?;
    let end = rest.find([',', '}', ']', '#', '\n']).unwrap_or(rest.len());
    Some(rest[..end].trim()).filter(|t| !t.is_empty())
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
        assert_eq!(d.message, "expected a whole number, got nope");
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
