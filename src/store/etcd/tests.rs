//! The etcd backend against the store's contract and its own promises, on real etcd
//! servers started for each test.

use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{EtcdOptions, LocalEtcd};
use crate::model::{Phase, RECORD_VERSION, Region, SlotKey, SlotRecord};
use crate::store::contract::{Harness, PROJECTS, Place, contract_tests};
use crate::store::{Leadership, Store, StoreError};

/// The shortest ttl `check` accepts; tests that wait for an expiry wait for this one.
const TTL: Duration = Duration::from_secs(3);

fn options(server: &LocalEtcd, prefix: &str, replica: &str) -> EtcdOptions {
    EtcdOptions {
        endpoints: vec![server.endpoint()],
        prefix: prefix.to_string(),
        ttl: TTL,
        credentials: None,
        ca_file: None,
        installation: "test".into(),
        replica: replica.into(),
        projects: PROJECTS.iter().map(|p| p.to_string()).collect(),
    }
}

/// A replica: its store, its leadership, and the task that keeps it.
struct Replica {
    store: Store,
    leadership: Leadership,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Replica {
    fn start(options: &EtcdOptions) -> Replica {
        let store = Store::etcd(options).expect("etcd store");
        let leadership = store.leadership().clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (leadership, stop) = (leadership.clone(), stop.clone());
            async move { leadership.run(stop).await }
        });
        Replica {
            store,
            leadership,
            stop,
            task,
        }
    }

    async fn leads_all(&self) {
        for project in PROJECTS {
            tokio::time::timeout(4 * TTL, self.leadership.term(project))
                .await
                .unwrap_or_else(|_| panic!("never led {project}"));
        }
    }

    /// Stops as a clean shutdown does: the lease is given back.
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// One server and a prefix of its own; a reopen stops the replica opened before.
struct EtcdPlace {
    server: LocalEtcd,
    prefix: String,
    running: Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
}

impl Place for EtcdPlace {
    async fn open(&self) -> Store {
        let before = self.running.lock().unwrap().take();
        if let Some((stop, task)) = before {
            stop.cancel();
            task.await.unwrap();
        }
        let replica = Replica::start(&options(&self.server, &self.prefix, "r1"));
        replica.leads_all().await;
        *self.running.lock().unwrap() = Some((replica.stop, replica.task));
        replica.store
    }
}

struct Etcd;

impl Harness for Etcd {
    async fn place(&self) -> impl Place {
        EtcdPlace {
            server: LocalEtcd::start().expect("etcd"),
            prefix: format!("/pk-{}/", uuid::Uuid::new_v4()),
            running: Mutex::new(None),
        }
    }
}

contract_tests!(Etcd);

