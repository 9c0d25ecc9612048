//! Tests of the process settings: defaults, the app webhook, the admin token and reports.

use super::store::RawLeader;
use super::*;
use crate::config::diagnostic::Diagnostic;
use crate::config::secret::INLINE_SECRET;
use crate::config::yaml;
use secrecy::ExposeSecret;
use std::collections::HashMap;

const PROJECTS: &str = "\
projects:
  - id: demo
    app_id: abc
    customer_id: { env: CID }
    customer_secret: { env: CID }
    ncs_secret: { env: CID }
    api: { area: eu-central }
";

fn env() -> HashMap<String, String> {
    HashMap::from([
        ("CID".to_string(), "cid".to_string()),
        ("TOKEN".to_string(), "t0ken".to_string()),
        ("HOOK".to_string(), "h00k".to_string()),
    ])
}

/// Builds settings from `head` followed by one project (which starts at line
/// `head.lines().count() + 1`).
fn load(head: &str) -> Result<Settings, Vec<Diagnostic>> {
    let file = Path::new("p.yaml");
    let text = format!("{head}{PROJECTS}");
    let raw = yaml::parse::<RawSettings>(file, &text, "").map_err(|d| vec![d])?;
    let mut out = Vec::new();
    let settings = build(
        raw,
        file,
        &env(),
        &mut Diags {
            file,
            out: &mut out,
        },
    );
    if out.is_empty() {
        Ok(settings)
    } else {
        Err(out)
    }
}

/// The single diagnostic, as (line, path, message).
fn one(head: &str) -> (Option<usize>, String, String) {
    let d = load(head).unwrap_err();
    assert_eq!(d.len(), 1, "{d:#?}");
    (d[0].line, d[0].path.clone(), d[0].message.clone())
}

#[test]
fn new_settings_default_to_off_and_documented_values() {
    let s = load("").unwrap();
    assert!(s.server.admin_token.is_none());
    assert!(s.app_webhook.is_none());
    assert_eq!(
        s.reports,
        ReportSettings {
            window: Duration::from_secs(30),
            threshold: 3
        }
    );
}

#[test]
fn admin_token_webhook_and_reports_are_read() {
    let s = load(
        "server: { admin_token: { env: TOKEN } }\n\
         app_webhook:\n  url: https://app.example.com/on-air\n  secret: { env: HOOK }\n\
         reports: { window: 1m, threshold: 1 }\n",
    )
    .unwrap();
    assert_eq!(
        s.server.admin_token.as_ref().unwrap().expose_secret(),
        "t0ken"
    );
    let hook = s.app_webhook.as_ref().unwrap();
    assert_eq!(hook.url, "https://app.example.com/on-air");
    assert_eq!(hook.secret.expose_secret(), "h00k");
    assert_eq!(hook.timeout, Duration::from_secs(5));
    assert_eq!(s.reports.window, Duration::from_secs(60));
    assert_eq!(s.reports.threshold, 1);
    let dump = format!("{s:?}");
    assert!(!dump.contains("t0ken") && !dump.contains("h00k"), "{dump}");

    let s = load(
        "app_webhook: { url: 'http://10.0.0.1:8080', secret: { env: HOOK }, timeout: 500ms }\n",
    )
    .unwrap();
    assert_eq!(s.app_webhook.unwrap().timeout, Duration::from_millis(500));
}

#[test]
fn inline_webhook_secret_is_refused() {
    assert_eq!(
        one("app_webhook:\n  url: https://h/x\n  secret: hunter2\n"),
        (Some(3), "app_webhook.secret".into(), INLINE_SECRET.into())
    );
}

#[test]
fn inline_admin_token_is_refused() {
    assert_eq!(
        one("server:\n  admin_token: hunter2\n"),
        (Some(2), "server.admin_token".into(), INLINE_SECRET.into())
    );
}

