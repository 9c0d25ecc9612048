//! The [`StateStore`](super::StateStore) contract, as tests every backend runs: each
//! backend's test module instantiates them with [`contract_tests!`] and a [`Harness`]
//! of its own.

use crate::model::{Phase, RECORD_VERSION, Region, SlotKey, SlotRecord};
use crate::store::{Store, StoreError, UidRequest};
use std::collections::HashSet;
use std::future::Future;

/// Where a backend keeps one store's state, so a test can open it again as a restarted
/// process would.
pub(super) trait Place {
    /// Opens the store here, ready to read and write projects `p`, `p1` and `p10`. The
    /// store opened before must have been dropped.
    fn open(&self) -> impl Future<Output = Store>;
}

/// Makes empty places of one backend.
pub(super) trait Harness {
    fn place(&self) -> impl Future<Output = impl Place>;
}

/// The projects every contract test writes.
pub(super) const PROJECTS: [&str; 3] = ["p", "p1", "p10"];

/// Nothing held in the channel.
static NONE_HELD: std::sync::LazyLock<HashSet<u32>> = std::sync::LazyLock::new(HashSet::new);

const MINUTE: u64 = 60_000;
/// The default `uid_quarantine`.
const QUARANTINE: u64 = 10 * MINUTE;

fn req<'a>(
    project: &'a str,
    scene: &'a str,
    channel: &'a str,
    start: u32,
    end: u32,
    name: &'a str,
) -> UidRequest<'a> {
    UidRequest {
        project,
        scene,
        channel,
        start,
        end,
        name,
        held: &NONE_HELD,
        now_ms: 0,
        quarantine_ms: QUARANTINE,
    }
}

/// A request for scene `s` in channel `ch`, range 1..=3, at `now_ms`.
fn at<'a>(now_ms: u64, held: &'a HashSet<u32>) -> UidRequest<'a> {
    UidRequest {
        now_ms,
        held,
        ..req("p", "s", "ch", 1, 3, "n")
    }
}

fn record(name: &str, uid: u32) -> SlotRecord {
    SlotRecord {
        v: RECORD_VERSION,
        name: name.into(),
        uid,
        generation: 1,
        phase: Phase::Intended,
        region: Region::Na,
        id: None,
        created_at_ms: 5,
        spec: None,
    }
}

pub(super) async fn slots_round_trip_and_scan_by_project<H: Harness>(h: &H) {
    let store = h.place().await.open().await;
    let a = SlotKey::new("p1", "news", 0);
    let b = SlotKey::new("p1", "news", 1);
    let c = SlotKey::new("p10", "news", 0);
    store.put_slot(&a, &record("pk_news_0_1", 1)).unwrap();
    store.put_slot(&b, &record("pk_news_1_1", 2)).unwrap();
    store.put_slot(&c, &record("pk_news_0_1", 1)).unwrap();
    assert_eq!(store.slot(&a).unwrap().unwrap().uid, 1);
    let scanned = store.project_slots("p1").unwrap();
    assert_eq!(scanned.len(), 2, "p10 must not leak into p1's scan");
    store.remove_slot(&a).unwrap();
    assert_eq!(store.slot(&a).unwrap(), None);
}

pub(super) async fn uids_are_never_handed_out_twice<H: Harness>(h: &H) {
    let store = h.place().await.open().await;
    assert!(store.note_uid("p", "ch", 101, "foreign").unwrap());
    let got: Vec<u32> = (0..3)
        .map(|i| {
            store
                .allocate_uid(&req("p", "news", "ch", 100, 104, &format!("n{i}")))
                .unwrap()
        })
        .collect();
    assert_eq!(got, vec![100, 102, 103]);
    assert_eq!(
        store
            .allocate_uid(&req("p", "news", "ch", 100, 104, "n3"))
            .unwrap(),
        104
    );
    assert!(matches!(
        store.allocate_uid(&req("p", "news", "ch", 100, 104, "n4")),
        Err(StoreError::UidsExhausted { .. })
    ));
    // Another channel has its own UID space.
    assert_eq!(
        store
            .allocate_uid(&req("p", "other", "ch2", 100, 104, "x"))
            .unwrap(),
        100
    );
}

