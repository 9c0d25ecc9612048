//! End-to-end checks of configuration loading and `check`, on real files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use pullkeeper::config::{self, EXIT_INVALID, Env, Failback, MAX_FILE_BYTES, PrimaryDomain};
use secrecy::ExposeSecret;

mod catalogue;

const SETTINGS: &str = "\
server: { listen: \"127.0.0.1:0\" }
scenes_file: scenes.yaml
projects:
  - id: demo
    app_id: abc123
    customer_id: { env: CID }
    customer_secret: { env: CSECRET }
    ncs_secret: { file: ncs }
    api: { area: us-east }
";

const GOOD_SCENE: &str = "\
scenes:
  - name: news
    project: demo
    channel: news-live
    stream_url: rtmp://origin.example.com/live/news
    region: na
    backups: 2
    uids: { start: 1000, end: 1999 }
";

fn env() -> HashMap<String, String> {
    HashMap::from([
        ("CID".to_string(), "id-value".to_string()),
        ("CSECRET".to_string(), "secret-value".to_string()),
    ])
}

/// A fresh directory per test case; no temp-dir crate needed.
fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pullkeeper-it-config-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the settings, an NCS secret file and `scenes`, runs `check`, and returns its exit
/// status, output and the directory.
fn check_files(settings: &str, scenes: &[u8]) -> (i32, String, PathBuf) {
    let dir = temp_dir();
    std::fs::write(dir.join("pullkeeper.yaml"), settings).unwrap();
    std::fs::write(dir.join("ncs"), "ncs-value\n").unwrap();
    std::fs::write(dir.join("scenes.yaml"), scenes).unwrap();
    let mut out = Vec::new();
    let code = config::check(&dir.join("pullkeeper.yaml"), &env(), &mut out);
    (code, String::from_utf8(out).unwrap(), dir)
}

fn broken_settings(settings: &str) -> String {
    let (code, out, dir) = check_files(settings, GOOD_SCENE.as_bytes());
    assert_eq!(code, EXIT_INVALID, "{out}");
    std::fs::remove_dir_all(dir).unwrap();
    out
}

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pullkeeper.yaml")
}

#[test]
fn shipped_config_loads_with_its_demo_secrets() {
    let no_env: HashMap<String, String> = HashMap::new();
    let cfg = config::load_with_env(&shipped(), &no_env).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = cfg
        .settings
        .projects
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(ids, ["demo", "second"]);
    let names: Vec<&str> = cfg.scenes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["news", "sports", "lobby"]);
    let demo = &cfg.settings.projects[0];
    assert_eq!(demo.customer_id.expose_secret(), "demo-customer-id");
    assert_eq!(demo.ncs_secret.expose_secret(), "demo-ncs-secret");
    assert_eq!(demo.api.primary_domain, PrimaryDomain::AgoraIo);
    assert_eq!(demo.api.primary_domain.host(), "api.agora.io");
    assert_eq!(demo.name_prefix, "pk");
    assert_eq!(demo.limits.qps.list.per_minute, Some(20));
    assert_eq!(cfg.settings.server.listen.to_string(), "127.0.0.1:8080");
    assert!(
        cfg.settings
            .store
            .path
            .ends_with("config/../data/pullkeeper.sled")
    );
    assert_eq!(cfg.scenes_path, cfg.settings.scenes_file);
    assert!(cfg.scenes_path.ends_with("config/scenes.yaml"));
    assert_eq!(cfg.settings.reconcile.list_lag.as_secs(), 12);
    assert_eq!(
        cfg.settings
            .server
            .admin_token
            .as_ref()
            .map(|t| t.expose_secret().to_string())
            .as_deref(),
        Some("demo-admin-token")
    );
    assert!(!cfg.settings.ncs_allowlist.enforce);
    assert!(cfg.settings.app_webhook.is_none());
    assert_eq!(cfg.settings.reports.window, Duration::from_secs(30));
    assert_eq!(cfg.settings.reports.threshold, 3);
    let failover: Vec<(Failback, Duration, u32, bool)> = cfg
        .scenes
        .iter()
        .map(|s| {
            (
                s.failback,
                s.hold_down,
                s.strike_threshold,
                s.app_webhook.is_some(),
            )
        })
        .collect();
    assert_eq!(
        failover,
        [
            (Failback::Revertive, Duration::from_secs(30), 3, false),
            (Failback::NonRevertive, Duration::from_secs(30), 5, false),
            (Failback::Revertive, Duration::from_secs(30), 3, false),
        ]
    );

    let mut out = Vec::new();
    assert_eq!(config::check(&shipped(), &no_env, &mut out), 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "ok: 2 projects, 3 scenes\n"
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let no_env: HashMap<String, String> = HashMap::new();
    let cfg = config::load_with_env(&shipped(), &no_env).unwrap();
    let dump = format!("{cfg:?}");
    assert!(!dump.contains("demo-customer"), "{dump}");
    assert!(dump.contains("REDACTED"));
}

