//! The README's metric table says what a live scrape holds: every `pullkeeper_` family
//! the service exposes has a row with its type and exactly its labels, every label value
//! it shows is one the row lists, every row names a metric the code registers, and the
//! `code_class` values listed are those the code can emit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::observability::published_scrape;

/// The families the table covers: pullkeeper's own and the process figures it exports.
const PREFIXES: [&str; 2] = ["pullkeeper_", "process_"];

/// A row of the README's metric table.
#[derive(Debug)]
struct Row {
    kind: String,
    /// Label name → the values the row lists (empty: not enumerated).
    labels: BTreeMap<String, BTreeSet<String>>,
}

fn readme_rows() -> BTreeMap<String, Row> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut rows = BTreeMap::new();
    for line in readme
        .lines()
        .filter(|l| PREFIXES.iter().any(|p| l.starts_with(&format!("| `{p}"))))
    {
        let cells: Vec<&str> = line.split(" | ").collect();
        let name = cells[0]
            .trim_start_matches("| ")
            .trim_matches('`')
            .to_string();
        let kind = cells[1].trim().to_string();
        rows.insert(
            name,
            Row {
                kind,
                labels: labels_cell(cells[2]),
            },
        );
    }
    assert!(rows.len() > 20, "the README's metric table was not found");
    rows
}

/// Parses "`a`, `b` (x, y\|z, …)" into a → {}, b → {x, y, z}; "—" is no label.
fn labels_cell(cell: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let mut rest = cell.trim();
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let end = after.find('`').unwrap();
        let name = after[..end].to_string();
        rest = after[end + 1..].trim_start();
        let mut values = BTreeSet::new();
        if let Some(list) = rest.strip_prefix('(') {
            let close = list.find(')').unwrap();
            values = list[..close]
                .split([',', '|'])
                .map(|v| v.trim().trim_matches('\\').trim().to_string())
                .filter(|v| !v.is_empty() && v != "…")
                .collect();
            rest = &list[close + 1..];
        }
        out.insert(name, values);
        rest = rest.trim_start_matches([',', ' ']);
    }
    out
}

/// Family name → (type, label name → values seen), from a text exposition.
fn scraped(text: &str) -> BTreeMap<String, (String, BTreeMap<String, BTreeSet<String>>)> {
    let mut families: BTreeMap<String, (String, BTreeMap<String, BTreeSet<String>>)> =
        BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            families.insert(name.to_string(), (kind.to_string(), BTreeMap::new()));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (metric, labels) = match line.split_once('{') {
            Some((m, rest)) => (m, rest.rsplit_once('}').unwrap().0),
            None => (line.split_whitespace().next().unwrap(), ""),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                metric
                    .strip_suffix(suffix)
                    .filter(|f| families.get(*f).is_some_and(|(k, _)| k == "histogram"))
            })
            .unwrap_or(metric);
        let entry = &mut families
            .get_mut(family)
            .expect("a sample of a typed family")
            .1;
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once("=\"").unwrap();
            if name == "le" {
                continue;
            }
            let value = value.trim_end_matches('"').to_string();
            entry.entry(name.to_string()).or_default().insert(value);
        }
    }
    families
}

/// Every `.rs` file under `dir`, as text.
fn sources(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            text.push_str(&sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_metric_table_matches_a_live_scrape() {
    let rows = readme_rows();
    let (_running, text) = published_scrape("readme-metrics").await;
    let mut wrong = Vec::new();
    for (name, (kind, labels)) in scraped(&text) {
        if !PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let Some(row) = rows.get(&name) else {
            wrong.push(format!("{name}: exposed but has no README row"));
            continue;
        };
        if row.kind != kind {
            wrong.push(format!(
                "{name}: README says {}, the scrape {kind}",
                row.kind
            ));
        }
        let listed: BTreeSet<&String> = row.labels.keys().collect();
        let exposed: BTreeSet<&String> = labels.keys().collect();
        if listed != exposed {
            wrong.push(format!(
                "{name}: README labels {listed:?}, scraped {exposed:?}"
            ));
        }
        for (label, values) in &labels {
            let Some(allowed) = row.labels.get(label).filter(|a| !a.is_empty()) else {
                continue;
            };
            for value in values.iter().filter(|v| !allowed.contains(*v)) {
                wrong.push(format!(
                    "{name}: {label}=\"{value}\" is not among {allowed:?}"
                ));
            }
        }
    }
    let src = sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    for name in rows.keys() {
        if !src.contains(&format!("\"{name}\"")) {
            wrong.push(format!(
                "{name}: a README row for a metric the code does not register"
            ));
        }
    }
    let code_classes = &rows["pullkeeper_api_requests_total"].labels["code_class"];
    let emitted: BTreeSet<String> = pullkeeper::agora::CODE_CLASSES
        .iter()
        .map(|c| c.to_string())
        .collect();
    if code_classes != &emitted {
        wrong.push(format!(
            "pullkeeper_api_requests_total: README code_class {code_classes:?}, the code emits {emitted:?}"
        ));
    }
    assert!(
        wrong.is_empty(),
        "README metric table vs live scrape:\n{}",
        wrong.join("\n")
    );
}