/// Allocates at `now_ms` as the executor does: excluding what `held` holds, which then
/// holds the new UID too.
fn allocate(store: &Store, now_ms: u64, held: &mut HashSet<u32>) -> Result<u32, StoreError> {
    let uid = store.allocate_uid(&at(now_ms, held))?;
    held.insert(uid);
    Ok(uid)
}

/// The executor's release: the player is gone and the record let go of the UID.
fn release(store: &Store, uid: u32, at_ms: u64, held: &mut HashSet<u32>) {
    store.release_uids("p", "ch", &[uid], at_ms).unwrap();
    held.remove(&uid);
}

pub(super) async fn a_released_uid_is_handed_out_again_only_after_its_quarantine<H: Harness>(
    h: &H,
) {
    let store = h.place().await.open().await;
    let mut held = HashSet::new();
    let t0 = 100 * MINUTE;
    let got: Vec<u32> = (0..3)
        .map(|_| allocate(&store, t0, &mut held).unwrap())
        .collect();
    assert_eq!(got, vec![1, 2, 3], "never-used UIDs first, lowest first");
    release(&store, 2, t0 + MINUTE, &mut held);
    release(&store, 3, t0, &mut held);
    let inside = t0 + MINUTE + QUARANTINE - 1;
    assert_eq!(store.free_uids(&at(inside, &held)).unwrap(), 1);
    assert_eq!(
        allocate(&store, inside, &mut held).unwrap(),
        3,
        "3 is out of quarantine, 2 is not yet"
    );
    assert!(matches!(
        allocate(&store, inside, &mut held),
        Err(StoreError::UidsExhausted { .. })
    ));
    assert_eq!(store.free_uids(&at(inside, &held)).unwrap(), 0);
    let after = t0 + MINUTE + QUARANTINE;
    assert_eq!(allocate(&store, after, &mut held).unwrap(), 2);
    assert!(
        allocate(&store, after * 10, &mut held).is_err(),
        "held UIDs stay held however long ago they were handed out"
    );
}

pub(super) async fn the_uid_released_longest_ago_goes_first_and_held_ones_never<H: Harness>(h: &H) {
    let store = h.place().await.open().await;
    let mut held = HashSet::new();
    let t0 = 100 * MINUTE;
    for _ in 0..3 {
        allocate(&store, t0, &mut held).unwrap();
    }
    release(&store, 1, t0 + 2, &mut held);
    release(&store, 2, t0 + 1, &mut held);
    release(&store, 3, t0 + 3, &mut held);
    let later = t0 + 2 * QUARANTINE;
    // A foreign player in the channel took 2 meanwhile (List shows it).
    held.insert(2);
    assert_eq!(store.free_uids(&at(later, &held)).unwrap(), 2);
    assert_eq!(
        allocate(&store, later, &mut held).unwrap(),
        1,
        "2 went first but a live player holds it"
    );
    held.remove(&2);
    assert_eq!(allocate(&store, later, &mut held).unwrap(), 2);
    // 3 held again (Agora's migration brought a task back) and gone again while the
    // process was down: its old release no longer counts, the restart does.
    store.hold_uids("p", "ch", &[3]).unwrap();
    release(&store, 1, later, &mut held);
    let restart = later + QUARANTINE;
    store.uids_unknown_until("p", restart).unwrap();
    assert_eq!(allocate(&store, restart, &mut held).unwrap(), 1);
    assert!(allocate(&store, restart + QUARANTINE - 1, &mut held).is_err());
    assert_eq!(
        allocate(&store, restart + QUARANTINE, &mut held).unwrap(),
        3
    );
}