#[test]
fn webhook_url_and_timeout_rules() {
    for bad in [
        "ftp://h/x",
        "https://",
        "https:///x",
        "app.example.com",
        "'http://h/a b'",
    ] {
        let (line, path, message) = one(&format!(
            "app_webhook:\n  url: {bad}\n  secret: {{ env: HOOK }}\n"
        ));
        assert_eq!((line, path.as_str()), (Some(2), "app_webhook.url"), "{bad}");
        assert!(
            message.ends_with(": expected http://HOST[:PORT][/PATH] or https://..."),
            "{bad}: {message}"
        );
    }
    assert_eq!(
        one("app_webhook:\n  url: https://h\n  secret: { env: HOOK }\n  timeout: 0s\n"),
        (
            Some(4),
            "app_webhook.timeout".into(),
            "must be greater than zero".into()
        )
    );
    assert_eq!(
        one("app_webhook:\n  url: https://h\n  secret: { env: NOPE }\n"),
        (
            Some(3),
            "app_webhook.secret".into(),
            "environment variable NOPE is not set".into()
        )
    );
    assert_eq!(
        one("app_webhook:\n  url: https://h\n"),
        (
            Some(2),
            "app_webhook".into(),
            "missing field `secret`".into()
        )
    );
}

#[test]
fn report_rules() {
    assert_eq!(
        one("reports:\n  threshold: 0\n"),
        (
            Some(2),
            "reports.threshold".into(),
            "must be at least 1".into()
        )
    );
    assert_eq!(
        one("reports:\n  window: 0s\n"),
        (
            Some(2),
            "reports.window".into(),
            "must be greater than zero".into()
        )
    );
}

#[test]
fn metrics_listen_and_ncs_allowlist_default_to_off() {
    let s = load("").unwrap();
    assert_eq!(s.server.metrics_listen, None);
    assert_eq!(
        s.ncs_allowlist,
        NcsAllowlist {
            enforce: false,
            refresh_interval: Duration::from_secs(24 * 3600),
            trusted_proxies: Vec::new(),
        }
    );
}

#[test]
fn metrics_listen_and_ncs_allowlist_are_read() {
    let s = load(
        "server: { listen: '0.0.0.0:8080', metrics_listen: '127.0.0.1:9090' }\n\
         ncs_allowlist:\n  enforce: true\n  refresh_interval: 6h\n  trusted_proxies: [10.0.0.0/8, 192.0.2.7, 'fd00::/8', 10.1.2.3/8]\n",
    )
    .unwrap();
    assert_eq!(
        s.server.metrics_listen,
        Some("127.0.0.1:9090".parse().unwrap())
    );
    assert!(s.ncs_allowlist.enforce);
    assert_eq!(
        s.ncs_allowlist.refresh_interval,
        Duration::from_secs(6 * 3600)
    );
    let nets: Vec<String> = s
        .ncs_allowlist
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    // A bare IP is its own /32; host bits of a CIDR are dropped.
    assert_eq!(
        nets,
        ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8", "10.0.0.0/8"]
    );
}

#[test]
fn bad_server_and_allowlist_values_name_line_and_field() {
    let (line, path, message) = one("server:\n  metrics_listen: localhost\n");
    assert_eq!((line, path.as_str()), (Some(2), "server.metrics_listen"));
    assert!(message.contains("expected IP:PORT"), "{message}");
    let (line, path, message) =
        one("server:\n  listen: 0.0.0.0:8080\n  metrics_listen: 0.0.0.0:8080\n");
    assert_eq!((line, path.as_str()), (Some(3), "server.metrics_listen"));
    assert!(message.contains("is server.listen too"), "{message}");
    let (line, path, message) = one("ncs_allowlist:\n  refresh_interval: 25h\n");
    assert_eq!(
        (line, path.as_str()),
        (Some(2), "ncs_allowlist.refresh_interval")
    );
    assert!(message.contains("at least every 24 hours"), "{message}");
    let (line, path, message) =
        one("ncs_allowlist:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - 10.0.0.300\n");
    assert_eq!(
        (line, path.as_str()),
        (Some(4), "ncs_allowlist.trusted_proxies[1]")
    );
    assert!(message.contains("expected an IP"), "{message}");
    let d = load("ncs_allowlist: { enforce: yes-please }\n").unwrap_err();
    assert_eq!(d[0].line, Some(1), "{d:#?}");
}

