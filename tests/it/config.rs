//! End-to-end checks of configuration loading and `check`, on real files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use pullkeeper::config::{self, EXIT_INVALID, Env, Failback, MAX_FILE_BYTES, PrimaryDomain};
use secrecy::ExposeSecret;

const SETTINGS: &str = "\
server: { listen: \"127.0.0.1:0\" }
scenes_file: scenes.yaml
projects:
  - id: demo
    app_id: abc123
    customer_id: { env: CID }
    customer_secret: { env: CSECRET }
    ncs_secret: { file: ncs }
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

/// Every kind of bad scenes file, with the exact text `pullkeeper check` prints for it.
#[test]
fn catalogue_of_bad_scenes() {
    let other_scene = "  - name: replay\n    project: demo\n    channel: news-live\n    \
                       stream_url: rtmp://h/x\n    region: na\n    uids: { start: 1999, end: 2100 }\n";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "list where a number goes",
            GOOD_SCENE.replace("backups: 2", "backups: [2]"),
            "DIR/scenes.yaml:7:14: scenes[0].backups: expected a single value here, not a list or a mapping\n",
        ),
        (
            "word where a number goes",
            GOOD_SCENE.replace("backups: 2", "backups: two"),
            "DIR/scenes.yaml:7:14: scenes[0].backups: expected a whole number, got two\n",
        ),
        (
            "fraction where a whole number goes",
            GOOD_SCENE.replace("backups: 2", "backups: 2.5"),
            "DIR/scenes.yaml:7:14: scenes[0].backups: expected a whole number, got 2.5\n",
        ),
        (
            "number too large for any field",
            GOOD_SCENE.replace("backups: 2", "backups: 99999999999999999999"),
            "DIR/scenes.yaml:7:14: scenes[0].backups: the number 99999999999999999999 is too large\n",
        ),
        (
            "scalar where a mapping goes",
            GOOD_SCENE.replace("uids: { start: 1000, end: 1999 }", "uids: 5"),
            "DIR/scenes.yaml:8:11: scenes[0].uids: expected a mapping here (`key: value` lines or `{ key: value }`)\n",
        ),
        (
            "mapping where the list goes",
            "scenes: {}\n".to_string(),
            "DIR/scenes.yaml:1:9: scenes: expected a list here (`- item` lines or `[a, b]`)\n",
        ),
        (
            "empty value",
            GOOD_SCENE.replace("name: news", "name:"),
            "DIR/scenes.yaml:2:9: scenes[0].name: expected a value here, found nothing\n",
        ),
        (
            "missing field",
            GOOD_SCENE.replace("    region: na\n", ""),
            "DIR/scenes.yaml:7:5: scenes[0]: missing field `region`\n",
        ),
        (
            "unknown key",
            GOOD_SCENE.replace("backups: 2", "backups: 2\n    backup: 2"),
            "DIR/scenes.yaml:8:5: scenes[0].backup: unknown field `backup`, expected one of name, \
             project, channel, stream_url, backup_stream_urls, slate_url, region, backups, \
             priority, idle_timeout, token, volume, uids, failback, hold_down, strikes, \
             app_webhook\n",
        ),
        (
            "duplicate key",
            GOOD_SCENE.replace("backups: 2", "backups: 2\n    backups: 3"),
            "DIR/scenes.yaml:8:5: scenes[0]: duplicate mapping key: backups\n",
        ),
        (
            "top-level unknown key",
            format!("{GOOD_SCENE}extra: 1\n"),
            "DIR/scenes.yaml:9:1: extra: unknown field `extra`, expected one of scenes\n",
        ),
        (
            "forbidden channel character",
            GOOD_SCENE.replace("news-live", "'news\"live'"),
            "DIR/scenes.yaml:4:14: scenes[0].channel: channel contains '\"', which Agora does not allow in channel names\n",
        ),
        (
            "non-ASCII channel",
            GOOD_SCENE.replace("news-live", "café"),
            "DIR/scenes.yaml:4:14: scenes[0].channel: channel contains 'é', which Agora does not allow in channel names\n",
        ),
        (
            "empty scenes",
            "scenes: []\n".to_string(),
            "DIR/scenes.yaml:1:9: scenes: no scenes: at least one scene is required\n",
        ),
        (
            "empty file",
            "# nothing\n".to_string(),
            "DIR/scenes.yaml: no scenes: the file is empty; expected `scenes:` with at least one scene\n",
        ),
        (
            "UID range too small for the players",
            GOOD_SCENE.replace("end: 1999", "end: 1001"),
            "DIR/scenes.yaml:8:11: scenes[0].uids: uid range 1000..=1001 holds 2 uids but the scene \
             needs at least 3 (1 + backups)\n",
        ),
        (
            "UID beyond 32 bits",
            GOOD_SCENE.replace("end: 1999", "end: 4294967296"),
            "DIR/scenes.yaml:8:31: scenes[0].uids.end: uid must be between 1 and 4294967295, got 4294967296\n",
        ),
        (
            "upper-case region",
            GOOD_SCENE.replace("region: na", "region: NA"),
            "DIR/scenes.yaml:6:13: scenes[0].region: region \"NA\" must be lowercase: write \"na\"\n",
        ),
        (
            "idle timeout above the range",
            GOOD_SCENE.replace("backups: 2", "backups: 2\n    idle_timeout: 900"),
            "DIR/scenes.yaml:8:19: scenes[0].idle_timeout: idle_timeout (seconds) must be between 5 and 600, got 900\n",
        ),
        (
            "idle timeout below the range",
            GOOD_SCENE.replace("backups: 2", "backups: 2\n    idle_timeout: 4"),
            "DIR/scenes.yaml:8:19: scenes[0].idle_timeout: idle_timeout (seconds) must be between 5 and 600, got 4\n",
        ),
        (
            "unknown failback",
            GOOD_SCENE.replace("backups: 2", "backups: 2\n    failback: sideways"),
            "DIR/scenes.yaml:8:15: scenes[0].failback: unknown variant `sideways`, expected one of revertive, non-revertive\n",
        ),
        (
            "strikes out of range",
            GOOD_SCENE.replace("backups: 2", "backups: 2\n    strikes: 11"),
            "DIR/scenes.yaml:8:14: scenes[0].strikes: strikes must be between 1 and 10, got 11\n",
        ),
        (
            "volume out of range",
            GOOD_SCENE.replace("backups: 2", "backups: 2\n    volume: 201"),
            "DIR/scenes.yaml:8:13: scenes[0].volume: volume must be between 0 and 200, got 201\n",
        ),
        (
            "hold_down out of range",
            GOOD_SCENE.replace("backups: 2", "backups: 2\n    hold_down: 11m"),
            "DIR/scenes.yaml:8:16: scenes[0].hold_down: hold_down must be between 0s and 10m, got 11m\n",
        ),
        (
            "unknown project",
            GOOD_SCENE.replace("project: demo", "project: other"),
            "DIR/scenes.yaml:3:14: scenes[0].project: unknown project \"other\": expected one of demo\n",
        ),
        (
            "inline token",
            GOOD_SCENE.replace("backups: 2", "backups: 2\n    token: s3cr3t"),
            "DIR/scenes.yaml:8:12: scenes[0].token: secrets must come from env or file: write { env: NAME } or { file: PATH }\n",
        ),
        (
            "uid overlap",
            format!("{GOOD_SCENE}{other_scene}"),
            "DIR/scenes.yaml:14:11: scenes[1].uids: uids 1999..=2100 of scene \"replay\" overlap uids \
             1000..=1999 of scene \"news\" in channel \"news-live\" of project \"demo\"\n",
        ),
    ];
    for (what, scenes, expected) in cases {
        assert_eq!(exact(scenes.as_bytes()), expected, "{what}");
    }
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

