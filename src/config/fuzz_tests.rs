//! Fuzz tests of the settings and scenes parsers: arbitrary text, and valid files damaged
//! the way editors and people damage them. Every outcome must be either a valid
//! configuration that keeps the documented bounds, or diagnostics that are precise: in the
//! right file, located (line and column inside the text) unless the problem concerns the
//! whole file, and with a message that says something.

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;

use super::diagnostic::{Diagnostic, Diags};
use super::{Settings, parse_scenes_with_env, settings, yaml};
use crate::agora::wire::limits;
use crate::fuzzing;

const SCENES: &str = "\
scenes:
  - name: news
    project: demo
    channel: news-live
    stream_url: rtmp://origin.example.com/live/news
    region: na
    backups: 2
    priority: 5
    idle_timeout: 300
    token: { env: TOKEN }
    uids: { start: 1000, end: 1999 }
    failback: non-revertive
    hold_down: 30s
    strikes: 3
    app_webhook:
      url: https://app.example.com/hook
      secret: { env: HOOK }
      timeout: 2s
  - name: sports
    project: demo
    channel: sports
    stream_url: https://origin.example.com/sports/index.m3u8
    region: eu
    uids:
      start: 2000
      end: 2099
";

const SETTINGS: &str = "\
server:
  listen: \"127.0.0.1:8080\"
  admin_token: { env: TOKEN }
store:
  path: data/pullkeeper.sled
reconcile:
  poll_interval: 5s
  list_lag: 12s
  check_interval: 10s