#[test]
fn source_probe_is_on_by_default_off_when_disabled_and_checks_its_bounds() {
    let defaults = SourceProbeSettings {
        interval: Duration::from_secs(5),
        max_interval: Duration::from_secs(8),
        timeout: Duration::from_secs(5),
    };
    assert_eq!(load("").unwrap().source_probe, Some(defaults.clone()));
    assert_eq!(
        load("source_probe: {}\n").unwrap().source_probe,
        Some(defaults)
    );
    assert_eq!(
        load("source_probe: { enabled: false }\n")
            .unwrap()
            .source_probe,
        None
    );
    assert!(
        load("source_probe:\n  enabled: true\n")
            .unwrap()
            .source_probe
            .is_some()
    );
    let s = load("source_probe: { interval: 2m, timeout: 1s }\n").unwrap();
    let p = s.source_probe.unwrap();
    assert_eq!(
        (p.interval, p.max_interval),
        (Duration::from_secs(120), Duration::from_secs(120))
    );
    assert_eq!(
        one("source_probe:\n  interval: 10s\n  max_interval: 5s\n"),
        (
            Some(3),
            "source_probe.max_interval".to_string(),
            "max_interval (5000 ms) must not be shorter than interval (10000 ms)".to_string()
        )
    );
    let (line, path, _) = one("source_probe: { timeout: 0s }\n");
    assert_eq!((line, path.as_str()), (Some(1), "source_probe.timeout"));
    // The opt-out written any other way is refused, with where and what is expected.
    for (text, path, message) in [
        (
            "source_probe:\n  enabled: maybe\n",
            "source_probe.enabled",
            "invalid boolean",
        ),
        (
            "store: {}\nsource_probe: off\n",
            "source_probe",
            "expected a mapping here",
        ),
    ] {
        let d = load(text).unwrap_err();
        assert_eq!((d[0].line, d[0].path.as_str()), (Some(2), path), "{d:#?}");
        assert!(d[0].message.contains(message), "{d:#?}");
    }
}

#[test]
fn rejected_retry_defaults_to_ten_minutes() {
    assert_eq!(
        load("").unwrap().reconcile.rejected_retry,
        Duration::from_secs(600)
    );
    assert_eq!(
        load("reconcile:\n  rejected_retry: 1h\n")
            .unwrap()
            .reconcile
            .rejected_retry,
        Duration::from_secs(3600)
    );
    let (line, path, _) = one("reconcile:\n  rejected_retry: 0s\n");
    assert_eq!((line, path.as_str()), (Some(2), "reconcile.rejected_retry"));
}

#[test]
fn uid_quarantine_defaults_to_ten_minutes_and_is_at_least_five() {
    assert_eq!(
        load("").unwrap().reconcile.uid_quarantine,
        Duration::from_secs(600)
    );
    assert_eq!(
        load("reconcile:\n  uid_quarantine: 5m\n")
            .unwrap()
            .reconcile
            .uid_quarantine,
        MIN_UID_QUARANTINE
    );
    assert_eq!(MIN_UID_QUARANTINE, Duration::from_secs(300));
    let (line, path, message) = one("reconcile:\n  uid_quarantine: 299s\n");
    assert_eq!((line, path.as_str()), (Some(2), "reconcile.uid_quarantine"));
    assert!(message.contains("at least 5m"), "{message}");
    let (line, _, _) = one("reconcile:\n  uid_quarantine: soon\n");
    assert_eq!(line, Some(2));
}

#[test]
fn the_store_is_sled_unless_etcd_is_asked_for_and_etcd_gets_its_defaults() {
    let s = load("").unwrap();
    assert!(matches!(s.store.backend, StoreBackend::Sled));
    assert_eq!(
        s.leader.ttl,
        Duration::from_secs(10),
        "README: leader.ttl 10 s"
    );
    let s = load(
        "store:\n  backend: etcd\n  etcd:\n    endpoints: [http://127.0.0.1:2379, https://etcd-1.etcd:2379/]\n    \
         prefix: /pk/prod/\n    ca_file: ca.pem\n    user: pk\n    password: { env: TOKEN }\n\
         leader: { ttl: 15s, replica: pod-a, advertise: http://10.0.0.7:8080 }\n",
    )
    .unwrap();
    let StoreBackend::Etcd(etcd) = &s.store.backend else {
        panic!("etcd expected")
    };
    assert_eq!(
        etcd.endpoints,
        ["http://127.0.0.1:2379", "https://etcd-1.etcd:2379"]
    );
    assert_eq!(etcd.installation, "/pk/prod/", "defaults to the prefix");
    assert_eq!(etcd.ca_file.as_deref(), Some(Path::new("ca.pem")));
    assert_eq!(etcd.password.as_ref().unwrap().expose_secret(), "t0ken");
    assert_eq!(
        s.leader,
        LeaderSettings {
            ttl: Duration::from_secs(15),
            replica: "pod-a".into(),
            advertise: Some("http://10.0.0.7:8080".into()),
        }
    );
}