#[test]
fn catalogue_of_bad_settings() {
    let cases: &[(&str, String, &str)] = &[
        (
            "bad duration",
            format!("reconcile: {{ poll_interval: 5 }}\n{SETTINGS}"),
            ":1:29: reconcile.poll_interval: invalid duration \"5\": expected a whole number followed by a unit",
        ),
        (
            "uid quarantine shorter than Agora's migration window",
            format!("reconcile: {{ uid_quarantine: 4m }}\n{SETTINGS}"),
            ":1:30: reconcile.uid_quarantine: must be at least 5m (Agora may bring a failed task back for up to 240 s), got 4m",
        ),
        (
            "zero duration",
            format!("reconcile: {{ list_lag: 0s }}\n{SETTINGS}"),
            ":1:24: reconcile.list_lag: must be greater than zero",
        ),
        (
            "bad listen",
            SETTINGS.replace("127.0.0.1:0", "localhost"),
            ":1:19: server.listen: invalid address \"localhost\"",
        ),
        (
            "unknown domain",
            SETTINGS.replace(
                "app_id: abc123",
                "app_id: abc123\n    api: { primary_domain: api.example.com }",
            ),
            ":6:28: projects[0].api.primary_domain: unknown variant",
        ),
        (
            "duplicate project",
            format!(
                "{SETTINGS}{}",
                &SETTINGS[SETTINGS.find("  - id").unwrap()..]
            ),
            ":9:9: projects[1].id: duplicate project id \"demo\"",
        ),
        (
            "bad project id",
            SETTINGS.replace("id: demo", "id: Demo"),
            ":4:9: projects[0].id: project id \"Demo\" contains 'D'",
        ),
        (
            "bad app id",
            SETTINGS.replace("abc123", "abc-123"),
            ":5:13: projects[0].app_id: expected a non-empty App ID",
        ),
        (
            "zero qps",
            SETTINGS.replace(
                "app_id: abc123",
                "app_id: abc123\n    limits: { qps: { delete: { per_second: 0 } } }",
            ),
            ":6:44: projects[0].limits.qps.delete.per_second: must be at least 1",
        ),
        (
            "missing secret file",
            SETTINGS.replace("file: ncs", "file: nope"),
            ":8:17: projects[0].ncs_secret: cannot read secret file",
        ),
        (
            "inline webhook secret",
            format!("app_webhook: {{ url: \"https://h/x\", secret: hunter2 }}\n{SETTINGS}"),
            ":1:44: app_webhook.secret: secrets must come from env or file",
        ),
        (
            "zero report threshold",
            format!("reports: {{ threshold: 0 }}\n{SETTINGS}"),
            ":1:23: reports.threshold: must be at least 1",
        ),
        (
            "no projects",
            "projects: []\n".to_string(),
            ":1:11: projects: no projects",
        ),
        (
            "missing scenes file",
            SETTINGS.replace("scenes_file: scenes.yaml", "scenes_file: other.yaml"),
            "other.yaml: cannot read file",
        ),
    ];
    for (what, settings, expected) in cases {
        let out = broken_settings(settings);
        assert!(
            out.contains(expected),
            "{what}: missing {expected:?} in:\n{out}"
        );
    }
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
