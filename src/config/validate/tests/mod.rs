//! One test per scene rule, checking the exact message, path and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use crate::config::*;

mod sources;

fn project(id: &str) -> Project {
    Project {
        id: id.into(),
        app_id: "abc".into(),
        customer_id: SecretString::from("x"),
        customer_secret: SecretString::from("x"),
        ncs_secret: SecretString::from("x"),
        api: ApiSettings {
            primary_domain: PrimaryDomain::AgoraIo,
            base_url: None,
            timeout: Duration::from_secs(10),
            area: Some(crate::agora::domains::Region::UsEast),
            scheme: "https".into(),
            return_to_primary_after: Duration::from_secs(300),
            resolve: Default::default(),
        },
        limits: Limits::default(),
        name_prefix: "pk".into(),
    }
}

fn settings() -> Settings {
    Settings {
        server: ServerSettings {
            listen: "127.0.0.1:1".parse().unwrap(),
            metrics_listen: None,
            admin_token: None,
            tls: None,
        },
        store: StoreSettings {
            path: PathBuf::from("s"),
            backend: crate::config::StoreBackend::Sled,
        },
        leader: crate::config::LeaderSettings {
            ttl: Duration::from_secs(10),
            replica: "r".into(),
            advertise: None,
        },
        reconcile: ReconcileSettings {
            poll_interval: Duration::from_secs(5),
            list_lag: Duration::from_secs(12),
            check_interval: None,
            uid_quarantine: Duration::from_secs(600),
            rejected_retry: Duration::from_secs(600),
        },
        scenes_file: PathBuf::from("scenes.yaml"),
        projects: vec![project("demo"), project("second")],
        app_webhook: None,
        reports: ReportSettings {
            window: Duration::from_secs(30),
            threshold: 3,
        },
        ncs_allowlist: NcsAllowlist {
            enforce: false,
            refresh_interval: Duration::from_secs(24 * 3600),
            trusted_proxies: Vec::new(),
        },
        source_probe: None,
        events: crate::config::EventSettings {
            per_scene: 1000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        },
    }
}

/// A valid scene at line 2 with `extra` lines appended (after `replace` edits).
fn scene(name: &str, edits: &[(&str, &str)]) -> String {
    let mut s = format!(
        "  - name: {name}\n    project: demo\n    channel: news\n    stream_url: rtmp://h/a\n    region: na\n    backups: 1\n    idle_timeout: 300\n    uids: {{ start: 1, end: 10 }}\n"
    );
    for (from, to) in edits {
        s = s.replace(from, to);
    }
    s
}

fn run(body: &str) -> Result<Vec<Scene>, Vec<Diagnostic>> {
    let text = format!("scenes:\n{body}");
    parse_scenes_with_env(Path::new("s.yaml"), &text, &settings(), &HashMap::new())
        .map_err(|e| e.diagnostics)
}

/// The single diagnostic, as (line, path, message).
fn one(body: &str) -> (Option<usize>, String, String) {
    let d = run(body).unwrap_err();
    assert_eq!(d.len(), 1, "{d:#?}");
    (d[0].line, d[0].path.clone(), d[0].message.clone())
}

#[test]
fn valid_scene_gets_defaults() {
    let s = run("  - {name: a, project: demo, channel: c, stream_url: 'http://h', region: cn, uids: {start: 5, end: 5}}\n").unwrap();
    assert_eq!(
        (s[0].backups, s[0].priority, s[0].idle_timeout),
        (0, 0, 300)
    );
    assert_eq!(s[0].uids, UidRange { start: 5, end: 5 });
    assert!(s[0].token.is_none());
    assert_eq!(s[0].failback, Failback::Revertive);
    assert_eq!(s[0].hold_down, Duration::from_secs(30));
    assert_eq!(s[0].strike_threshold, 3);
    assert!(s[0].app_webhook.is_none());
    assert!(s[0].effective_app_webhook(&settings()).is_none());
}

#[test]
fn failover_fields_are_read() {
    let s = run(&scene(
        "a",
        &[(
            "region: na",
            "region: na\n    failback: non-revertive\n    hold_down: 0s\n    strikes: 10",
        )],
    ))
    .unwrap();
    assert_eq!(s[0].failback, Failback::NonRevertive);
    assert_eq!(s[0].hold_down, Duration::ZERO);
    assert_eq!(s[0].strike_threshold, 10);
    let s = run(&scene(
        "a",
        &[(
            "region: na",
            "region: na\n    failback: revertive\n    hold_down: 10m\n    strikes: 1",
        )],
    ))
    .unwrap();
    assert_eq!(s[0].failback, Failback::Revertive);
    assert_eq!(s[0].hold_down, Duration::from_secs(600));
    assert_eq!(s[0].strike_threshold, 1);
}