scenes_file: scenes.yaml
app_webhook: { url: \"https://app.example.com/hook\", secret: { env: HOOK }, timeout: 2s }
reports:
  window: 30s
  threshold: 3
projects:
  - id: demo
    app_id: 0123456789abcdef0123456789abcdef
    customer_id: { env: CID }
    customer_secret: { env: CSECRET }
    ncs_secret: { file: ncs-secret }
    api:
      primary_domain: api.agora.io
      timeout: 10s
      area: eu-central
      scheme: https
      return_to_primary_after: 5m
      resolve: { api.agora.io: \"127.0.0.1:9\" }
    limits:
      max_players: 50
      qps: { create_with_name: { per_second: 2 }, list: { per_second: 10, per_minute: 20 } }
    name_prefix: pk
";

/// Messages that concern a whole file and so carry no line.
const FILE_LEVEL: [&str; 4] = [
    "no scenes: the file is empty",
    "the document is too large to load",
    "file is larger than the limit",
    "cannot read file",
];

/// Values that have broken YAML parsers and validators before.
const NASTY: &[&str] = &[
    "",
    "~",
    "null",
    "[]",
    "{}",
    "-1",
    "0",
    "1",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999999",
    "1e400",
    ".nan",
    "-.inf",
    "0x1F",
    "0o17",
    "true",
    "'quoted'",
    "\"\\u0000\"",
    "\"\\xff\"",
    "&anchor x",
    "*anchor",
    "*nowhere",
    "!!str 5",
    "!!binary aGk=",
    "!custom x",
    "[1, [2, [3]]]",
    "{env: X}",
    "{file: missing}",
    "{env: }",
    "{env: X, file: y}",
    "|",
    ">-",
    "NA",
    "EU",
    "ü",
    "é/ö",
    "a/b",
    "rtmp://",
    "10s",
    "0s",
    "99999999999h",
    "18446744073709551615ms",
    "1ms",
    "\t",
    "- x",
    "? k",
    "#",
    "'",
    "\"",
    "{",
    "[",
    "]",
    "}",
    "%",
    "@",
    "`",
    "\u{feff}",
    "\u{200b}",
    "\u{1F600}",
];

/// Lines that change the document's structure when inserted anywhere.
const LINES: &[&str] = &[
    "unknown: 1",
    "  - ",
    "  -",
    "- x",
    "&a [*a, *a]",
    "? complex",
    "---",
    "...",
    "%YAML 1.2",
    "!!binary x",
    "  colour: blue",
    "scenes:",
    "projects:",
    "\t",
    "    name: news",
    "  -  - x",
    "key: &k value",
    "other: *k",
    "<<: {a: 1}",
    "\"quoted key\": 1",
    "{a: 1, a: 2}",
];

#[derive(Debug, Clone)]
enum Edit {
    ReplaceValue(prop::sample::Index, &'static str),
    ReplaceValueWith(prop::sample::Index, String),
    DeleteLine(prop::sample::Index),
    DuplicateLine(prop::sample::Index),
    SwapLines(prop::sample::Index, prop::sample::Index),
    Indent(prop::sample::Index, &'static str),
    InsertLine(prop::sample::Index, &'static str),
    InsertChar(prop::sample::Index, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    use prop::sample::{Index, select};
    prop_oneof![
        4 => (any::<Index>(), select(NASTY)).prop_map(|(i, v)| Edit::ReplaceValue(i, v)),
        1 => (any::<Index>(), "[ -~]{0,12}").prop_map(|(i, v)| Edit::ReplaceValueWith(i, v)),
        2 => any::<Index>().prop_map(Edit::DeleteLine),
        2 => any::<Index>().prop_map(Edit::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        1 => (any::<Index>(), select(&["  ", " ", "\t", "    "][..]))
            .prop_map(|(i, s)| Edit::Indent(i, s)),
        2 => (any::<Index>(), select(LINES)).prop_map(|(i, l)| Edit::InsertLine(i, l)),
        1 => (any::<Index>(), any::<char>()).prop_map(|(i, c)| Edit::InsertChar(i, c)),
    ]
}

/// Applies `edits` to `base` line by line.
fn damage(base: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        let replace_value = |line: &mut String, v: &str| {
            let cut = line.find(": ").map_or(line.len(), |i| i + 2);
            line.truncate(cut);
            line.push_str(v);
        };
        match e {
            Edit::ReplaceValue(i, v) => replace_value(&mut lines[i.index(n)], v),
            Edit::ReplaceValueWith(i, v) => replace_value(&mut lines[i.index(n)], v),
            Edit::DeleteLine(i) => {
                lines.remove(i.index(n));
            }
            Edit::DuplicateLine(i) => {
                let l = lines[i.index(n)].clone();
                lines.insert(i.index(n), l);
            }
            Edit::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
            Edit::Indent(i, s) => lines[i.index(n)].insert_str(0, s),
            Edit::InsertLine(i, l) => lines.insert(i.index(n + 1), (*l).to_string()),
            Edit::InsertChar(i, c) => {
                let line = &mut lines[i.index(n)];
                let at = line
                    .char_indices()
                    .map(|(k, _)| k)
                    .nth(i.index(line.chars().count() + 1))
                    .unwrap_or(line.len());
                line.insert(at, *c);
            }
        }
    }
    lines.join("\n") + "\n"
}

fn env() -> HashMap<String, String> {
    HashMap::from([
        ("TOKEN".to_string(), "t0k".to_string()),
        ("HOOK".to_string(), "h00k".to_string()),
        ("CID".to_string(), "cid".to_string()),
        ("CSECRET".to_string(), "csecret".to_string()),
    ])
}

fn test_settings() -> Settings {
    let file = Path::new("/nonexistent/pullkeeper.yaml");
    let raw = yaml::parse::<settings::RawSettings>(file, SETTINGS, "").expect("valid settings");
    let mut out = Vec::new();
    let mut s = settings::build(
        raw,
        file,
        &env(),
        &mut Diags {
            file,
            out: &mut out,
        },
    );
    // The settings' one file secret does not exist here; nothing in the scenes needs it.
    assert_eq!(out.len(), 1, "{out:#?}");
    s.projects[0].ncs_secret = "x".into();
    s
}

/// The diagnostic is about `file`, located inside `text` (or about the whole file), and
/// says what is wrong.
fn precise(d: &Diagnostic, file: &Path, text: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(&d.file, file);
    prop_assert!(!d.message.trim().is_empty(), "{:?}", d);
    prop_assert!(
        !d.message.contains(" at line "),
        "location left in the text: {:?}",
        d
    );
    let rendered = d.to_string();
    prop_assert!(rendered.starts_with(&file.display().to_string()));
    match (d.line, d.column) {
        (Some(line), Some(column)) => {
            prop_assert!(line >= 1 && column >= 1, "{:?}", d);
            prop_assert!(
                line <= text.lines().count() + 1,
                "line past the end: {:?}",
                d
            );
        }
        (None, None) => prop_assert!(
            FILE_LEVEL.iter().any(|m| d.message.starts_with(m)),
            "unlocated: {:?}",
            d
        ),
        _ => prop_assert!(false, "line without column: {:?}", d),
    }
    // A second place the problem involves is located like the first, and elsewhere.
    if let Some(r) = &d.related {
        prop_assert!(
            d.line.is_some(),
            "related place of an unlocated problem: {:?}",
            d
        );
        prop_assert!(r.line >= 1 && r.column >= 1, "{:?}", d);
        prop_assert!(
            r.line <= text.lines().count() + 1,
            "related line past the end: {:?}",
            d
        );
        prop_assert!(
            (Some(r.line), Some(r.column)) != (d.line, d.column),
            "related place is the problem's own: {:?}",
            d
        );
        prop_assert!(!r.note.trim().is_empty(), "{:?}", d);
    }
    Ok(())
}

/// Runs the scenes parser and checks either the bounds of what it accepted or the
/// precision of what it refused.
fn check_scenes(text: &str, settings: &Settings) -> Result<(), TestCaseError> {
    let file = Path::new("/cfg/scenes.yaml");
    match parse_scenes_with_env(file, text, settings, &env()) {
        Ok(scenes) => {
            prop_assert!(!scenes.is_empty());
            for s in &scenes {
                prop_assert!(!s.name.is_empty() && s.name.len() <= 32);
                prop_assert!(s.backups <= 10);
                prop_assert!((5..=600).contains(&s.idle_timeout));
                prop_assert!((1..=10).contains(&s.strike_threshold));
                prop_assert!(1 <= s.uids.start && s.uids.start <= s.uids.end);
                prop_assert!(u64::from(s.uids.end - s.uids.start) >= u64::from(s.backups));
                prop_assert!(
                    !s.channel.is_empty() && s.channel.len() <= limits::CHANNEL_NAME_MAX_BYTES
                );
                prop_assert_eq!(limits::bad_channel_char(&s.channel), None);
            }
        }
        Err(e) => {
            prop_assert!(!e.diagnostics.is_empty());
            for d in &e.diagnostics {
                precise(d, file, text)?;
            }
        }
    }
    Ok(())
}

fn check_settings(text: &str) -> Result<(), TestCaseError> {
    let file = Path::new("/nonexistent/pullkeeper.yaml");
    let mut out = Vec::new();
    match yaml::parse::<settings::RawSettings>(file, text, "") {
        Ok(raw) => {
            let s = settings::build(
                raw,
                file,
                &env(),
                &mut Diags {
                    file,
                    out: &mut out,
                },
            );
            if out.is_empty() {
                prop_assert!(!s.projects.is_empty());
                prop_assert!(s.reports.threshold >= 1);
                prop_assert!(!s.reconcile.poll_interval.is_zero());
            }
        }
        Err(d) => out.push(d),
    }
    for d in &out {
        precise(d, file, text)?;
    }
    Ok(())
}

#[test]
fn fuzz_scenes_parser_on_arbitrary_text() {
    let settings = test_settings();
    proptest!(fuzzing::config(1500), |(text in prop_oneof![
        any::<String>(),
        "[a-z:\\- \\[\\]{}&*!|>'\"#\n]{0,200}",
        "scenes:\n[ -~\n]{0,200}",
    ])| {
        check_scenes(&text, &settings)?;
    });
}

#[test]
fn fuzz_scenes_parser_on_damaged_files() {
    let settings = test_settings();
    proptest!(fuzzing::config(2500), |(edits in proptest::collection::vec(edit(), 1..5))| {
        check_scenes(&damage(SCENES, &edits), &settings)?;
    });
}

#[test]
fn fuzz_settings_parser_on_arbitrary_and_damaged_files() {
    proptest!(fuzzing::config(2500), |(text in prop_oneof![
        1 => any::<String>(),
        4 => proptest::collection::vec(edit(), 1..5).prop_map(|e| damage(SETTINGS, &e)),
    ])| {
        check_settings(&text)?;
    });
}

#[test]
fn damage_keeps_an_untouched_file_valid() {
    let settings = test_settings();
    assert!(parse_scenes_with_env(Path::new("s"), &damage(SCENES, &[]), &settings, &env()).is_ok());
}

/// Found by `fuzz_scenes_parser_on_damaged_files`: the size of a UID range was computed
/// before its ends were checked, and `end - start` overflowed (a panic in debug builds).
#[test]
fn extreme_uid_bounds_are_reported_not_overflowed() {
    let text = SCENES.replace("start: 1000", "start: -9223372036854775808");
    let e = parse_scenes_with_env(Path::new("s"), &text, &test_settings(), &env()).unwrap_err();
    let messages: Vec<String> = e.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "s:11:20: scenes[0].uids.start: uid must be between 1 and 4294967295, got -9223372036854775808"
        ]
    );
}

/// Found by `fuzz_scenes_parser_on_damaged_files`: an edit that gave two scenes one name
/// got a diagnostic whose message carried the first definition's line as text
/// ("(first defined at line 2)"); that place now has a field of its own.
#[test]
fn duplicate_scene_name_locates_the_first_definition_in_its_own_field() {
    let text = SCENES.replace("name: sports", "name: news");
    let e = parse_scenes_with_env(Path::new("s"), &text, &test_settings(), &env()).unwrap_err();
    let file = Path::new("s");
    for d in &e.diagnostics {
        precise(d, file, &text).unwrap();
    }
    let messages: Vec<String> = e.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "s:19:11: scenes[1].name: duplicate scene name \"news\" (first defined at line 2, column 11)"
        ]
    );
}
