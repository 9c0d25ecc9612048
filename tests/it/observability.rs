//! The live `/metrics` scrape: it passes Debian's `promtool check metrics`, carries the
//! metrics operators alert on, and no label value names a player, a UID, a stream URL or
//! a secret.

use std::process::Command;
use std::time::Duration;

use crate::harness::{APP_ID, FAST, Running, env, one_scene};

/// `(metric, label, value)` for every label of every sample in a text exposition.
fn labels(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let Some((metric, rest)) = line.split_once('{') else {
            continue;
        };
        let mut chars = rest.chars().peekable();
        loop {
            let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
            let name = name.trim_start_matches(',').trim().to_string();
            if name.is_empty() || name.starts_with('}') {
                break;
            }
            assert_eq!(chars.next(), Some('"'), "label {name} in {line}");
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            out.push((metric.to_string(), name, value));
        }
    }
    out
}

pub fn promtool() -> &'static str {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "promtool is not installed: install Debian's `prometheus` package \
         (apt-get install --no-install-recommends prometheus); this test never skips"
    );
    "promtool"
}

/// A running app with one scene of two running players, and a `/metrics` scrape taken
/// once a pass has published them.
pub async fn published_scrape(tag: &str) -> (Running, String) {
    let r = Running::start(tag, &one_scene("revertive"), "", FAST)
        .await
        .until_both_running()
        .await;
    let url = format!("http://{}/metrics", r.app.addr());
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !text.contains(r#"pullkeeper_players{project="e2e",role="backup",state="running"} 1"#) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no running players in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status(), 200);
        text = response.text().await.unwrap();
    }
    (r, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_scrape_passes_promtool_and_leaks_no_identifier() {
    let promtool = promtool();
    let (r, text) = published_scrape("observability").await;
    for expected in [
        r#"pullkeeper_players{project="e2e",role="master",state="running"} 1"#,
        r#"pullkeeper_players{project="e2e",role="master",state="missing"} 0"#,
        r#"pullkeeper_scene_healthy_players{scene="news"} 2"#,
        "pullkeeper_reconcile_duration_seconds_count ",
        r#"pullkeeper_api_ratelimit_wait_seconds_total{api="create"}"#,
        r#"pullkeeper_api_ratelimit_wait_seconds_total{api="list"}"#,
        r#"pullkeeper_api_requests_total{api="list",code_class="2xx"}"#,
        r#"pullkeeper_last_successful_list_timestamp_seconds{project="e2e"}"#,
        r#"pullkeeper_scene_uids_free{project="e2e",scene="news"} "#,
        "pullkeeper_build_info{",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }

    // The README's metrics table lists every metric family the service exposes.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = family.split(' ').next().unwrap();
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "{name} is missing from the README's metrics table"
        );
    }

    let file = r.dir.join("metrics.prom");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    println!(
        "promtool check metrics: {} {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Everything that identifies a player, or is secret, and must not be a label value.
    let players = r.sim.players(APP_ID);
    assert_eq!(players.len(), 2);
    let mut forbidden: Vec<String> = env().into_values().collect();
    for p in &players {
        forbidden.push(p.id.clone());
        forbidden.extend(p.name.clone());
        forbidden.push(p.stream_url.clone());
        forbidden.extend(p.token.clone());
    }
    let uids: Vec<String> = players
        .iter()
        .filter_map(|p| p.uid.map(|u| u.to_string()))
        .collect();
    assert_eq!(uids.len(), 2);
    let found = labels(&text);
    assert!(
        found.len() > 20,
        "label parsing found too little: {found:?}"
    );
    for (metric, label, value) in &found {
        for f in &forbidden {
            assert!(
                !value.contains(f.as_str()),
                "{metric}{{{label}={value:?}}} holds {f:?}"
            );
        }
        // Bucket bounds are numbers too, but never UIDs.
        if label != "le" {
            for u in &uids {
                assert!(
                    !value.contains(u.as_str()),
                    "{metric}{{{label}={value:?}}} holds UID {u}"
                );
            }
        }
    }
}
