//! The README's operating text stays true to the deployment files: every alert has a
//! runbook section and a row in the alert table, and the toolchain and validator
//! versions it names are the ones the manifest and `.ci/run` use.

use serde_json::Value;

use crate::deploy::read;

const ALERTS: &str = "deploy/prometheus/alerts.yml";

/// GitHub's anchor for a Markdown heading: lower case, spaces to dashes, other punctuation
/// dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_has_a_runbook_section_in_the_readme() {
    let readme = read("README.md");
    let anchors: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let rules: Value = serde_saphyr::from_str(&read(ALERTS)).unwrap();
    let mut alerts = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let Some(name) = rule["alert"].as_str() else {
                continue;
            };
            alerts += 1;
            let labels = &rule["labels"];
            assert!(labels["severity"].is_string(), "{name}: severity");
            let notes = &rule["annotations"];
            assert!(notes["summary"].is_string(), "{name}: summary");
            assert!(notes["description"].is_string(), "{name}: description");
            let url = notes["runbook_url"].as_str().unwrap_or_default();
            let (_, target) = url
                .split_once("README.md#")
                .unwrap_or_else(|| panic!("{name}: runbook_url {url:?} is not a README section"));
            assert!(
                anchors.iter().any(|a| a == target),
                "{name}: no README heading has the anchor #{target}"
            );
            assert!(
                readme.contains(&format!("[{name}](#{target})")),
                "{name} is missing from the README's alert table"
            );
        }
    }
    assert!(alerts > 0, "no alerts found in {ALERTS}");
}

/// The toolchain the README asks for is the manifest's `rust-version`.
#[test]
fn readme_states_the_manifests_rust_version() {
    let readme = read("README.md");
    let wanted = format!("Rust {} or newer", env!("CARGO_PKG_RUST_VERSION"));
    assert!(readme.contains(&wanted), "README.md must say {wanted:?}");
}

/// Every tool version the README pins (`name==version`) is the one `.ci/run` installs.
#[test]
fn readme_tool_versions_are_the_ones_ci_installs() {
    let readme = read("README.md");
    let ci = read(".ci/run");
    let pins: Vec<&str> = readme
        .split(|c: char| c.is_whitespace() || c == '`' || c == '(' || c == ')' || c == ',')
        .filter(|word| word.contains("=="))
        .collect();
    assert!(
        !pins.is_empty(),
        "the README names the validators it installs"
    );
    for pin in pins {
        assert!(ci.contains(pin), "README pins {pin}, .ci/run does not");
    }
}