#[test]
fn every_problem_is_reported_with_file_line_column_and_path() {
    let scenes = "\
scenes:
  - name: news
    project: demo
    channel: news-live
    stream_url: rtmp://origin.example.com/live/news
    region: na
    backups: lots
    uids: { start: 1000, end: 1999 }
  - name: sports
    project: demo
    channel: 'sports/live'
    stream_url: rtmp://origin.example.com/live/sports
    region: na
    uids: { start: 1, end: 10 }
  - name: lobby
    project: demo
    channel: lobby
    stream_url: rtmp://origin.example.com/live/lobby
    region: na
    colour: blue
    uids: { start: 1, end: 10 }
";
    let (code, out, dir) = check_files(SETTINGS, scenes.as_bytes());
    assert_eq!(code, EXIT_INVALID);
    let file = dir.join("scenes.yaml").display().to_string();
    for expected in [
        format!("{file}:7:14: scenes[0].backups: "),
        format!("{file}:11:14: scenes[1].channel: channel contains '/'"),
        format!("{file}:20:5: scenes[2].colour: unknown field `colour`"),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }
    assert_eq!(out.lines().count(), 3, "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn settings_and_scenes_problems_are_reported_together() {
    let settings = SETTINGS
        .replace("{ env: CID }", "{ env: MISSING_VAR }")
        .replace("{ env: CSECRET }", "inline-secret")
        .replace("app_id: abc123", "app_id: abc123\n    name_prefix: p_k");
    // An inline secret is a type-level error, so it is reported alone for the settings file.
    let out = broken_settings(&settings);
    assert!(
        out.contains(":8:22: projects[0].customer_secret: secrets must come from env or file"),
        "{out}"
    );
    assert!(!out.contains("inline-secret"), "{out}");

    let settings = SETTINGS
        .replace("{ env: CID }", "{ env: MISSING_VAR }")
        .replace("app_id: abc123", "app_id: abc123\n    name_prefix: p_k");
    let (code, out, dir) = check_files(
        &settings,
        GOOD_SCENE.replace("region: na", "region: NA").as_bytes(),
    );
    assert_eq!(code, EXIT_INVALID);
    let settings_file = dir.join("pullkeeper.yaml").display().to_string();
    assert!(
        out.contains(&format!(
            "{settings_file}:6:18: projects[0].name_prefix: invalid prefix \"p_k\""
        )),
        "{out}"
    );
    assert!(
        out.contains("projects[0].customer_id: environment variable MISSING_VAR is not set"),
        "{out}"
    );
    assert!(
        out.contains("scenes.yaml:6:13: scenes[0].region: region \"NA\" must be lowercase"),
        "{out}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_narrow_uid_range_is_a_warning_and_check_still_passes() {
    let narrow = GOOD_SCENE.replace("end: 1999", "end: 1010");
    let (code, out, dir) = check_files(SETTINGS, narrow.as_bytes());
    std::fs::remove_dir_all(&dir).unwrap();
    let out = out.replace(&dir.display().to_string(), "DIR");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "DIR/scenes.yaml:8:11: scenes[0].uids: warning: uid range 1000..=1010 holds 11 uids, \
         under 4 × (1 + backups) = 12: replacements may wait for a UID to come out of uid_quarantine\n\
         ok: 1 projects, 1 scenes\n"
    );
    let too_narrow = GOOD_SCENE.replace("end: 1999", "end: 1001");
    assert_eq!(
        exact(too_narrow.as_bytes()),
        "DIR/scenes.yaml:8:11: scenes[0].uids: uid range 1000..=1001 holds 2 uids but the scene needs at least 3 (1 + backups)\n"
    );
}

/// Runs `check` on a broken scenes file and returns its whole output, with the temporary
/// directory written as `DIR`, so the catalogue can state exactly what a user sees.
fn exact(scenes: &[u8]) -> String {
    let (code, out, dir) = check_files(SETTINGS, scenes);
    assert_eq!(code, EXIT_INVALID, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
    out.replace(&dir.display().to_string(), "DIR")
}

#[test]
fn alias_bomb_is_stopped_by_the_budget() {
    // Ten levels of ten aliases each: 10^10 nodes if expanded. The node budget (room for
    // 100,000 scenes) still stops it on line 7.
    let mut bomb = String::from("scenes:\n  - &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb += &format!("  - &a{i} [{refs}]\n");
    }
    assert_eq!(
        exact(bomb.as_bytes()),
        "DIR/scenes.yaml:7:45: the document is too large to load: its aliases expand beyond the \
         parser's limits (a \"billion laughs\" document?); write the values out instead\n"
    );
}

#[test]
fn oversized_file_is_refused() {
    let mut scenes = GOOD_SCENE.to_string();
    scenes += &format!("# {}\n", "x".repeat(MAX_FILE_BYTES));
    assert_eq!(
        exact(scenes.as_bytes()),
        "DIR/scenes.yaml: file is larger than the limit of 16777216 bytes (16 MiB)\n"
    );
}

#[test]
fn non_utf8_file_is_refused() {
    let mut scenes = GOOD_SCENE.as_bytes().to_vec();
    scenes.extend_from_slice(b"# caf\xe9\n");
    assert_eq!(
        exact(&scenes),
        "DIR/scenes.yaml:9:6: file is not valid UTF-8 (invalid byte at offset 188); save it as UTF-8\n"
    );
}

/// The `Env` trait is object-safe and usable with a custom source.
#[test]
fn custom_env_source() {
    struct Fixed;
    impl Env for Fixed {
        fn var(&self, name: &str) -> Option<String> {
            Some(format!("{name}-value"))
        }
    }
    let (_, _, dir) = check_files(SETTINGS, GOOD_SCENE.as_bytes());
    let cfg = config::load_with_env(&dir.join("pullkeeper.yaml"), &Fixed).unwrap();
    assert_eq!(
        cfg.settings.projects[0].customer_id.expose_secret(),
        "CID-value"
    );
    assert_eq!(
        cfg.settings.projects[0].ncs_secret.expose_secret(),
        "ncs-value"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `check --no-secrets` on the real binary: settings whose secrets name unset variables
/// and missing files pass (a GitOps lint has none of them), while everything else is
/// still checked: a bad scene or an inline secret fails as without the flag.
#[test]
fn check_without_secrets_validates_everything_but_their_values() {
    let dir = temp_dir();
    let settings = SETTINGS.replace("{ file: ncs }", "{ file: missing/ncs-secret }")
        + "app_webhook: { url: \"https://hooks.example.com/onair\", secret: { env: PK_IT_UNSET_HOOK } }\n";
    std::fs::write(dir.join("pullkeeper.yaml"), &settings).unwrap();
    std::fs::write(dir.join("scenes.yaml"), GOOD_SCENE).unwrap();
    let check = |no_secrets: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pullkeeper"));
        command.arg("check");
        if no_secrets {
            command.arg("--no-secrets");
        }
        let out = command
            .arg("--config")
            .arg(dir.join("pullkeeper.yaml"))
            .env_remove("CID")
            .env_remove("CSECRET")
            .env_remove("PK_IT_UNSET_HOOK")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };

    let (code, out) = check(true);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok: 1 projects, 1 scenes (secrets not read)"),
        "{out}"
    );
    let (code, out) = check(false);
    assert_eq!(code, Some(EXIT_INVALID), "{out}");
    for unread in ["CID", "CSECRET", "PK_IT_UNSET_HOOK", "missing/ncs-secret"] {
        assert!(out.contains(unread), "{unread} not reported:\n{out}");
    }

    std::fs::write(
        dir.join("scenes.yaml"),
        GOOD_SCENE.replace("backups: 2", "backups: many"),
    )
    .unwrap();
    let (code, out) = check(true);
    assert_eq!(code, Some(EXIT_INVALID), "{out}");
    assert!(out.contains("backups"), "{out}");
    std::fs::write(dir.join("scenes.yaml"), GOOD_SCENE).unwrap();
    std::fs::write(
        dir.join("pullkeeper.yaml"),
        settings.replace("{ env: CID }", "inline-id"),
    )
    .unwrap();
    let (code, out) = check(true);
    assert_eq!(code, Some(EXIT_INVALID), "{out}");
    assert!(out.contains("secrets must come from env or file"), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}
