//! UID reuse through the executor's own allocation path (`fresh_uid`, `write_slot`,
//! `note_uids`) against a real store, on tokio's paused clock.
//!
//! Driven here rather than against the simulator: a create through the API waits for the
//! create rate limiter and a List for the List lag, so 10,000 replacements would take
//! simulated hours of HTTP round trips. What decides whether a UID is free is the store
//! and the executor's picture of what is held, and both are exercised whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::{Instant, advance};

use super::*;
use crate::agora::client::Endpoint;
use crate::agora::{ApiLimiters, ClientConfig};
use crate::config::UidRange;
use crate::limits::{RateLimiter, WindowSpec};
use crate::reconcile::plan::created_spec;
use crate::store::{EventBounds, EventLog};

/// The default `uid_quarantine`.
const QUARANTINE: Duration = Duration::from_secs(600);
/// The replacement back-off's cap: how often a slot whose player keeps failing is
/// replaced at most.
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// How often a create that found no free UID is retried (the first retry wait).
const RETRY: Duration = Duration::from_secs(5);
/// Longer than any wait for a UID can be: the test fails instead of spinning forever.
const GIVE_UP: Duration = Duration::from_secs(3600);

/// A client that is never called: these tests stop short of Agora.
fn unused_client() -> Arc<MediaPullClient> {
    let limiter = || {
        RateLimiter::new([WindowSpec {
            limit: 1,
            length: Duration::from_secs(1),
        }])
    };
    Arc::new(
        MediaPullClient::new(ClientConfig {
            endpoint: Endpoint::Fixed("http://127.0.0.1:9".into()),
            app_id: "app".into(),
            customer_id: "id".to_string().into(),
            customer_secret: "secret".to_string().into(),
            timeout: Duration::from_secs(1),
            limiters: ApiLimiters {
                create_with_name: limiter(),
                create_without_name: limiter(),
                delete: limiter(),
                list: limiter(),
                list_filtered: limiter(),
                update: limiter(),
            },
        })
        .unwrap(),
    )
}

fn executor(project: &str, store: Store, clock: Clock, quarantine: Duration) -> Executor {
    let events = events(project, &store, clock);
    let notices = NoticeLog::for_projects(&store, vec![project.into()]).unwrap();
    Executor::new(
        project.into(),
        unused_client(),
        store,
        clock,
        quarantine,
        events,
        notices,
    )
}

fn events(project: &str, store: &Store, clock: Clock) -> ProjectEvents {
    let bounds = EventBounds {
        per_scene: 1000,
        max_age: Duration::from_secs(7 * 24 * 3600),
    };
    ProjectEvents::new(EventLog::new(store.clone(), bounds), project, "pk", clock)
}

/// What `Executor::create` does before and after it calls Agora: a UID, the intent, the
/// created record.
fn recreate(exec: &Executor, scene: &Scene, key: &SlotKey) -> Result<u32, StoreError> {
    let generation = exec.slots()?.get(key).map_or(1, |r| r.generation + 1);
    let name = format!("pk_{}_{}_{generation}", scene.name, role(key.slot));
    let uid = exec.fresh_uid(scene, &name)?;
    let mut record = SlotRecord {
        v: RECORD_VERSION,
        name,
        uid,
        generation,
        phase: Phase::Intended,
        region: scene.region,
        id: None,
        created_at_ms: exec.now_ms(),
        spec: Some(created_spec(scene, key.slot)),
    };
    exec.write_slot(key, Some(&record))?;
    record.phase = Phase::Created;
    record.id = Some(format!("id-{generation}"));
    exec.write_slot(key, Some(&record))?;
    Ok(uid)
}

