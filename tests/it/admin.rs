//! The admin API's bearer token, `/metrics` on its own address, and `pullkeeper status`.

use std::time::Duration;

use pullkeeper::store::Store;
use reqwest::StatusCode;

use crate::harness::{
    ADMIN_TOKEN, FAST, Running, SCENES, edit_settings, eventually, one_scene, start_app,
    start_simulator, temp_dir, write_config_full,
};

/// Status and JSON body of a GET with an optional bearer token.
async fn get(url: &str, token: Option<&str>) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_route_needs_the_token_and_probes_and_metrics_stay_open() {
    let r = Running::start("admin-auth", &one_scene("revertive"), "", FAST).await;
    let base = format!("http://{}", r.app.addr());
    for path in ["/v1/scenes", "/v1/scenes/news", "/v1/ncs/ips"] {
        let url = format!("{base}{path}");
        for token in [None, Some("wrong"), Some("e2e-admin-toke")] {
            let (status, headers, body) = get(&url, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {token:?}");
            assert_eq!(headers["www-authenticate"], "Bearer");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(
                json["message"].as_str().unwrap().contains("bearer token"),
                "{body}"
            );
            assert!(!body.contains(ADMIN_TOKEN), "{body}");
        }
        let (status, _, body) = get(&url, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let report = reqwest::Client::new()
        .post(format!("{base}/v1/scenes/news/reports"))
        .json(&serde_json::json!({ "uid": 1000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::UNAUTHORIZED);
    for open in ["/healthz", "/metrics"] {
        let (status, _, _) = get(&format!("{base}{open}"), None).await;
        assert_eq!(status, StatusCode::OK, "{open}");
    }
    let (status, _, _) = get(&format!("{base}/readyz"), None).await;
    assert_ne!(status, StatusCode::UNAUTHORIZED);
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_token_the_admin_api_is_closed() {
    let dir = temp_dir("admin-off");
    let sim = start_simulator().await;
    write_config_full(&dir, &sim, &one_scene("revertive"), "", FAST);
    let config = edit_settings(&dir, ", admin_token: { env: E2E_ADMIN_TOKEN }", "");
    assert!(config.settings.server.admin_token.is_none());
    let app = start_app(config, Store::temporary().unwrap()).await;
    let url = format!("http://{}/v1/scenes", app.addr());
    for token in [None, Some(""), Some(ADMIN_TOKEN)] {
        let (status, _, body) = get(&url, token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token:?}");
        assert!(body.contains("set server.admin_token"), "{body}");
    }
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_serves_metrics_there_and_only_there() {
    let dir = temp_dir("metrics-listen");
    let sim = start_simulator().await;
    write_config_full(&dir, &sim, &one_scene("revertive"), "", FAST);
    let config = edit_settings(
        &dir,
        r#"listen: "127.0.0.1:0","#,
        r#"listen: "127.0.0.1:0", metrics_listen: "127.0.0.1:0","#,
    );
    let app = start_app(config, Store::temporary().unwrap()).await;
    let metrics_addr = app.metrics_addr().expect("a metrics address");
    assert_ne!(metrics_addr, app.addr());
    let (status, _, body) = get(&format!("http://{metrics_addr}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("pullkeeper_build_info{"), "{body}");
    let (status, _, _) = get(&format!("http://{}/metrics", app.addr()), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(
        &format!("http://{metrics_addr}/v1/scenes"),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&format!("http://{}/healthz", app.addr()), None).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(30), app.shutdown())
        .await
        .expect("shutdown also stops the metrics server");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the real binary's `status` against `url`, with `env` set and nothing inherited
/// that could point it elsewhere.
async fn status_command(args: Vec<String>, env: Vec<(&'static str, String)>) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pullkeeper"))
            .arg("status")
            .args(args)
            .env_remove("PULLKEEPER_ADMIN_TOKEN")
            .env_remove("PULLKEEPER_CONFIG")
            .envs(env)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_command_prints_every_slot_of_a_running_instance() {
    let r = Running::start("status-cmd", &one_scene("revertive"), "", FAST)
        .await
        .until_both_running()
        .await;
    let scene = r.app.board.get("news").unwrap();
    let uid = |slot: usize| scene.slots[slot].uid.unwrap().to_string();
    let token_file = r.dir.join("admin-token");
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
    let url = format!("http://{}", r.app.addr());
    let (code, text) = status_command(
        vec![
            "--url".into(),
            url.clone(),
            "--token-file".into(),
            token_file.display().to_string(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{text}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "SCENE", "SLOT", "ROLE", "UID", "STATUS", "STRIKES", "ACTIVE"
            ],
            vec!["news", "0", "master", &uid(0), "running", "0", "*"],
            vec!["news", "1", "backup", &uid(1), "running", "0"],
        ]
    );
    let (code, text) = status_command(
        vec!["--url".into(), url.clone()],
        vec![("PULLKEEPER_ADMIN_TOKEN", ADMIN_TOKEN.to_string())],
    )
    .await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("news"), "{text}");
    let (code, text) = status_command(
        vec!["--url".into(), url],
        vec![("PULLKEEPER_ADMIN_TOKEN", "wrong".to_string())],
    )
    .await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("refused the admin token"), "{text}");
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_command_json_wide_and_a_scene_filter() {
    // Three scenes of three players under a quota of 7: two slots are over quota.
    let dir = temp_dir("status-output");
    let sim = start_simulator().await;
    write_config_full(&dir, &sim, SCENES, "", FAST);
    let config = edit_settings(&dir, "max_players: 50", "max_players: 7");
    let r = Running::launch(sim, dir, config).await;
    eventually(
        Duration::from_secs(30),
        "7 players run, 2 slots over quota",
        || {
            let scenes = r.app.board.all();
            scenes.len() == 3
                && scenes.iter().map(|s| s.healthy_players).sum::<u32>() == 7
                && scenes
                    .iter()
                    .map(|s| s.over_quota_slots.len())
                    .sum::<usize>()
                    == 2
        },
    )
    .await;
    let status = |extra: &[&str]| {
        let mut args = vec!["--url".to_string(), format!("http://{}", r.app.addr())];
        args.extend(extra.iter().map(|a| a.to_string()));
        status_command(
            args,
            vec![("PULLKEEPER_ADMIN_TOKEN", ADMIN_TOKEN.to_string())],
        )
    };

    let (code, text) = status(&["-o", "json"]).await;
    assert_eq!(code, 0, "{text}");
    let scenes: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(scenes.len(), 3);
    let mut over_quota = 0;
    for scene in &scenes {
        assert!(scene["source_down"].is_boolean(), "{scene}");
        over_quota += scene["over_quota_slots"].as_array().unwrap().len();
        for slot in scene["slots"].as_array().unwrap() {
            assert!(slot["held"].is_boolean(), "{slot}");
        }
    }
    assert_eq!(over_quota, 2);

    let (code, text) = status(&["-o", "wide"]).await;
    assert_eq!(code, 0, "{text}");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header[header.len() - 5..],
        ["SOURCE", "HELD", "OVER-QUOTA", "SOURCE-DOWN", "LEADER"]
    );
    // The last five cells of each row (ACTIVE is blank off air): source, held, over
    // quota, source down, and the leader (`-` for the single replica).
    let tails: Vec<Vec<&str>> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells[cells.len() - 5..].to_vec()
        })
        .collect();
    assert_eq!(tails.len(), 9, "{text}");
    assert_eq!(tails.iter().filter(|t| t[2] == "yes").count(), 2, "{text}");
    assert!(
        tails
            .iter()
            .all(|t| t[1] == "no" && t[3] == "no" && t[4] == "-"),
        "{text}"
    );

    // Positional names and --scene narrow the list; an unknown one is an error.
    let (code, text) = status(&["-o", "json", "news", "--scene", "lobby"]).await;
    assert_eq!(code, 0, "{text}");
    let scenes: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = scenes.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lobby", "news"], "in the answer's order, by name");
    let (code, text) = status(&["sports"]).await;
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines().skip(1).all(|l| l.starts_with("sports ")),
        "{text}"
    );
    let (code, text) = status(&["nope"]).await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no scene named nope"), "{text}");
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}
