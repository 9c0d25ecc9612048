//! The Grafana dashboard stays true to the service: valid JSON with a Prometheus data
//! source variable, PromQL that promtool parses, and every metric it queries present in a
//! live `/metrics` scrape.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{FAST, Running, one_scene};
use crate::observability::promtool;

const DASHBOARD: &str = "deploy/grafana/pullkeeper.json";

fn dashboard() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON")
}

/// Every PromQL expression: panel targets and template variable queries.
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            out.push(query.to_string());
        }
    }
    out
}

/// Metrics a scrape holds only in some places: the memory limit only where the
/// container has one (a test machine may have none); leadership terms only with the etcd
/// store (the embedded store's one replica never begins one), which this scrape is not.
const WHERE_THERE_IS_ONE: [&str; 2] = [
    "pullkeeper_memory_limit_bytes",
    "pullkeeper_leader_terms_total",
];

/// The `pullkeeper_*` and `process_*` names an expression refers to.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = metric_names_with(expr, "pullkeeper_");
    names.extend(metric_names_with(expr, "process_"));
    names
}

fn metric_names_with(expr: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find(prefix) {
        let preceded = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if !preceded {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

#[test]
fn dashboard_is_grafana_json_with_a_prometheus_datasource_variable() {
    let d = dashboard();
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    assert_eq!(d["uid"], "pullkeeper");
    let variables = d["templating"]["list"].as_array().unwrap();
    let datasource = variables
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a data source variable");
    assert_eq!(datasource["query"], "prometheus");
    let uid = format!("${{{}}}", datasource["name"].as_str().unwrap());
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "{title}: id reused"
        );
        assert_eq!(panel["datasource"]["type"], "prometheus", "{title}");
        assert_eq!(panel["datasource"]["uid"], uid.as_str(), "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for grid in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][grid].is_u64(), "{title}: gridPos.{grid}");
        }
    }
    assert!(ids.len() >= 15, "only {} panels", ids.len());
}

#[test]
fn dashboard_promql_parses() {
    // promtool has no expression parser of its own; a recording rule per expression makes
    // `check rules` parse them. Grafana's variables get values Prometheus would see.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in expressions(&dashboard()).iter().enumerate() {
        if expr.starts_with("label_values(") {
            continue;
        }
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$job", "pullkeeper");
        rules.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let dir = crate::harness::temp_dir("dashboard");
    let file = dir.join("rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new(promtool())
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dashboard PromQL does not parse:\n{}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_metric_is_in_a_live_scrape() {
    let wanted: BTreeSet<String> = expressions(&dashboard())
        .iter()
        .flat_map(|e| metric_names(e))
        .filter(|m| !WHERE_THERE_IS_ONE.contains(&m.as_str()))
        .collect();
    assert!(wanted.len() >= 20, "too few metrics found: {wanted:?}");
    let r = Running::start("dashboard", &one_scene("revertive"), "", FAST)
        .await
        .until_both_running()
        .await;
    // Nothing has failed: series that count failures must be there (at 0) all the same.
    let url = format!("http://{}/metrics", r.app.addr());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let exposed: BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|m| !exposed.contains(m.as_str()))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dashboard queries metrics /metrics does not expose: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
