//! The Agora facts the code relies on live in `docs/agora-api.md`, and every section
//! reference resolves there.
//!
//! A reference is the section sign followed by a section number (`1`, `1.7`, `2.6`); it
//! resolves when `docs/agora-api.md` has a heading with that number (`## 1. …`,
//! `### 1.7 …`). Checked: every `.rs` file under `src/` and `tests/`, every file under
//! `deploy/`, the README, RELIABILITY.md, BENCHMARKS.md and `docs/agora-api.md` itself.
//! None of them may cite the research notes or the saved Agora pages the document was
//! written from, which are not in the repository. Each problem is reported as
//! `file:line`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The section sign, spelled as an escape so that this file holds no reference itself.
const SIGN: char = '\u{a7}';

/// The document every reference must resolve in.
const DOC: &str = "docs/agora-api.md";

/// Directories scanned: `.rs` files under the first two, every file under `deploy/`.
const RUST_DIRS: [&str; 2] = ["src", "tests"];
const OTHER_DIRS: [&str; 1] = ["deploy"];
const FILES: [&str; 4] = ["README.md", "RELIABILITY.md", "BENCHMARKS.md", DOC];

/// Mentions of documents outside the repository. Spelled in two pieces so that this file
/// does not match them.
const OUTSIDE: [(&str, &str); 7] = [
    ("rust", "-stack"),
    ("agora-media", "-pull"),
    ("..", "/shared"),
    ("shared/", "reference"),
    ("shared/", "seeds"),
    ("seed ", "00"),
    ("seed `", "00"),
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The section numbers of the headings of `doc`: `## 1. Media Pull` gives `1`,
/// `### 1.7 Update` gives `1.7`. Headings without a number are left out.
fn sections(doc: &str) -> Vec<String> {
    doc.lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| {
            let title = l.trim_start_matches('#').trim_start();
            let title = title.strip_prefix(SIGN).unwrap_or(title);
            let number: String = title
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let number = number.trim_end_matches('.');
            (!number.is_empty() && !number.starts_with('.')).then(|| number.to_string())
        })
        .collect()
}

/// The section numbers referenced on `line`: a section sign, optional spaces, then
/// `N` or `N.M` (and so on). A trailing full stop is punctuation, not part of the number.
fn references(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find(SIGN) {
        rest = &rest[at + SIGN.len_utf8()..];
        let after = rest.trim_start_matches(' ');
        let mut number = String::new();
        let mut chars = after.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() {
                number.push(c);
                chars.next();
            } else if c == '.' && !number.is_empty() && !number.ends_with('.') {
                let mut ahead = chars.clone();
                ahead.next();
                if ahead.peek().is_some_and(|d| d.is_ascii_digit()) {
                    number.push(c);
                    chars.next();
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        if !number.is_empty() {
            found.push(number);
        }
    }
    found
}

/// Whether `line` names one of the saved Agora pages the research notes were written
/// from: `NNN_` and 16 hex digits, as in `000_` followed by the page's hash.
fn names_saved_page(line: &str) -> bool {
    line.as_bytes().windows(20).any(|w| {
        w[..3].iter().all(u8::is_ascii_digit)
            && w[3] == b'_'
            && w[4..]
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    })
}

/// Every problem in `text`, the contents of `file`, as `file:line: what`.
fn problems(file: &str, text: &str, known: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", n + 1);
        for number in references(line) {
            if !known.contains(&number) {
                out.push(format!("{at}: {SIGN}{number} has no heading in {DOC}"));
            }
        }
        for (a, b) in OUTSIDE {
            let name = format!("{a}{b}");
            if line.contains(&name) {
                out.push(format!(
                    "{at}: mentions `{name}`, which is not in the repository (cite {DOC})"
                ));
            }
        }
        if names_saved_page(line) {
            out.push(format!(
                "{at}: names a saved Agora page, which is not in the repository (cite {DOC})"
            ));
        }
    }
    out
}

/// Files to check, as paths relative to the repository, sorted.
fn files() -> Vec<String> {
    fn walk(dir: &Path, rust_only: bool, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, rust_only, out);
            } else if !rust_only || path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    let root = repo("");
    let mut paths = Vec::new();
    for dir in RUST_DIRS {
        walk(&root.join(dir), true, &mut paths);
    }
    for dir in OTHER_DIRS {
        walk(&root.join(dir), false, &mut paths);
    }
    paths.extend(FILES.iter().map(|f| root.join(f)));
    let mut names: Vec<String> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .expect("under the repository")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn doc_sections() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo(DOC)).unwrap_or_else(|e| panic!("{DOC}: {e}"));
    sections(&doc).into_iter().collect()
}

