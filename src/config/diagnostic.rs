//! Located configuration problems.
//!
//! Every problem pullkeeper finds in its configuration becomes one [`Diagnostic`] that names
//! the file, the line and column, the field path and what was expected, so an operator can
//! fix all of them in one edit instead of one per restart.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

/// Whether a problem stops the configuration from loading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Severity {
    /// The configuration is refused.
    #[default]
    Error,
    /// The configuration loads, but probably not as meant (printed by `check`, logged at
    /// start).
    Warning,
}

/// One problem in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line, when the problem can be pinned to a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// Field path such as `scenes[1].region`; empty for whole-file problems.
    pub path: String,
    /// What was wrong and what was expected. Never a location: the diagnostic's own place
    /// is in `line` and `column`, and any other place it involves is in `related`.
    pub message: String,
    pub severity: Severity,
    /// Another place in the same file that the problem involves, such as where a
    /// duplicated name was first defined. Boxed: it is rare, and a `Diagnostic` is the
    /// error of many `Result`s.
    pub related: Option<Box<Related>>,
}

/// A second location of a [`Diagnostic`], with what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is at that place, e.g. "first defined".
    pub note: String,
}

impl Diagnostic {
    /// A problem that concerns the whole file (unreadable, too large, not UTF-8, ...).
    pub fn file_level(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: None,
            column: None,
            path: String::new(),
            message: message.into(),
            related: None,
            severity: Severity::Error,
        }
    }

    /// A problem at a YAML location; an unknown location is kept as "no line/column".
    pub fn at(
        file: &Path,
        location: Location,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let known = location != Location::UNKNOWN && location.line() > 0;
        Diagnostic {
            file: file.to_path_buf(),
            line: known.then(|| to_usize(location.line())),
            column: known.then(|| to_usize(location.column())),
            path: path.into(),
            message: message.into(),
            related: None,
            severity: Severity::Error,
        }
    }

    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }

    /// Adds another place the problem involves; an unknown location adds nothing, so a
    /// diagnostic never points at line 0.
    #[must_use]
    pub fn related_to(mut self, location: Location, note: impl Into<String>) -> Self {
        if location != Location::UNKNOWN && location.line() > 0 {
            self.related = Some(Box::new(Related {
                line: to_usize(location.line()),
                column: to_usize(location.column()),
                note: note.into(),
            }));
        }
        self
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        if self.is_warning() {
            write!(f, ": warning")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(r) = &self.related {
            write!(f, " ({} at line {}, column {})", r.note, r.line, r.column)?;
        }
        Ok(())
    }
}

/// Every problem found while loading; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl From<Vec<Diagnostic>> for ConfigError {
    fn from(diagnostics: Vec<Diagnostic>) -> Self {
        ConfigError { diagnostics }
    }
}

/// Collects the problems of one file so rules can keep going after the first one.
#[derive(Debug)]
pub(crate) struct Diags<'a> {
    pub file: &'a Path,
    pub out: &'a mut Vec<Diagnostic>,
}

impl Diags<'_> {
    pub fn push(&mut self, location: Location, path: impl Into<String>, msg: impl Into<String>) {
        self.out
            .push(Diagnostic::at(self.file, location, path, msg));
    }

    /// Records a problem that does not stop the configuration from loading.
    pub fn warn(&mut self, location: Location, path: impl Into<String>, msg: impl Into<String>) {
        self.out.push(Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::at(self.file, location, path, msg)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(line: Option<usize>, column: Option<usize>, path: &str) -> Diagnostic {
        Diagnostic {
            file: PathBuf::from("cfg/scenes.yaml"),
            line,
            column,
            path: path.into(),
            message: "bad".into(),
            related: None,
            severity: Severity::Error,
        }
    }

    #[test]
    fn display_includes_known_parts_only() {
        assert_eq!(
            diag(Some(3), Some(7), "scenes[1].region").to_string(),
            "cfg/scenes.yaml:3:7: scenes[1].region: bad"
        );
        assert_eq!(diag(None, None, "").to_string(), "cfg/scenes.yaml: bad");
        assert_eq!(
            diag(Some(2), None, "x").to_string(),
            "cfg/scenes.yaml:2: x: bad"
        );
    }

    #[test]
    fn error_lists_one_diagnostic_per_line() {
        let e = ConfigError::from(vec![
            diag(Some(1), Some(1), "a"),
            diag(Some(2), Some(1), "b"),
        ]);
        assert_eq!(
            e.to_string(),
            "cfg/scenes.yaml:1:1: a: bad\ncfg/scenes.yaml:2:1: b: bad"
        );
    }

    #[test]
    fn a_warning_says_so() {
        let warning = Diagnostic {
            severity: Severity::Warning,
            ..diag(Some(3), Some(7), "scenes[1].uids")
        };
        assert_eq!(
            warning.to_string(),
            "cfg/scenes.yaml:3:7: scenes[1].uids: warning: bad"
        );
    }

    #[test]
    fn unknown_location_has_no_line() {
        let d = Diagnostic::at(Path::new("f"), Location::UNKNOWN, "p", "m");
        assert_eq!((d.line, d.column), (None, None));
        let d = d.related_to(Location::UNKNOWN, "first defined");
        assert_eq!(d.related, None);
    }

    #[test]
    fn display_renders_the_related_place_after_the_message() {
        let d = Diagnostic {
            related: Some(Box::new(Related {
                line: 2,
                column: 11,
                note: "first defined".into(),
            })),
            ..diag(Some(9), Some(11), "scenes[1].name")
        };
        assert_eq!(
            d.to_string(),
            "cfg/scenes.yaml:9:11: scenes[1].name: bad (first defined at line 2, column 11)"
        );
    }
}