pub(super) async fn a_restart_counts_uids_of_unknown_fate_as_released_at_the_restart<H: Harness>(
    h: &H,
) {
    let store = h.place().await.open().await;
    let mut held = HashSet::new();
    let t0 = 100 * MINUTE;
    for _ in 0..2 {
        allocate(&store, t0, &mut held).unwrap();
    }
    // 1 was seen released before the stop; 2 was held when the process stopped; 3 was
    // seen in List only (no release ever recorded).
    release(&store, 1, t0, &mut held);
    assert!(store.note_uid("p", "ch", 3, "foreign").unwrap());
    let restart = t0 + 3 * QUARANTINE;
    store.uids_unknown_until("p", restart).unwrap();
    store.uids_unknown_until("p", t0).unwrap();
    let mut held = HashSet::new();
    assert_eq!(
        store.free_uids(&at(restart, &held)).unwrap(),
        1,
        "only 1, whose release was seen, is out of quarantine; the start never moves back"
    );
    assert_eq!(allocate(&store, restart, &mut held).unwrap(), 1);
    assert!(allocate(&store, restart + QUARANTINE - 1, &mut held).is_err());
    assert_eq!(
        store.free_uids(&at(restart + QUARANTINE, &held)).unwrap(),
        2
    );
}

pub(super) async fn a_raised_high_water_mark_is_never_allocated_below_nor_lowered<H: Harness>(
    h: &H,
) {
    let store = h.place().await.open().await;
    store.raise_uid_hwm("p", "news", 150).unwrap();
    store.raise_uid_hwm("p", "news", 120).unwrap();
    assert_eq!(
        store
            .free_uids(&req("p", "news", "ch", 100, 199, "a"))
            .unwrap(),
        49
    );
    assert_eq!(
        store
            .allocate_uid(&req("p", "news", "ch", 100, 199, "a"))
            .unwrap(),
        151
    );
}

pub(super) async fn update_sequences_increase_per_player<H: Harness>(h: &H) {
    let store = h.place().await.open().await;
    let got: Vec<u64> = (0..3)
        .map(|_| store.next_sequence("p", "a", 0).unwrap())
        .collect();
    assert_eq!(got, vec![0, 1, 2]);
    assert_eq!(store.next_sequence("p", "b", 0).unwrap(), 0);
    assert_eq!(
        store.next_sequence("p", "a", 100).unwrap(),
        100,
        "the floor lifts it"
    );
    assert_eq!(
        store.next_sequence("p", "a", 50).unwrap(),
        101,
        "and it never goes back"
    );
}

pub(super) async fn concurrent_writers_sharing_flushes_all_end_durable<H: Harness>(h: &H) {
    let place = h.place().await;
    {
        let store = place.open().await;
        let writers: Vec<_> = (0..32u32)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let key = SlotKey::new("p", "s", i);
                    store.put_slot(&key, &record(&format!("n{i}"), i)).unwrap();
                    store.flush().await.unwrap();
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
    }
    let store = place.open().await;
    assert_eq!(store.project_slots("p").unwrap().len(), 32);
}

pub(super) async fn survives_reopen<H: Harness>(h: &H) {
    let place = h.place().await;
    {
        let store = place.open().await;
        store
            .allocate_uid(&req("p", "s", "ch", 1, 10, "a"))
            .unwrap();
        store
            .put_slot(&SlotKey::new("p", "s", 0), &record("a", 1))
            .unwrap();
        store.put_api_calls("p", "create", &[5, 7]).unwrap();
        store
            .put_api_calls("p", "create", &[7, 9, u64::MAX])
            .unwrap();
        store.flush().await.unwrap();
    }
    let store = place.open().await;
    assert!(store.uid_known("p", "ch", 1).unwrap());
    assert_eq!(store.api_calls("p", "create").unwrap(), [7, 9, u64::MAX]);
    assert_eq!(store.api_calls("p", "list").unwrap(), Vec::<u64>::new());
    assert_eq!(
        store
            .allocate_uid(&req("p", "s", "ch", 1, 10, "b"))
            .unwrap(),
        2
    );
}

fn pending(key: &str, player: &str, lts: u64, stage: u8) -> crate::store::PendingNotice {
    crate::store::PendingNotice {
        project: "p".into(),
        key: key.into(),
        body: format!("body of {key}").into_bytes(),
        player: player.into(),
        position: crate::store::NoticePosition { lts, stage },
    }
}