fn record(name: &str) -> SlotRecord {
    SlotRecord {
        v: RECORD_VERSION,
        name: name.into(),
        uid: 1,
        generation: 1,
        phase: Phase::Intended,
        region: Region::Na,
        id: None,
        created_at_ms: 5,
        spec: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reads_and_writes_and_a_successor_finds_what_it_flushed() {
    let server = LocalEtcd::start().unwrap();
    let a = Replica::start(&options(&server, "/pk/", "a"));
    a.leads_all().await;
    let b = Replica::start(&options(&server, "/pk/", "b"));
    tokio::time::sleep(TTL).await;
    let key = SlotKey::new("p", "s", 0);
    assert!(matches!(
        b.store.put_slot(&key, &record("x")),
        Err(StoreError::NotLeader { .. })
    ));
    assert_eq!(
        b.leadership.leaders().get("p").map(String::as_str),
        Some("a")
    );
    a.store.put_slot(&key, &record("written")).unwrap();
    a.store.flush().await.unwrap();
    a.store.put_slot(&key, &record("never flushed")).unwrap();
    a.stop().await;
    b.leads_all().await;
    assert_eq!(b.store.slot(&key).unwrap().unwrap().name, "written");
    assert_eq!(
        b.leadership.leaders().get("p").map(String::as_str),
        Some("b")
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_stops_acting_and_its_flush_writes_nothing() {
    let server = LocalEtcd::start().unwrap();
    let a = Replica::start(&options(&server, "/pk/", "a"));
    a.leads_all().await;
    // `a` freezes as a paused process would: no renewal, no shutdown, its state still
    // in memory and still believed led.
    a.task.abort();
    let b = Replica::start(&options(&server, "/pk/", "b"));
    tokio::time::timeout(4 * TTL, b.leadership.term("p"))
        .await
        .expect("b takes over once a's lease expires");
    assert!(!a.leadership.acting("p"), "past its own deadline");
    let key = SlotKey::new("p", "s", 0);
    b.store.put_slot(&key, &record("from b")).unwrap();
    b.store.flush().await.unwrap();
    a.store.put_slot(&key, &record("from a")).unwrap();
    assert!(matches!(
        a.store.flush().await,
        Err(StoreError::NotLeader { .. })
    ));
    b.stop().await;
    let c = Replica::start(&options(&server, "/pk/", "c"));
    c.leads_all().await;
    assert_eq!(c.store.slot(&key).unwrap().unwrap().name, "from b");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_larger_than_one_transaction_is_written_whole() {
    let place = Etcd.place().await;
    let store = place.open().await;
    for i in 0..300 {
        store
            .put_slot(&SlotKey::new("p", "s", i), &record(&format!("n{i}")))
            .unwrap();
    }
    store.flush().await.unwrap();
    drop(store);
    let store = place.open().await;
    assert_eq!(store.project_slots("p").unwrap().len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_installation_on_the_same_prefix_refuses_its_projects() {
    let server = LocalEtcd::start().unwrap();
    let first = Replica::start(&options(&server, "/pk/", "a"));
    first.leads_all().await;
    first.stop().await;
    let other = EtcdOptions {
        installation: "other".into(),
        ..options(&server, "/pk/", "b")
    };
    let second = Replica::start(&other);
    tokio::time::sleep(2 * TTL).await;
    assert_eq!(second.leadership.refused(), vec!["p", "p1", "p10"]);
    assert!(!second.leadership.acting("p"));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_gone_a_leader_stops_acting_within_the_ttl_and_leads_again_when_it_returns() {
    let mut server = LocalEtcd::start().unwrap();
    let a = Replica::start(&options(&server, "/pk/", "a"));
    a.leads_all().await;
    let term = a.leadership.term("p").await;
    assert!(a.leadership.acting("p"));
    server.kill();
    let lost = tokio::time::Instant::now();
    tokio::time::timeout(TTL, term.cancelled())
        .await
        .expect("the term ends within the ttl");
    assert!(!a.leadership.acting("p"));
    assert!(lost.elapsed() <= TTL);
    server.restart().unwrap();
    tokio::time::timeout(4 * TTL, a.leadership.term("p"))
        .await
        .expect("led again once etcd is back");
    assert!(a.leadership.acting("p"));
    a.stop().await;
}

#[test]
fn renewals_every_third_of_the_ttl_scans_every_second_and_acting_stops_a_margin_before_the_end() {
    let options = |ttl: u64| EtcdOptions {
        // Never contacted: opening connects lazily.
        endpoints: vec!["http://127.0.0.1:9".into()],
        prefix: "/pk/".into(),
        ttl: Duration::from_secs(ttl),
        credentials: None,
        ca_file: None,
        installation: "test".into(),
        replica: "r".into(),
        projects: vec![],
    };
    let (_, leader) = super::open(&options(10)).unwrap();
    assert_eq!(
        leader.period(),
        Duration::from_millis(3333) + Duration::from_nanos(333_333)
    );
    assert_eq!(
        leader.margin(),
        Duration::from_secs(2),
        "README: 8 s after the last renewal at ttl 10 s"
    );
    assert_eq!(
        leader.scan_period(),
        Duration::from_secs(1),
        "README: the keys are read every second"
    );
    assert_eq!(
        leader.settle_time(),
        Duration::from_secs(10),
        "README: a joining replica is given projects after one ttl"
    );
    let (_, leader) = super::open(&options(3)).unwrap();
    assert_eq!(leader.margin(), Duration::from_secs(1), "at least 1 s");
    assert_eq!(leader.scan_period(), Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_the_right_password_leads_and_a_wrong_one_names_endpoint_user_and_cause() {
    let server = LocalEtcd::start().unwrap();
    crate::crypto::install_provider();
    let http = reqwest::Client::new();
    for (path, body) in [
        ("user/add", r#"{"name":"root","password":"s3cret"}"#),
        ("role/add", r#"{"name":"root"}"#),
        ("user/grant", r#"{"user":"root","role":"root"}"#),
        ("enable", "{}"),
    ] {
        let answer = http
            .post(format!("{}/v3/auth/{path}", server.endpoint()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{path}");
    }
    let with_password = |password: &str| EtcdOptions {
        credentials: Some(super::Credentials {
            user: "root".into(),
            password: password.to_string().into(),
        }),
        ..options(&server, "/pk/", "a")
    };
    let wrong = with_password("wrong-one");
    let gateway = super::gateway::Gateway::new(
        &wrong.endpoints,
        wrong.credentials.clone(),
        Duration::from_secs(2),
        super::tls_config(None).unwrap(),
    )
    .unwrap();
    let error = gateway.range(b"/pk/x", b"").await.unwrap_err().to_string();
    assert!(error.contains(&server.endpoint()), "{error}");
    assert!(
        error.contains("\"root\"") && error.contains("authentication failed"),
        "{error}"
    );
    assert!(
        !error.contains("wrong-one"),
        "the password never shows: {error}"
    );
    let a = Replica::start(&with_password("s3cret"));
    a.leads_all().await;
    let key = SlotKey::new("p", "s", 0);
    a.store.put_slot(&key, &record("x")).unwrap();
    a.store.flush().await.unwrap();
    a.stop().await;
}

/// A self-signed certificate for 127.0.0.1, by the openssl CLI: `(cert.pem, key.pem)`.
fn self_signed(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl CLI runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_configured_ca_is_trusted_and_another_is_an_error_naming_endpoint_and_cause() {
    let dir = std::env::temp_dir().join(format!("pk-etcd-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed(&dir, "etcd");
    let (stranger, _) = self_signed(&dir, "stranger");
    let server = LocalEtcd::start_tls(&cert, &key).expect("etcd serves TLS");
    assert!(server.endpoint().starts_with("https://"));
    let trusting = |ca: &std::path::Path| EtcdOptions {
        ca_file: Some(ca.to_path_buf()),
        ..options(&server, "/pk/", "a")
    };
    let wrong = trusting(&stranger);
    let gateway = super::gateway::Gateway::new(
        &wrong.endpoints,
        None,
        Duration::from_secs(2),
        super::tls_config(wrong.ca_file.as_deref()).unwrap(),
    )
    .unwrap();
    let error = gateway.range(b"/pk/x", b"").await.unwrap_err().to_string();
    assert!(error.contains(&server.endpoint()), "{error}");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    let a = Replica::start(&trusting(&cert));
    a.leads_all().await;
    let key = SlotKey::new("p", "s", 0);
    a.store.put_slot(&key, &record("over tls")).unwrap();
    a.store.flush().await.unwrap();
    a.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch larger than one transaction commits chunk by chunk in key order (see
/// `EtcdBackend::commit`): a notice's pending record and position must sort before its id.
#[test]
fn a_notices_record_commits_no_later_than_its_id() {
    use crate::store::trees::{NOTICE_IDS, NOTICE_POSITIONS, PENDING_NOTICES};
    assert!(PENDING_NOTICES < NOTICE_IDS);
    assert!(NOTICE_POSITIONS < NOTICE_IDS);
}