#[test]
fn unknown_failback_names_the_accepted_values() {
    assert_eq!(
        one(&scene(
            "a",
            &[("region: na", "region: na\n    failback: sideways")]
        )),
        (
            Some(7),
            "scenes[0].failback".into(),
            "unknown variant `sideways`, expected one of revertive, non-revertive".into()
        )
    );
}

#[test]
fn hold_down_range() {
    assert_eq!(
        one(&scene(
            "a",
            &[("region: na", "region: na\n    hold_down: 601s")]
        )),
        (
            Some(7),
            "scenes[0].hold_down".into(),
            "hold_down must be between 0s and 10m, got 601s".into()
        )
    );
    assert_eq!(
        one(&scene(
            "a",
            &[("region: na", "region: na\n    hold_down: 30")]
        )),
        (
            Some(7),
            "scenes[0].hold_down".into(),
            format!(
                "invalid duration \"30\": {}",
                crate::config::duration::ACCEPTED_FORMS
            )
        )
    );
}

#[test]
fn strikes_range() {
    assert_eq!(
        one(&scene("a", &[("region: na", "region: na\n    strikes: 0")])),
        (
            Some(7),
            "scenes[0].strikes".into(),
            "strikes must be between 1 and 10, got 0".into()
        )
    );
    assert_eq!(
        one(&scene(
            "a",
            &[("region: na", "region: na\n    strikes: 11")]
        )),
        (
            Some(7),
            "scenes[0].strikes".into(),
            "strikes must be between 1 and 10, got 11".into()
        )
    );
}

#[test]
fn scene_app_webhook_overrides_the_global_one() {
    let text = format!(
        "scenes:\n{}",
        scene(
            "a",
            &[(
                "region: na",
                "region: na\n    app_webhook: { url: 'https://app.example.com/hook', secret: {env: HOOK} }",
            )]
        )
    );
    let env = HashMap::from([("HOOK".to_string(), "h00k".to_string())]);
    let mut global = settings();
    global.app_webhook = Some(AppWebhook {
        url: "http://global".into(),
        secret: SecretString::from("g"),
        timeout: Duration::from_secs(1),
    });
    let s = parse_scenes_with_env(Path::new("s.yaml"), &text, &global, &env).unwrap();
    let hook = s[0].app_webhook.as_ref().unwrap();
    assert_eq!(hook.url, "https://app.example.com/hook");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&hook.secret), "h00k");
    assert_eq!(hook.timeout, Duration::from_secs(5));
    assert_eq!(
        s[0].effective_app_webhook(&global).unwrap().url,
        "https://app.example.com/hook"
    );
    assert!(!format!("{:?}", s[0]).contains("h00k"));

    let plain = run(&scene("a", &[])).unwrap();
    assert_eq!(
        plain[0].effective_app_webhook(&global).unwrap().url,
        "http://global"
    );
}

#[test]
fn scene_app_webhook_rules() {
    assert_eq!(
        one(&scene(
            "a",
            &[(
                "region: na",
                "region: na\n    app_webhook:\n      url: https://h/x\n      secret: hunter2",
            )]
        )),
        (
            Some(9),
            "scenes[0].app_webhook.secret".into(),
            crate::config::secret::INLINE_SECRET.into()
        )
    );
    let d = run(&scene(
        "a",
        &[(
            "region: na",
            "region: na\n    app_webhook:\n      url: ftp://h/x\n      secret: {env: HOOK}\n      timeout: 0s",
        )],
    ))
    .unwrap_err();
    let got: Vec<(Option<usize>, &str, &str)> = d
        .iter()
        .map(|d| (d.line, d.path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Some(8),
                "scenes[0].app_webhook.url",
                "invalid url \"ftp://h/x\": expected http://HOST[:PORT][/PATH] or https://..."
            ),
            (
                Some(9),
                "scenes[0].app_webhook.secret",
                "environment variable HOOK is not set"
            ),
            (
                Some(10),
                "scenes[0].app_webhook.timeout",
                "must be greater than zero"
            ),
        ]
    );
}