pub(super) async fn pending_notices_round_trip_and_positions_only_rise<H: Harness>(h: &H) {
    let store = h.place().await.open().await;
    store.put_notice(&pending("k2", "a", 200, 1)).unwrap();
    // Written after a newer one of the same player: kept, but the position stays.
    store.put_notice(&pending("k1", "a", 100, 2)).unwrap();
    store.put_notice(&pending("k3", "b", 50, 0)).unwrap();
    let mut all = store.pending_notices().unwrap();
    all.sort_by_key(|p| p.position);
    assert_eq!(
        all,
        [
            pending("k3", "b", 50, 0),
            pending("k1", "a", 100, 2),
            pending("k2", "a", 200, 1)
        ]
    );
    let mut positions: Vec<_> = store
        .notice_positions()
        .unwrap()
        .into_iter()
        .map(|p| (p.project, p.player, p.position.lts, p.position.stage))
        .collect();
    positions.sort();
    assert_eq!(
        positions,
        [
            ("p".into(), "a".into(), 200, 1),
            ("p".into(), "b".into(), 50, 0)
        ]
    );
    store
        .notices_applied("p", &["k1".to_string(), "k3".to_string()])
        .unwrap();
    assert_eq!(
        store.pending_notices().unwrap(),
        [pending("k2", "a", 200, 1)]
    );
    assert_eq!(store.forget_notice_positions(100).unwrap(), 1);
    assert_eq!(store.notice_positions().unwrap().len(), 1);
}

fn rejection(updates_only: bool, message: &str, until_ms: u64) -> crate::store::Rejection {
    crate::store::Rejection {
        updates_only,
        message: message.into(),
        wanted: record("a", 1).spec,
        until_ms,
    }
}

pub(super) async fn rejections_are_kept_per_slot_and_kind_across_a_reopen<H: Harness>(h: &H) {
    let place = h.place().await;
    let (s0, s1, other) = (
        SlotKey::new("p", "s", 0),
        SlotKey::new("p", "s", 1),
        SlotKey::new("p1", "s", 0),
    );
    {
        let store = place.open().await;
        store
            .put_rejection(&s0, &rejection(false, "old", 1))
            .unwrap();
        store
            .put_rejection(&s0, &rejection(false, "HTTP 400", 5))
            .unwrap();
        store
            .put_rejection(&s0, &rejection(true, "HTTP 403", 6))
            .unwrap();
        store
            .put_rejection(&s1, &rejection(false, "gone", 7))
            .unwrap();
        store
            .put_rejection(&other, &rejection(false, "p1's", 8))
            .unwrap();
        store.remove_rejection(&s1, false).unwrap();
        store.remove_rejection(&s1, true).unwrap();
        store.flush().await.unwrap();
    }
    let store = place.open().await;
    assert_eq!(
        store.project_rejections("p").unwrap(),
        [
            (s0.clone(), rejection(false, "HTTP 400", 5)),
            (s0, rejection(true, "HTTP 403", 6))
        ]
    );
    assert_eq!(
        store.project_rejections("p1").unwrap(),
        [(other, rejection(false, "p1's", 8))]
    );
}

fn event(at_ms: u64, scene: &str, slot: u32) -> crate::model::Event {
    let kind = crate::model::EventKind::Held {
        source: "primary".into(),
    };
    crate::model::Event::new(at_ms, scene, kind).slot(slot)
}

/// The slots of a scene's events as read, newest first.
fn event_slots(store: &Store, project: &str, scene: &str, since_ms: u64) -> Vec<u32> {
    store
        .scene_events(project, scene, usize::MAX, since_ms)
        .unwrap()
        .into_iter()
        .map(|e| e.slot.unwrap())
        .collect()
}

