//! What every fault case and the soak check afterwards: the scene converged, no QPS or
//! quota violation, no duplicate, no orphan, no healthy player deleted, every
//! acknowledged notice remembered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pullkeeper::App;
use pullkeeper::agora::wire::PlayerStatus;
use pullkeeper::model::SlotKey;
use pullkeeper::model::parse_name;
use pullkeeper::ncs::dedupe::NoticeLog;
use pullkeeper::ncs::intake::dedupe_key;
use pullkeeper::ncs::notice::Notice;
use pullkeeper::simulator::{DeliveryOutcome, SimHandle, Violations};
use pullkeeper::store::Store;

use crate::harness::APP_ID;

/// Live players per pullkeeper slot `(scene, slot)`. A failed player waiting for its
/// delete next to its replacement is not a duplicate: it holds no channel.
pub fn live_per_slot(sim: &SimHandle) -> BTreeMap<(String, u32), usize> {
    let mut slots = BTreeMap::new();
    for p in sim
        .players(APP_ID)
        .into_iter()
        .filter(|p| p.status != PlayerStatus::Failed)
    {
        if let Some(n) = p.name.as_deref().and_then(|n| parse_name("pk", n)) {
            *slots.entry((n.scene, n.slot)).or_insert(0) += 1;
        }
    }
    slots
}

/// More than one live player in one slot, summed over slots.
pub fn duplicates(sim: &SimHandle) -> usize {
    live_per_slot(sim)
        .values()
        .map(|n| n.saturating_sub(1))
        .sum()
}

/// Live players named as ours that no slot record of the store holds.
pub fn orphans(sim: &SimHandle, store: &Store) -> usize {
    sim.players(APP_ID)
        .iter()
        .filter(|p| {
            let Some(n) = p.name.as_deref().and_then(|n| parse_name("pk", n)) else {
                return false;
            };
            let record = store
                .slot(&SlotKey::new("e2e", &n.scene, n.slot))
                .ok()
                .flatten();
            record.is_none_or(|r| r.id.as_deref() != Some(p.id.as_str()))
        })
        .count()
}

/// Waits until every slot of `scenes` (`(name, players)`) has exactly one running player
/// and the app sees them all healthy; on timeout, shows both sides' view.
pub async fn converged(app: &App, sim: &SimHandle, scenes: &[(&str, u32)], limit: Duration) {
    let want: usize = scenes.iter().map(|s| s.1 as usize).sum();
    let done = || {
        let live = sim.players(APP_ID);
        let running = live
            .iter()
            .filter(|p| p.status == PlayerStatus::Running && !p.foreign)
            .count();
        let healthy = scenes.iter().all(|(name, n)| {
            app.board
                .get(name)
                .is_some_and(|s| s.healthy_players == *n && s.active_slot.is_some())
        });
        healthy && running == want && live.len() == want
    };
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            let live: Vec<_> = sim
                .players(APP_ID)
                .into_iter()
                .map(|p| (p.name, p.status))
                .collect();
            let board: Vec<_> = scenes.iter().map(|(n, _)| app.board.get(n)).collect();
            panic!("no convergence within {limit:?}\nlive: {live:?}\nboard: {board:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ids pullkeeper deleted, i.e. everything deleted with "Delete Request".
pub fn deleted_by_us(sim: &SimHandle) -> BTreeSet<String> {
    sim.history()
        .into_iter()
        .filter(|h| h.destroy_reason.as_deref() == Some("Delete Request"))
        .map(|h| h.id)
        .collect()
}

/// Notices the app answered 200 that its store does not remember.
pub fn lost_notices(sim: &SimHandle, store: &Store) -> usize {
    let log = NoticeLog::for_projects(store, vec!["e2e".to_string()]).unwrap();
    sim.notices_sent()
        .iter()
        .filter(|r| r.outcome == DeliveryOutcome::Delivered)
        .filter(|r| {
            let notice = Notice {
                notice_id: r.notice_id.clone(),
                product_id: 4,
                event_type: r.event_type,
                notify_ms: 0,
                payload: serde_json::Value::Null,
            };
            !log.contains(&dedupe_key("e2e", &notice)).unwrap()
        })
        .count()
}

/// The checks every case ends with. `failed` are the players the test failed on purpose:
/// the only ones pullkeeper may have deleted.
pub fn assert_clean(sim: &SimHandle, store: &Store, failed: &BTreeSet<String>) {
    assert_eq!(
        sim.violations(),
        Violations::default(),
        "QPS or quota violated"
    );
    assert_eq!(duplicates(sim), 0, "duplicates: {:?}", live_per_slot(sim));
    assert_eq!(orphans(sim, store), 0, "orphans");
    let healthy_deleted: Vec<String> = deleted_by_us(sim).difference(failed).cloned().collect();
    assert!(
        healthy_deleted.is_empty(),
        "deleted healthy players: {healthy_deleted:?}"
    );
    assert_eq!(
        lost_notices(sim, store),
        0,
        "acknowledged notices forgotten"
    );
}