#[test]
fn a_bad_advertised_address_is_named() {
    let (line, path, message) = one("leader:\n  advertise: 10.0.0.7:8080\n");
    assert_eq!((line, path.as_str()), (Some(2), "leader.advertise"));
    assert!(message.contains("expected http://HOST:PORT"), "{message}");
}

#[test]
fn a_bad_etcd_block_is_named_by_line_and_field() {
    let etcd = |body: &str| one(&format!("store:\n  backend: etcd\n  etcd:\n{body}"));
    let (line, path, message) = etcd("    endpoints: [etcd:2379]\n    prefix: /pk/\n");
    assert_eq!((line, path.as_str()), (Some(4), "store.etcd.endpoints[0]"));
    assert!(message.contains("http://HOST:PORT"), "{message}");
    let (_, path, _) = etcd("    endpoints: []\n    prefix: /pk/\n");
    assert_eq!(path, "store.etcd.endpoints");
    let (_, path, _) = etcd("    endpoints: [http://e:2379]\n    prefix: ''\n");
    assert_eq!(path, "store.etcd.prefix");
    let (_, path, message) = etcd("    endpoints: [https://e:2379]\n    prefix: /pk/\n");
    assert_eq!(path, "store.etcd.ca_file");
    assert!(message.contains("https"), "{message}");
    let (_, path, _) = etcd("    endpoints: [http://e:2379]\n    prefix: /pk/\n    user: pk\n");
    assert_eq!(path, "store.etcd.user");
    let (line, path, _) = one("store: { backend: etcd }\n");
    assert_eq!((line, path.as_str()), (Some(1), "store.etcd"));
    let (_, path, message) = one("store: { backend: redis }\n");
    assert_eq!(path, "store.backend");
    assert!(message.contains("sled or etcd"), "{message}");
}

#[test]
fn the_leader_ttl_is_at_least_three_seconds_and_the_replica_defaults_to_the_hostname() {
    let (line, path, message) = one("leader: { ttl: 2s }\n");
    assert_eq!((line, path.as_str()), (Some(1), "leader.ttl"));
    assert!(message.contains("at least 3 s"), "{message}");
    assert_eq!(MIN_LEADER_TTL, Duration::from_secs(3));
    assert_eq!(
        load("leader: { ttl: 3s }\n").unwrap().leader.ttl,
        Duration::from_secs(3)
    );
    let mut vars = env();
    vars.insert("HOSTNAME".into(), "pullkeeper-7d9f".into());
    let mut out = Vec::new();
    let raw = RawLeader::default();
    let file = Path::new("p.yaml");
    let leader = store::leader(
        &raw,
        &vars,
        &mut Diags {
            file,
            out: &mut out,
        },
    );
    assert_eq!(leader.replica, "pullkeeper-7d9f");
}

#[test]
fn events_keep_a_thousand_per_scene_for_a_week_by_default() {
    let s = load("").unwrap();
    assert_eq!(
        s.events,
        EventSettings {
            per_scene: 1000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    );
    let s = load("events: { per_scene: 50, max_age: 24h }\n").unwrap();
    assert_eq!(
        (s.events.per_scene, s.events.max_age),
        (50, Duration::from_secs(86_400))
    );
}

#[test]
fn event_bounds_out_of_range_are_named() {
    let (line, path, message) = one("events:\n  per_scene: 0\n");
    assert_eq!((line, path.as_str()), (Some(2), "events.per_scene"));
    assert_eq!(message, "expected 1 to 10000 events, got 0");
    let (_, path, message) = one("events:\n  per_scene: 10001\n");
    assert_eq!(path, "events.per_scene");
    assert!(message.contains("got 10001"), "{message}");
    let (line, path, message) = one("events:\n  max_age: 8d\n");
    assert_eq!((line, path.as_str()), (Some(2), "events.max_age"));
    assert!(message.contains("invalid duration"), "{message}");
    let (_, path, message) = one("events:\n  max_age: 169h\n");
    assert_eq!(path, "events.max_age");
    assert!(message.contains("at most 168h"), "{message}");
}