#[test]
fn empty_scenes() {
    let d = run("").unwrap_err();
    assert_eq!(d[0].message, "no scenes: at least one scene is required");
    let d = run("  []\n").unwrap_err();
    assert_eq!(d[0].message, "no scenes: at least one scene is required");
    assert_eq!(d[0].line, Some(2));
}

#[test]
fn scene_name_charset_and_length() {
    assert_eq!(
        one(&scene("News_1", &[])),
        (
            Some(2),
            "scenes[0].name".into(),
            "scene name \"News_1\" contains 'N'; allowed: a-z, 0-9 and '-'".into()
        )
    );
    let long = "a".repeat(33);
    assert_eq!(
        one(&scene(&long, &[])).2,
        "scene name must be 1 to 32 bytes, got 33"
    );
}

#[test]
fn unknown_project() {
    assert_eq!(
        one(&scene("a", &[("project: demo", "project: nope")])),
        (
            Some(3),
            "scenes[0].project".into(),
            "unknown project \"nope\": expected one of demo, second".into()
        )
    );
}

#[test]
fn channel_rules() {
    let long = "c".repeat(65);
    assert_eq!(
        one(&scene(
            "a",
            &[("channel: news", &format!("channel: {long}"))]
        )),
        (
            Some(4),
            "scenes[0].channel".into(),
            "channel is 65 bytes; the limit is 64".into()
        )
    );
    assert_eq!(
        one(&scene("a", &[("channel: news", "channel: 'a/b'")])).2,
        "channel contains '/', which Agora does not allow in channel names"
    );
    assert_eq!(
        one(&scene("a", &[("channel: news", "channel: ''")])).2,
        "channel must not be empty"
    );
}

#[test]
fn stream_url_rules() {
    assert_eq!(
        one(&scene("a", &[("rtmp://h/a", "ftp://h/a")])),
        (
            Some(5),
            "scenes[0].stream_url".into(),
            "stream_url must be rtmp://, rtmps://, http:// or https:// followed by a host".into()
        )
    );
    let long = format!("rtmp://h/{}", "x".repeat(1020));
    assert_eq!(
        one(&scene("a", &[("rtmp://h/a", &long)])).2,
        "stream_url is 1029 bytes; the limit is 1024"
    );
}

#[test]
fn region_must_be_lowercase_and_known() {
    assert_eq!(
        one(&scene("a", &[("region: na", "region: NA")])),
        (
            Some(6),
            "scenes[0].region".into(),
            "region \"NA\" must be lowercase: write \"na\"".into()
        )
    );
    assert_eq!(
        one(&scene("a", &[("region: na", "region: us")])).2,
        "unknown region \"us\": expected one of na, eu, ap, cn"
    );
}

#[test]
fn backups_and_idle_timeout_ranges() {
    assert_eq!(
        one(&scene(
            "a",
            &[("backups: 1", "backups: 11"), ("end: 10", "end: 100")]
        )),
        (
            Some(7),
            "scenes[0].backups".into(),
            "backups must be between 0 and 10, got 11".into()
        )
    );
    assert_eq!(
        one(&scene("a", &[("idle_timeout: 300", "idle_timeout: 4")])),
        (
            Some(8),
            "scenes[0].idle_timeout".into(),
            "idle_timeout (seconds) must be between 5 and 600, got 4".into()
        )
    );
    assert_eq!(
        one(&scene("a", &[("idle_timeout: 300", "idle_timeout: 601")])).2,
        "idle_timeout (seconds) must be between 5 and 600, got 601"
    );
}

#[test]
fn uid_range_rules() {
    assert_eq!(
        one(&scene("a", &[("start: 1,", "start: 0,")])),
        (
            Some(9),
            "scenes[0].uids.start".into(),
            "uid must be between 1 and 4294967295, got 0".into()
        )
    );
    assert_eq!(
        one(&scene("a", &[("end: 10", "end: 4294967296")])).2,
        "uid must be between 1 and 4294967295, got 4294967296"
    );
    assert_eq!(
        one(&scene("a", &[("start: 1,", "start: 11,")])),
        (
            Some(9),
            "scenes[0].uids".into(),
            "uid range is reversed: start 11 is greater than end 10".into()
        )
    );
    assert_eq!(
        one(&scene(
            "a",
            &[("backups: 1", "backups: 2"), ("end: 10", "end: 2")]
        ))
        .2,
        "uid range 1..=2 holds 2 uids but the scene needs at least 3 (1 + backups)"
    );
}

