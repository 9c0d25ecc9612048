//! The notice log on real files in temporary directories.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::appender::{Appender, SEGMENT_SPAN_MS, SYNC_EVERY};
use super::index::Index;
use super::segment::{self, Segment};
use super::writer::{Entry, Writer, write_group};
use super::*;

pub(super) const HOUR: u64 = SEGMENT_SPAN_MS;
/// A realistic first-seen time (2023-11-14).
pub(super) const T0: u64 = 1_700_000_000_000;

/// A store directory that is removed at the end of the test.
pub(super) struct TempStore(PathBuf);

impl TempStore {
    pub(super) fn new() -> TempStore {
        TempStore(std::env::temp_dir().join(format!("pk-notices-{}", uuid::Uuid::new_v4())))
    }

    pub(super) fn open(&self) -> Store {
        Store::open(&self.0).unwrap()
    }

    pub(super) fn log_dir(&self) -> PathBuf {
        self.0.join(DIR)
    }

    pub(super) fn segments(&self) -> Vec<(u64, PathBuf)> {
        segment::list(&self.log_dir()).unwrap()
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The index and appender of a log directory, without a writer thread.
pub(super) fn loaded(dir: &Path) -> (Mutex<Index>, Appender) {
    let (index, appender) = replay::load(dir, u64::MAX).unwrap();
    (Mutex::new(index), appender)
}

/// Records plain ids as one group.
fn record_group(
    index: &Mutex<Index>,
    appender: &mut Appender,
    ids: &[(&[u8], u64)],
) -> Vec<Result<bool, StoreError>> {
    let entries: Vec<Entry> = ids
        .iter()
        .map(|&(key, seen_ms)| Entry::Seen {
            key,
            seen_ms,
            notice: None,
        })
        .collect();
    write_group(index, appender, &entries)
}

pub(super) fn answers(got: Vec<Result<bool, StoreError>>) -> Vec<Option<bool>> {
    got.into_iter().map(Result::ok).collect()
}

#[tokio::test]
async fn first_time_is_true_once() {
    let store = Store::temporary().unwrap();
    let log = NoticeLog::open(&store).unwrap();
    assert!(log.first_time("a", 10).await.unwrap());
    assert!(!log.first_time("a", 20).await.unwrap());
    assert!(log.first_time("b", 20).await.unwrap());
    assert!(log.contains("a").unwrap());
    assert!(!log.contains("c").unwrap());
}

#[test]
fn duplicates_within_one_group_and_across_groups_with_one_frame_per_group() {
    let store = TempStore::new();
    let (index, mut appender) = loaded(&store.log_dir());
    let group = [(&b"a"[..], 1), (b"b", 1), (b"a", 2), (b"c", 1), (b"b", 3)];
    assert_eq!(
        answers(record_group(&index, &mut appender, &group)),
        [Some(true), Some(true), Some(false), Some(true), Some(false)]
    );
    let file = &store.segments()[0].1;
    let after_first = std::fs::metadata(file).unwrap().len();
    assert_eq!(
        answers(record_group(
            &index,
            &mut appender,
            &[(b"c", 9), (b"d", 9), (b"a", 9)]
        )),
        [Some(false), Some(true), Some(false)]
    );
    // A group with nothing new writes nothing.
    assert_eq!(
        answers(record_group(&index, &mut appender, &[(b"d", 10)])),
        [Some(false)]
    );
    let bytes = std::fs::read(file).unwrap();
    let mut records = Vec::new();
    assert_eq!(
        segment::read_frames(&bytes, |r| records.push((r.key.to_vec(), r.ms))),
        bytes.len()
    );
    // Only the first occurrence is written, with its time; the second group is one frame.
    assert_eq!(
        records,
        [
            (b"a".to_vec(), 1),
            (b"b".to_vec(), 1),
            (b"c".to_vec(), 1),
            (b"d".to_vec(), 9)
        ]
    );
    let d_frame = 4 + (4 + 1 + 8) + 4;
    assert_eq!(bytes.len() as u64, after_first + d_frame);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_get_exactly_one_first() {
    let store = Store::temporary().unwrap();
    let log = NoticeLog::open(&store).unwrap();
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let log = log.clone();
            // Eight deliveries each of eight notices, interleaved.
            let key = format!("n{}", i % 8);
            tokio::spawn(async move { log.first_time(key, i).await.unwrap() })
        })
        .collect();
    let mut firsts = 0;
    for t in tasks {
        firsts += usize::from(t.await.unwrap());
    }
    assert_eq!(firsts, 8);
}

#[tokio::test]
async fn a_second_open_in_the_process_shares_the_log() {
    let store = Store::temporary().unwrap();
    let first = NoticeLog::open(&store).unwrap();
    let second = NoticeLog::open(&store).unwrap();
    assert!(first.first_time("k", T0).await.unwrap());
    assert!(second.contains("k").unwrap());
    assert!(!second.first_time("k", T0).await.unwrap());
}

#[tokio::test]
async fn a_restart_keeps_the_dedupe() {
    let dir = TempStore::new();
    {
        let store = dir.open();
        let log = NoticeLog::open(&store).unwrap();
        assert!(log.first_time("n-1", T0).await.unwrap());
        assert!(log.first_time("n-2", T0 + 1).await.unwrap());
    }
    let store = dir.open();
    let log = NoticeLog::open(&store).unwrap();
    assert!(!log.first_time("n-1", T0 + 2).await.unwrap());
    assert!(!log.first_time("n-2", T0 + 2).await.unwrap());
    assert!(log.first_time("n-3", T0 + 2).await.unwrap());
}

/// Two groups written, then the file damaged the way `damage` says; the next open must
/// keep the first group, drop the damage, and append after the intact part.
async fn torn_tail(damage: impl FnOnce(&Path, u64)) {
    let dir = TempStore::new();
    let first_len = {
        let store = dir.open();
        let log = NoticeLog::open(&store).unwrap();
        assert!(log.first_time("kept-1", T0).await.unwrap());
        assert!(log.first_time("kept-2", T0).await.unwrap());
        std::fs::metadata(&dir.segments()[0].1).unwrap().len()
    };
    damage(&dir.segments()[0].1, first_len);
    {
        let store = dir.open();
        let log = NoticeLog::open(&store).unwrap();
        assert_eq!(
            std::fs::metadata(&dir.segments()[0].1).unwrap().len(),
            first_len,
            "the tail is cut off at open"
        );
        assert!(log.contains("kept-1").unwrap());
        assert!(log.contains("kept-2").unwrap());
        assert!(log.first_time("after", T0 + 1).await.unwrap());
    }
    let store = dir.open();
    let log = NoticeLog::open(&store).unwrap();
    for key in ["kept-1", "kept-2", "after"] {
        assert!(log.contains(key).unwrap(), "{key} after the repair");
    }
}

#[tokio::test]
async fn a_record_cut_mid_way_is_cut_off_at_open_and_the_earlier_ids_stay() {
    torn_tail(|file, len| {
        let mut bytes = std::fs::read(file).unwrap();
        // A third frame, cut inside its key: what a kill during its write leaves.
        let mut frame = segment::Frame::new();
        frame.push(segment::Record {
            kind: segment::Kind::Seen,
            key: b"torn-notice-id",
            ms: T0,
            data: &[],
        });
        let frame = frame.finish();
        bytes.extend_from_slice(&frame[..10]);
        std::fs::write(file, &bytes).unwrap();
        assert!(bytes.len() as u64 > len);
    })
    .await;
}

#[tokio::test]
async fn garbage_after_the_last_frame_is_cut_off_at_open() {
    torn_tail(|file, _| {
        let mut bytes = std::fs::read(file).unwrap();
        bytes.extend((0..300u32).map(|i| (i * 7919 % 251) as u8));
        std::fs::write(file, &bytes).unwrap();
    })
    .await;
}

#[test]
fn a_failed_write_records_none_of_its_group_and_a_resend_is_accepted() {
    let dir = TempStore::new();
    let log_dir = dir.log_dir();
    let (index, mut appender) = loaded(&log_dir);
    assert_eq!(
        answers(record_group(&index, &mut appender, &[(b"old", T0)])),
        [Some(true)]
    );
    let (start, path) = dir.segments()[0].clone();
    let before = std::fs::read(&path).unwrap();
    // The segment's file descriptor now refuses writes (EBADF), as a full or failing
    // disk would.
    let mut appender = Appender::new(
        log_dir.clone(),
        Some(Segment::read_only(path.clone(), start).unwrap()),
        T0,
    );
    let group = [
        (&b"x"[..], T0 + 5),
        (b"old", T0 + 5),
        (b"y", T0 + 5),
        (b"x", T0 + 6),
    ];
    let got = record_group(&index, &mut appender, &group);
    assert!(
        matches!(&got[0], Err(StoreError::NoticeLog { detail, .. }) if detail.contains("cannot append")),
        "{got:?}"
    );
    assert_eq!(got[1].as_ref().ok(), Some(&false), "known before: written");
    assert!(got[2].is_err());
    assert!(
        got[3].is_err(),
        "a repeat of a refused id is not a duplicate"
    );
    {
        let index = index.lock().unwrap();
        assert!(!index.contains(b"x") && !index.contains(b"y"));
        assert!(index.contains(b"old"));
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // The resend is recorded as new, in a new segment after the failed one.
    assert_eq!(
        answers(record_group(
            &index,
            &mut appender,
            &[(b"x", T0 + 7), (b"y", T0 + 7)]
        )),
        [Some(true), Some(true)]
    );
    assert_eq!(dir.segments().len(), 2);
    let (reopened, _) = loaded(&log_dir);
    let reopened = reopened.into_inner().unwrap();
    for key in [&b"old"[..], b"x", b"y"] {
        assert!(reopened.contains(key));
    }
}

#[test]
fn prune_deletes_whole_segments_whose_ids_all_expired() {
    let dir = TempStore::new();
    let log_dir = dir.log_dir();
    let (index, mut appender) = loaded(&log_dir);
    let record = |appender: &mut Appender, key: &[u8], ms| {
        assert_eq!(
            answers(record_group(&index, appender, &[(key, ms)])),
            [Some(true)]
        );
    };
    record(&mut appender, b"a", T0);
    record(&mut appender, b"b", T0 + HOUR / 2);
    // An hour after the segment's start: the next segment begins.
    record(&mut appender, b"c", T0 + HOUR);
    record(&mut appender, b"d", T0 + 3 * HOUR);
    let segments = dir.segments();
    assert_eq!(segments.len(), 3, "{segments:?}");
    let mut index = index.into_inner().unwrap();
    // "b" is younger than the cut, so its segment (with "a") stays whole.
    assert_eq!(index.prune(T0 + HOUR / 2).unwrap(), 0);
    assert_eq!(index.prune(T0 + HOUR / 2 + 1).unwrap(), 2);
    assert!(!index.contains(b"a") && !index.contains(b"b"));
    assert!(!segments[0].1.exists());
    assert!(index.contains(b"c"));
    // The segment being written stays, even when all of it has expired.
    assert_eq!(index.prune(u64::MAX).unwrap(), 1);
    assert!(index.contains(b"d"));
    assert_eq!(dir.segments(), segments[2..]);
    assert_eq!(index.len(), 1);
}

#[test]
fn open_reads_only_segments_that_can_hold_unexpired_ids() {
    let dir = TempStore::new();
    let log_dir = dir.log_dir();
    {
        let (index, mut appender) = loaded(&log_dir);
        for (key, ms) in [
            (&b"day-old"[..], T0),
            (b"bound-by-next", T0 + 2 * HOUR),
            (b"young", T0 + 4 * HOUR),
            (b"now", T0 + TTL_MS + 3 * HOUR),
        ] {
            assert_eq!(
                answers(record_group(&index, &mut appender, &[(key, ms)])),
                [Some(true)]
            );
        }
    }
    assert_eq!(dir.segments().len(), 4);
    let (index, _) = loaded(&log_dir);
    let index = index.into_inner().unwrap();
    // The first segment ends where the second starts, more than a day before "now".
    assert!(!index.contains(b"day-old"));
    for key in [&b"bound-by-next"[..], b"young", b"now"] {
        assert!(index.contains(key));
    }
    // Unread segments stay known, so a prune deletes them.
    assert_eq!(index.closed().count(), 3);
}

#[test]
fn an_id_stamped_in_the_future_does_not_expire_the_present_at_open() {
    let dir = TempStore::new();
    let log_dir = dir.log_dir();
    {
        let (index, mut appender) = loaded(&log_dir);
        // The clock jumped a month ahead for one notice, then back.
        for (key, ms) in [(&b"present"[..], T0), (b"future", T0 + 30 * TTL_MS)] {
            assert_eq!(
                answers(record_group(&index, &mut appender, &[(key, ms)])),
                [Some(true)]
            );
        }
    }
    let (index, _) = replay::load(&log_dir, T0 + HOUR).unwrap();
    assert!(index.contains(b"present") && index.contains(b"future"));
}

#[tokio::test]
async fn a_writer_stopped_answers_with_an_error() {
    let dir = TempStore::new();
    let (index, appender) = replay::load(&dir.log_dir(), u64::MAX).unwrap();
    let mut writer = Writer::start(Arc::new(Mutex::new(index)), appender).unwrap();
    assert!(writer.record(b"k".to_vec(), T0, None).get().await.unwrap());
    writer.stop();
    assert!(matches!(
        writer.record(b"l".to_vec(), T0, None).get().await,
        Err(StoreError::NoticeWriter(_))
    ));
}

#[test]
fn an_append_is_due_for_fdatasync_within_a_second_and_a_sync_clears_it() {
    let dir = TempStore::new();
    let (index, mut appender) = loaded(&dir.log_dir());
    assert_eq!(appender.sync_due_in(), None);
    record_group(&index, &mut appender, &[(b"a", T0)]);
    let due = appender.sync_due_in().expect("due after an append");
    assert!(due <= SYNC_EVERY, "{due:?}");
    appender.sync().unwrap();
    assert_eq!(appender.sync_due_in(), None);
    // Nothing new, nothing written, nothing to sync.
    record_group(&index, &mut appender, &[(b"a", T0)]);
    assert_eq!(appender.sync_due_in(), None);
}
