//! The catalogues: every kind of bad scenes file and bad settings file, each with the
//! exact text `pullkeeper check` prints for it.

use super::*;

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
             app_webhook, maintenance\n",
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
                "api: { area: us-east }",
                "api: { area: us-east, primary_domain: api.example.com }",
            ),
            ":9:43: projects[0].api.primary_domain: unknown variant",
        ),
        (
            "real API without an area",
            SETTINGS.replace("    api: { area: us-east }\n", ""),
            ":4:9: projects[0].api.area: required for the real API (no api.base_url): the region \
             the primary domain resolves to from this server, one of us-west, us-east, eu-west, \
             eu-central, ap-southeast, ap-northeast, cn-east, cn-north",
        ),
        (
            "an area that names no region",
            SETTINGS.replace("area: us-east", "area: eu"),
            ":9:18: projects[0].api.area: unknown region \"eu\": expected one of us-west,",
        ),
        (
            "duplicate project",
            format!(
                "{SETTINGS}{}",
                &SETTINGS[SETTINGS.find("  - id").unwrap()..]
            ),
            ":10:9: projects[1].id: duplicate project id \"demo\"",
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