#[test]
fn duplicate_names() {
    let body = scene("a", &[]) + &scene("a", &[("start: 1, end: 10", "start: 20, end: 30")]);
    assert_eq!(
        one(&body),
        (
            Some(10),
            "scenes[1].name".into(),
            "duplicate scene name \"a\"".into()
        )
    );
    // The operator still reads where the name was first defined, from its own field.
    assert_eq!(
        run(&body).unwrap_err()[0].to_string(),
        "s.yaml:10:11: scenes[1].name: duplicate scene name \"a\" (first defined at line 2, column 11)"
    );
}

#[test]
fn overlapping_uids_in_one_channel_name_both_scenes() {
    let body = scene("a", &[]) + &scene("b", &[("start: 1, end: 10", "start: 10, end: 30")]);
    assert_eq!(
        one(&body),
        (
            Some(17),
            "scenes[1].uids".into(),
            "uids 10..=30 of scene \"b\" overlap uids 1..=10 of scene \"a\" in channel \"news\" of project \"demo\"".into()
        )
    );
    // Another channel or another project may reuse the range.
    let other = scene("a", &[]) + &scene("b", &[("channel: news", "channel: other")]);
    assert!(run(&other).is_ok());
    let other = scene("a", &[]) + &scene("b", &[("project: demo", "project: second")]);
    assert!(run(&other).is_ok());
}

#[test]
fn every_bad_scene_is_reported() {
    // A type error in one scene, an unknown field in another, a rule broken in a third.
    let body = scene("a", &[("backups: 1", "backups: many")])
        + &scene(
            "b",
            &[
                ("region: na", "region: na\n    colour: red"),
                ("start: 1, end: 10", "start: 20, end: 30"),
            ],
        )
        + &scene(
            "c",
            &[
                ("region: na", "region: EU"),
                ("start: 1, end: 10", "start: 40, end: 50"),
            ],
        );
    let d = run(&body).unwrap_err();
    let got: Vec<(Option<usize>, &str)> = d.iter().map(|d| (d.line, d.path.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (Some(7), "scenes[0].backups"),
            (Some(15), "scenes[1].colour"),
            (Some(23), "scenes[2].region")
        ],
        "{d:#?}"
    );
}

#[test]
fn inline_token_is_refused_and_env_token_resolved() {
    let d = one(&scene("a", &[("region: na", "region: na\n    token: abc")]));
    assert_eq!(d.1, "scenes[0].token");
    assert!(
        d.2.starts_with("secrets must come from env or file"),
        "{}",
        d.2
    );
    let text = format!(
        "scenes:\n{}",
        scene("a", &[("region: na", "region: na\n    token: {env: TOK}")])
    );
    let env = HashMap::from([("TOK".to_string(), "t0k".to_string())]);
    let s = parse_scenes_with_env(Path::new("s.yaml"), &text, &settings(), &env).unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(s[0].token.as_ref().unwrap()),
        "t0k"
    );
}

/// The warnings of a scenes file that loads.
fn warnings(body: &str) -> Vec<Diagnostic> {
    let text = format!("scenes:\n{body}");
    let mut out = Vec::new();
    crate::config::scenes::parse_into(
        Path::new("s.yaml"),
        &text,
        &settings(),
        &HashMap::new(),
        &mut out,
    );
    assert!(out.iter().all(Diagnostic::is_warning), "{out:#?}");
    out
}

#[test]
fn a_uid_range_under_four_per_player_is_a_warning_not_an_error() {
    // backups: 1, so 2 players: 8 UIDs are enough, 7 load with a warning.
    assert!(warnings(&scene("a", &[("end: 10", "end: 8")])).is_empty());
    let narrow = scene("a", &[("end: 10", "end: 7")]);
    assert!(run(&narrow).is_ok(), "a warning does not refuse the scenes");
    let w = warnings(&narrow);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!((w[0].line, w[0].path.as_str()), (Some(9), "scenes[0].uids"));
    assert_eq!(
        w[0].message,
        "uid range 1..=7 holds 7 uids, under 4 × (1 + backups) = 8: \
         replacements may wait for a UID to come out of uid_quarantine"
    );
    assert_eq!(super::UID_RANGE_ADVISED, 4);
}