#[test]
fn every_section_reference_resolves_in_agora_api_md() {
    let known = doc_sections();
    let files = files();
    assert!(files.len() > 100, "only {} files found", files.len());
    let mut all = Vec::new();
    for file in &files {
        let bytes = std::fs::read(repo(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        // Binary files hold no references.
        if let Ok(text) = String::from_utf8(bytes) {
            all.extend(problems(file, &text, &known));
        }
    }
    assert!(
        all.is_empty(),
        "{} section reference(s) that do not resolve in {DOC}, or mentions of documents \
         outside the repository:\n{}",
        all.len(),
        all.join("\n")
    );
}

#[test]
fn agora_api_md_numbers_each_section_once() {
    let doc = std::fs::read_to_string(repo(DOC)).unwrap_or_else(|e| panic!("{DOC}: {e}"));
    let numbers = sections(&doc);
    let mut seen = BTreeSet::new();
    let twice: Vec<&String> = numbers.iter().filter(|n| !seen.insert(*n)).collect();
    assert!(
        twice.is_empty(),
        "{DOC} numbers these sections twice: {twice:?}"
    );
    // The sections the code cites most; renumbering them would orphan many references.
    for n in ["1.4", "1.7", "1.9", "1.10", "2.1", "2.4", "2.6", "3", "4"] {
        assert!(seen.contains(&n.to_string()), "{DOC} has no section {n}");
    }
}

/// The check itself can fail: a made-up section, an unknown subsection of a real one, a
/// mention of the research notes and a saved page's file name are each reported with
/// file and line.
#[test]
fn the_check_reports_unknown_sections_and_outside_documents() {
    let known: BTreeSet<String> = sections(&format!(
        "# Title\n## 1. One\n### 1.7 Update\n### {SIGN}1.10 Limits\n## 2. Two\n"
    ))
    .into_iter()
    .collect();
    assert_eq!(
        known,
        BTreeSet::from(["1", "1.7", "1.10", "2"].map(String::from))
    );

    let text = format!(
        "// fine: {SIGN}1.7, {SIGN}1.10. and {SIGN}2; ({SIGN}1.7–{SIGN}1.10)\n\
         // made up: {SIGN}9.9\n\
         // one level too deep: {SIGN}1.7.1, and a spaced {SIGN} 3\n\
         // outside: see {}{}.md {SIGN}1.7\n\
         // a saved page: `{}_0123456789abcdef.txt`\n",
        OUTSIDE[0].0, OUTSIDE[0].1, "002"
    );
    let found = problems("src/x.rs", &text, &known);
    assert_eq!(
        found,
        [
            format!("src/x.rs:2: {SIGN}9.9 has no heading in {DOC}"),
            format!("src/x.rs:3: {SIGN}1.7.1 has no heading in {DOC}"),
            format!("src/x.rs:3: {SIGN}3 has no heading in {DOC}"),
            format!(
                "src/x.rs:4: mentions `{}{}`, which is not in the repository (cite {DOC})",
                OUTSIDE[0].0, OUTSIDE[0].1
            ),
            format!(
                "src/x.rs:5: names a saved Agora page, which is not in the repository \
                 (cite {DOC})"
            ),
        ]
    );
}
