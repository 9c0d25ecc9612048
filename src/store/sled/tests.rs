//! The embedded backend against the [`StateStore`] contract.

use super::*;
use crate::model::{Phase, RECORD_VERSION, Region};
use crate::store::Store;

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

#[test]
fn slots_round_trip_and_scan_by_project() {
    let store = Store::temporary().unwrap();
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

#[test]
fn uids_are_never_handed_out_twice() {
    let store = Store::temporary().unwrap();
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

#[test]
fn a_raised_high_water_mark_is_never_allocated_below_nor_lowered() {
    let store = Store::temporary().unwrap();
    store.raise_uid_hwm("p", "news", 150).unwrap();
    store.raise_uid_hwm("p", "news", 120).unwrap();
    assert_eq!(
        store
            .allocate_uid(&req("p", "news", "ch", 100, 199, "a"))
            .unwrap(),
        151
    );
}

#[test]
fn update_sequences_increase_per_player() {
    let store = Store::temporary().unwrap();
    let got: Vec<u64> = (0..3)
        .map(|_| store.next_sequence("a", 0).unwrap())
        .collect();
    assert_eq!(got, vec![0, 1, 2]);
    assert_eq!(store.next_sequence("b", 0).unwrap(), 0);
    assert_eq!(
        store.next_sequence("a", 100).unwrap(),
        100,
        "the floor lifts it"
    );
    assert_eq!(
        store.next_sequence("a", 50).unwrap(),
        101,
        "and it never goes back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_sharing_flushes_all_end_durable() {
    let dir = std::env::temp_dir().join(format!("pk-store-{}", uuid::Uuid::new_v4()));
    {
        let store = Store::open(&dir).unwrap();
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
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.project_slots("p").unwrap().len(), 32);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn survives_reopen() {
    let dir = std::env::temp_dir().join(format!("pk-store-{}", uuid::Uuid::new_v4()));
    {
        let store = Store::open(&dir).unwrap();
        store
            .allocate_uid(&req("p", "s", "ch", 1, 10, "a"))
            .unwrap();
        store
            .put_slot(&SlotKey::new("p", "s", 0), &record("a", 1))
            .unwrap();
        store.flush().await.unwrap();
    }
    let store = Store::open(&dir).unwrap();
    assert!(store.uid_known("p", "ch", 1).unwrap());
    assert_eq!(
        store
            .allocate_uid(&req("p", "s", "ch", 1, 10, "b"))
            .unwrap(),
        2
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
