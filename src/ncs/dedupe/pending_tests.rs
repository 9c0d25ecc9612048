//! The acknowledged notices the log keeps: replayed until marked applied, across a torn
//! tail, a restart and the pruning of the segment they were first written to.

use std::sync::Mutex;

use super::appender::Appender;
use super::index::Index;
use super::segment;
use super::tests::{HOUR, T0, TempStore, answers, loaded};
use super::writer::{Entry, write_group};
use super::*;
use crate::store::NoticePosition;

fn notice(key: &str, player: &str, lts: u64) -> PendingNotice {
    PendingNotice {
        project: "p".into(),
        key: key.into(),
        body: format!(r#"{{"notice":"{key}"}}"#).into_bytes(),
        player: player.into(),
        position: NoticePosition { lts, stage: 1 },
    }
}

/// Writes one group: `accepted` notices (first seen at `ms`) and `applied` marks.
fn group(
    index: &Mutex<Index>,
    appender: &mut Appender,
    ms: u64,
    accepted: &[&PendingNotice],
    applied: &[&str],
) -> Vec<Option<bool>> {
    let data: Vec<Vec<u8>> = accepted.iter().map(|n| pending::encode(n)).collect();
    let mut entries: Vec<Entry> = accepted
        .iter()
        .zip(&data)
        .map(|(n, data)| Entry::Seen {
            key: n.key.as_bytes(),
            seen_ms: ms,
            notice: Some(data),
        })
        .collect();
    entries.extend(applied.iter().map(|key| Entry::Applied {
        key: key.as_bytes(),
        at_ms: ms,
    }));
    answers(write_group(index, appender, &entries))
}

fn pending_keys(index: &Mutex<Index>) -> Vec<String> {
    let mut keys: Vec<String> = lock(index)
        .pending_notices()
        .into_iter()
        .map(|n| n.key)
        .collect();
    keys.sort();
    keys
}

#[test]
fn a_notice_is_replayed_until_its_applied_mark_and_positions_survive() {
    let dir = TempStore::new();
    let log_dir = dir.log_dir();
    let (a1, a2, b1) = (
        notice("a1", "a", 100),
        notice("a2", "a", 200),
        notice("b1", "b", 50),
    );
    {
        let (index, mut appender) = loaded(&log_dir);
        assert_eq!(
            group(&index, &mut appender, T0, &[&a1, &b1], &[]),
            [Some(true), Some(true)]
        );
        // a1 applied in the same group as a2 arrives; a mark for a notice not waiting
        // writes nothing.
        assert_eq!(
            group(&index, &mut appender, T0 + 1, &[&a2], &["a1", "never"]),
            [Some(true), Some(true), Some(false)]
        );
        assert_eq!(pending_keys(&index), ["a2", "b1"]);
    }
    let (index, mut appender) = loaded(&log_dir);
    assert_eq!(
        pending_keys(&index),
        ["a2", "b1"],
        "what was not applied replays"
    );
    let replayed = lock(&index).pending_notices();
    assert!(
        replayed.contains(&a2) && replayed.contains(&b1),
        "whole, body and all"
    );
    let mut positions: Vec<_> = lock(&index)
        .positions()
        .iter()
        .map(|p| (p.player.clone(), p.position.lts))
        .collect();
    positions.sort();
    assert_eq!(
        positions,
        [("a".into(), 200), ("b".into(), 50)],
        "applied ones count too"
    );
    assert!(lock(&index).contains(b"a1"), "and the ids stay known");
    assert_eq!(
        group(&index, &mut appender, T0 + 2, &[], &["b1"]),
        [Some(true)]
    );
    drop((index, appender));
    let (index, _) = loaded(&log_dir);
    assert_eq!(pending_keys(&index), ["a2"]);
}

#[test]
fn a_torn_frame_holds_no_notice_and_the_ones_before_it_replay() {
    let dir = TempStore::new();
    let log_dir = dir.log_dir();
    let (kept, torn) = (notice("kept", "a", 1), notice("torn", "a", 2));
    let intact_len = {
        let (index, mut appender) = loaded(&log_dir);
        group(&index, &mut appender, T0, &[&kept], &[]);
        std::fs::metadata(&dir.segments()[0].1).unwrap().len()
    };
    // The next group's frame, and a mark for "kept", cut at every byte: a kill during
    // their write.
    let mut frame = segment::Frame::new();
    let data = pending::encode(&torn);
    frame.push(segment::Record {
        kind: segment::Kind::Accepted,
        key: b"torn",
        ms: T0 + 1,
        data: &data,
    });
    frame.push(segment::Record {
        kind: segment::Kind::Applied,
        key: b"kept",
        ms: T0 + 1,
        data: &[],
    });
    let frame = frame.finish();
    let path = dir.segments()[0].1.clone();
    let intact = std::fs::read(&path).unwrap();
    for cut in 1..frame.len() {
        std::fs::write(&path, [&intact[..], &frame[..cut]].concat()).unwrap();
        let (index, _) = loaded(&log_dir);
        assert_eq!(pending_keys(&index), ["kept"], "cut at {cut}");
        assert!(
            !lock(&index).contains(b"torn"),
            "cut at {cut}: a resend is new"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            intact_len,
            "cut at {cut}"
        );
    }
}

#[test]
fn a_notice_waiting_for_days_outlives_the_pruning_of_its_segment() {
    let dir = TempStore::new();
    let log_dir = dir.log_dir();
    let held = notice("held", "a", 1);
    let done = notice("done", "b", 1);
    let (index, mut appender) = loaded(&log_dir);
    group(&index, &mut appender, T0, &[&held, &done], &[]);
    group(&index, &mut appender, T0 + 1, &[], &["done"]);
    // Three days of other notices, one an hour, each hour a new segment.
    for h in 1..=72 {
        let other = notice(&format!("other-{h}"), "c", h);
        group(
            &index,
            &mut appender,
            T0 + h * HOUR,
            &[&other],
            &[&other.key],
        );
        if h % 24 == 0 {
            lock(&index).prune(T0 + h * HOUR - TTL_MS).unwrap();
        }
    }
    let segments = dir.segments();
    assert!(
        segments.len() <= 27 && segments[0].0 > T0 + TTL_MS,
        "the first segments are gone: {segments:?}"
    );
    assert_eq!(pending_keys(&index), ["held"]);
    drop((index, appender));
    let (index, _) = loaded(&log_dir);
    assert_eq!(
        pending_keys(&index),
        ["held"],
        "still replayed three days on"
    );
    assert!(
        !lock(&index).contains(b"done"),
        "an applied one is forgotten with its id"
    );
    let replayed = lock(&index).pending_notices();
    assert_eq!(replayed, [held]);
}

#[tokio::test]
async fn through_the_log_an_accepted_notice_replays_until_applied() {
    let dir = TempStore::new();
    let n = notice("p\0n", "a", 100);
    {
        let store = dir.open();
        let log = NoticeLog::open(&store).unwrap();
        log.accept(&n, T0).unwrap().durable().await.unwrap();
        assert!(log.contains("p\0n").unwrap());
        // A resend meanwhile waits for the same record.
        log.accepted("p\0n").await.unwrap();
        assert!(
            log.accepted("p\0other").await.is_err(),
            "nothing to wait for"
        );
    }
    let store = dir.open();
    let log = NoticeLog::open(&store).unwrap();
    assert_eq!(log.pending().unwrap(), std::slice::from_ref(&n));
    assert_eq!(log.positions().unwrap()[0].position, n.position);
    log.applied("p", vec![n.key.clone()]).await.unwrap();
    assert!(log.pending().unwrap().is_empty());
    drop(log);
    let log = NoticeLog::open(&store).unwrap();
    assert!(log.pending().unwrap().is_empty(), "the mark is durable");
    assert!(!log.first_time("p\0n", T0 + 1).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn notices_settled_within_a_second_are_marked_together_after_a_store_flush() {
    let dir = TempStore::new();
    let store = dir.open();
    let log = NoticeLog::open(&store).unwrap();
    let Kind::File { shared, .. } = &log.kind else {
        unreachable!("a local store")
    };
    let notices = [
        notice("p\0a", "a", 1),
        notice("p\0b", "b", 1),
        notice("p\0c", "c", 1),
    ];
    // Stamped now, as the marks are: all in one segment.
    for n in &notices {
        log.accept(n, wall_clock_ms())
            .unwrap()
            .durable()
            .await
            .unwrap();
    }
    log.settle("p", vec!["p\0a".into(), "p\0b".into()]);
    tokio::time::sleep(SETTLE_EVERY / 2).await;
    log.settle("p", vec!["p\0c".into()]);
    assert_eq!(
        log.pending().unwrap().len(),
        3,
        "nothing marked within the second"
    );
    let frames = || std::fs::read(&dir.segments()[0].1).unwrap();
    let before = frames();
    tokio::time::sleep(SETTLE_EVERY).await;
    while !log.pending().unwrap().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let after = frames();
    let new = &after[before.len()..];
    let mut marks = 0;
    let written = segment::read_frames(new, |r| {
        assert_eq!(r.kind, segment::Kind::Applied);
        marks += 1;
    });
    assert_eq!((marks, written), (3, new.len()));
    let payload = u32::from_le_bytes(new[..4].try_into().unwrap()) as usize;
    assert_eq!(payload + 8, new.len(), "one frame");
    assert!(lock(&shared.settled).is_empty());
    drop(log);
    let log = NoticeLog::open(&store).unwrap();
    assert!(log.pending().unwrap().is_empty());
}