pub(super) async fn scene_events_read_newest_first_trim_and_survive_reopen<H: Harness>(h: &H) {
    let place = h.place().await;
    {
        let store = place.open().await;
        // Two events in one millisecond keep the order they were appended in.
        for (at_ms, slot) in [(10, 0), (20, 1), (20, 2), (30, 3)] {
            store
                .append_event("p", &event(at_ms, "news", slot))
                .unwrap();
        }
        // A scene whose name extends another's, and another project's scene, apart.
        store.append_event("p", &event(15, "news2", 9)).unwrap();
        store.append_event("p1", &event(15, "news", 8)).unwrap();
        store.flush().await.unwrap();
    }
    let store = place.open().await;
    assert_eq!(event_slots(&store, "p", "news", 0), [3, 2, 1, 0]);
    assert_eq!(event_slots(&store, "p", "news", 20), [3, 2, 1]);
    let two = store.scene_events("p", "news", 2, 0).unwrap();
    assert_eq!(two, [event(30, "news", 3), event(20, "news", 2)]);
    assert_eq!(event_slots(&store, "p", "news2", 0), [9]);
    assert_eq!(event_slots(&store, "p1", "news", 0), [8]);
    // The newest 3, then what is older than 25 ms: other scenes untouched.
    assert_eq!(store.trim_events("p", "news", 3, 0).unwrap(), 1);
    assert_eq!(event_slots(&store, "p", "news", 0), [3, 2, 1]);
    assert_eq!(store.trim_events("p", "news", 3, 25).unwrap(), 2);
    assert_eq!(event_slots(&store, "p", "news", 0), [3]);
    assert_eq!(store.forget_events(16).unwrap(), 2, "news2 and p1's news");
    assert_eq!(event_slots(&store, "p", "news", 0), [3]);
    assert!(event_slots(&store, "p1", "news", 0).is_empty());
}

pub(super) async fn scene_controls_survive_reopen_per_project_and_empty_ones_go<H: Harness>(h: &H) {
    use crate::model::{Maintenance, MaintenanceBy, SceneControl};
    let place = h.place().await;
    let pinned = SceneControl {
        pinned: Some(1),
        maintenance: None,
    };
    let maintained = SceneControl {
        pinned: None,
        maintenance: Some(Maintenance {
            since_ms: 77,
            by: MaintenanceBy::Api,
        }),
    };
    {
        let store = place.open().await;
        store.put_scene_control("p", "news", &pinned).unwrap();
        store.put_scene_control("p", "sport", &maintained).unwrap();
        store.put_scene_control("p1", "news", &maintained).unwrap();
        store.put_scene_control("p", "gone", &pinned).unwrap();
        store
            .put_scene_control("p", "gone", &SceneControl::default())
            .unwrap();
        store.flush().await.unwrap();
    }
    let store = place.open().await;
    assert_eq!(
        store.scene_controls("p").unwrap(),
        [
            ("news".to_string(), pinned),
            ("sport".to_string(), maintained)
        ]
    );
    assert_eq!(
        store.scene_controls("p1").unwrap(),
        [("news".to_string(), maintained)]
    );
    assert!(store.scene_controls("p10").unwrap().is_empty());
}

/// Instantiates every contract test for a backend: `contract_tests!(harness_expr)`
/// inside the backend's test module.
macro_rules! contract_tests {
    ($harness:expr) => {
        $crate::store::contract::contract_tests!(@each $harness;
            slots_round_trip_and_scan_by_project,
            uids_are_never_handed_out_twice,
            a_released_uid_is_handed_out_again_only_after_its_quarantine,
            the_uid_released_longest_ago_goes_first_and_held_ones_never,
            a_restart_counts_uids_of_unknown_fate_as_released_at_the_restart,
            a_raised_high_water_mark_is_never_allocated_below_nor_lowered,
            update_sequences_increase_per_player,
            concurrent_writers_sharing_flushes_all_end_durable,
            survives_reopen,
            pending_notices_round_trip_and_positions_only_rise,
            rejections_are_kept_per_slot_and_kind_across_a_reopen,
            scene_events_read_newest_first_trim_and_survive_reopen,
            scene_controls_survive_reopen_per_project_and_empty_ones_go,
        );
    };
    (@each $harness:expr; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::store::contract::$name(&$harness).await;
            }
        )*
    };
}
pub(super) use contract_tests;