/// Replaces the slot's player, retrying every [`RETRY`] while no UID is free, as the
/// launcher retries a failed create. Returns the UID and how long it waited.
async fn replace(exec: &Executor, scene: &Scene, key: &SlotKey) -> (u32, Duration) {
    let start = Instant::now();
    loop {
        match recreate(exec, scene, key) {
            Ok(uid) => return (uid, start.elapsed()),
            Err(StoreError::UidsExhausted { .. }) if start.elapsed() < GIVE_UP => {
                advance(RETRY).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// List's entry for a player of `scene` under `uid`.
fn listed(scene: &Scene, uid: u32) -> ListedPlayer {
    ListedPlayer {
        id: format!("id-{uid}"),
        name: Some(format!("pk_{}_m_x", scene.name)),
        stream_url: Some(scene.stream_url.clone()),
        channel_name: Some(scene.channel.clone()),
        uid: Some(u64::from(uid)),
        account: None,
        create_ts: 0,
        status: None,
    }
}

fn list(exec: &Executor, scene: &Scene, uids: &[u32]) {
    let players: Vec<ListedPlayer> = uids.iter().map(|&u| listed(scene, u)).collect();
    exec.note_uids(&players, "pk", std::slice::from_ref(scene));
}

fn test_scene(uids: UidRange) -> Scene {
    Scene {
        name: "news".into(),
        project: "p".into(),
        channel: "ch".into(),
        stream_url: "rtmp://h/live".into(),
        backup_stream_urls: Vec::new(),
        slate_url: None,
        region: Region::Na,
        backups: 0,
        priority: 0,
        idle_timeout: 300,
        token: None,
        volume: 100,
        uids,
        failback: crate::config::Failback::Revertive,
        hold_down: Duration::ZERO,
        maintenance: false,
        strike_threshold: 3,
        app_webhook: None,
    }
}

/// When each UID was last held, kept by the test from what it did, to check that no UID
/// is handed out again inside its quarantine.
#[derive(Default)]
struct Book {
    released: HashMap<u32, Instant>,
    current: Option<u32>,
}

impl Book {
    /// The slot moved from its previous UID to `uid` now.
    fn replaced(&mut self, uid: u32, quarantine: Duration) {
        if let Some(at) = self.released.get(&uid) {
            assert!(
                at.elapsed() >= quarantine,
                "UID {uid} handed out again {:?} after its release",
                at.elapsed()
            );
        }
        if let Some(old) = self.current.replace(uid) {
            self.released.insert(old, Instant::now());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_slot_that_fails_10000_times_in_a_10_uid_range_keeps_being_recreated() {
    let scene = test_scene(UidRange { start: 1, end: 10 });
    let exec = executor("p", Store::temporary().unwrap(), Clock::new(), QUARANTINE);
    let key = SlotKey::new("p", &scene.name, 0);
    list(&exec, &scene, &[]);
    let mut book = Book::default();
    let mut longest = Duration::ZERO;
    for _ in 0..10_000 {
        let (uid, waited) = replace(&exec, &scene, &key).await;
        book.replaced(uid, QUARANTINE);
        longest = longest.max(waited);
        // It runs and List shows it, until it fails and List no longer does.
        list(&exec, &scene, &[uid]);
        advance(BACKOFF_CAP).await;
        list(&exec, &scene, &[]);
    }
    assert!(
        longest < QUARANTINE,
        "a replacement waited {longest:?} for a UID"
    );
    assert_eq!(book.released.len(), 10, "every UID of the range was reused");
}

/// A persistent store directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        Dir(std::env::temp_dir().join(format!("pk-uids-{tag}-{}", uuid::Uuid::new_v4())))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One process's life: opens the store, sees what the first List shows.
fn start(dir: &Dir, clock: Clock, scene: &Scene, listed: &[u32]) -> Executor {
    let exec = executor(&scene.project, Store::reopen(dir.path()), clock, QUARANTINE);
    list(&exec, scene, listed);
    exec
}

async fn stop(exec: Executor) {
    exec.store.flush().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restart_never_shortens_a_quarantine() {
    let dir = Dir::new("restart");
    let clock = Clock::new();
    let scene = test_scene(UidRange { start: 1, end: 3 });
    let key = SlotKey::new("p", &scene.name, 0);

    let exec = start(&dir, clock, &scene, &[]);
    let (first, _) = replace(&exec, &scene, &key).await;
    list(&exec, &scene, &[first]);
    advance(BACKOFF_CAP).await;
    // The first player failed and was replaced, but List still shows it when the
    // process stops: when it really went away is unknown.
    let (second, _) = replace(&exec, &scene, &key).await;
    list(&exec, &scene, &[first, second]);
    advance(BACKOFF_CAP).await;
    stop(exec).await;

    // Down for longer than a quarantine.
    advance(2 * QUARANTINE).await;
    let restart = Instant::now();
    let exec = start(&dir, clock, &scene, &[second]);
    advance(BACKOFF_CAP).await;
    list(&exec, &scene, &[]);
    let (third, waited) = replace(&exec, &scene, &key).await;
    assert_eq!(
        (third, waited),
        (3, Duration::ZERO),
        "the never-used UID first"
    );
    list(&exec, &scene, &[third]);
    advance(BACKOFF_CAP).await;
    list(&exec, &scene, &[]);
    let (again, _) = replace(&exec, &scene, &key).await;
    assert_eq!(
        again, first,
        "the UID gone while the process was down, not the one released a minute ago"
    );
    assert_eq!(
        restart.elapsed(),
        QUARANTINE,
        "held back exactly one quarantine from the restart"
    );
}

#[tokio::test(start_paused = true)]
async fn the_demo_lobby_survives_100_quick_start_restarts() {
    let config = crate::config::load(Path::new("config/pullkeeper.yaml")).unwrap();
    let lobby = config
        .scenes
        .iter()
        .find(|s| s.name == "lobby")
        .unwrap()
        .clone();
    let quarantine = config.settings.reconcile.uid_quarantine;
    let dir = Dir::new("lobby");
    let clock = Clock::new();
    let slots: Vec<SlotKey> = (0..=lobby.backups)
        .map(|slot| SlotKey::new(&lobby.project, &lobby.name, slot))
        .collect();
    let mut books: Vec<Book> = slots.iter().map(|_| Book::default()).collect();
    let mut longest = Duration::ZERO;
    for _ in 0..100 {
        let exec = executor(&lobby.project, Store::reopen(dir.path()), clock, quarantine);
        // The embedded simulator starts empty: every remembered player is gone.
        list(&exec, &lobby, &[]);
        let mut uids = Vec::new();
        for (key, book) in slots.iter().zip(&mut books) {
            let (uid, waited) = replace(&exec, &lobby, key).await;
            book.replaced(uid, quarantine);
            longest = longest.max(waited);
            uids.push(uid);
        }
        list(&exec, &lobby, &uids);
        // A quick look at `status`, then Ctrl-C.
        advance(BACKOFF_CAP).await;
        stop(exec).await;
    }
    assert!(
        longest < quarantine,
        "a restart waited {longest:?} for lobby's UIDs"
    );
}
