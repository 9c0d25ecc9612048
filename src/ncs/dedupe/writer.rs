//! The one thread that records NCS notice ids.
//!
//! It takes every id waiting, records the new ones and makes them durable with one flush
//! for the whole group, then answers each request. Before it, each notice paid for its
//! own flush request: a tokio mutex hand-off, a hop to the blocking pool and the wake-ups
//! of both, which with the flush itself were most of the receiver's cost
//! (BENCHMARKS.md §3). Being the only thread that records ids also makes duplicates
//! inside one group plain bookkeeping.

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::store::{Store, StoreError};

/// One notice id to record, and where its answer goes.
struct Request {
    key: Vec<u8>,
    seen_ms: u64,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// The writer thread; it ends, and is joined, when the last handle is dropped.
pub(super) struct Writer {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(tree: sled::Tree, store: Store) -> Result<Writer, StoreError> {
        let (requests, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ncs-notice-writer".into())
            .spawn(move || run(&queue, &tree, || store.flush_blocking()))
            .map_err(|e| StoreError::NoticeWriter(format!("cannot start: {e}")))?;
        Ok(Writer {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Records `key` (see [`super::NoticeLog::first_time`]).
    pub(super) async fn record(&self, key: Vec<u8>, seen_ms: u64) -> Result<bool, StoreError> {
        let stopped = || StoreError::NoticeWriter("stopped".into());
        let (reply, answer) = oneshot::channel();
        let request = Request {
            key,
            seen_ms,
            reply,
        };
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(request)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread after the group in hand. Joining it releases
        // its handle on the database, so the store can be opened again at once (sled
        // locks its directory).
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How long the writer lets a group fill while notices are arriving in numbers. Every
/// flush costs the same, whatever it covers (sled writes its log buffer on its I/O pool
/// and wakes all of that pool's threads to do so), so under load fewer, larger groups
/// leave more of the CPU for the notices; a lone notice never waits (see [`run`]).
const GATHER: Duration = Duration::from_micros(50);

fn run(
    queue: &mpsc::Receiver<Request>,
    tree: &sled::Tree,
    flush: impl Fn() -> Result<(), StoreError>,
) {
    let mut busy = false;
    while let Ok(first) = queue.recv() {
        // A group of more than one says more notices are in flight: let them join.
        if busy {
            std::thread::sleep(GATHER);
        }
        let group: Vec<Request> = std::iter::once(first).chain(queue.try_iter()).collect();
        busy = group.len() > 1;
        let ids: Vec<(&[u8], u64)> = group.iter().map(|r| (&r.key[..], r.seen_ms)).collect();
        let answers = record_group(tree, &ids, &flush);
        for (request, answer) in group.into_iter().zip(answers) {
            // The handler may have gone (client hung up); its id is recorded regardless.
            let _ = request.reply.send(answer);
        }
    }
}

/// How one id of a group stood before the flush.
enum Seen {
    /// Recorded by this group.
    New,
    /// Already recorded by an earlier group, hence durable.
    Known,
    /// Again in this group, after its first occurrence: shares that one's fate.
    Repeat,
}

/// Records a group of `(key, first-seen ms)` with one flush and answers each, in order:
/// `Ok(true)` for the first record of a key, `Ok(false)` for one recorded before. A key
/// is recorded with `compare_and_swap(key, None, ..)`, so even a second writer on the
/// same tree could not make two first records. When the flush fails every key the group
/// recorded is withdrawn (a resend must not look like a duplicate) and each of them and
/// its repeats gets the error: nothing is answered that is not durable.
fn record_group(
    tree: &sled::Tree,
    ids: &[(&[u8], u64)],
    flush: impl FnOnce() -> Result<(), StoreError>,
) -> Vec<Result<bool, StoreError>> {
    let mut recorded: HashMap<&[u8], [u8; 8]> = HashMap::new();
    let seen: Vec<Result<Seen, StoreError>> = ids
        .iter()
        .map(|&(key, seen_ms)| {
            if recorded.contains_key(key) {
                return Ok(Seen::Repeat);
            }
            let value = seen_ms.to_be_bytes();
            match tree.compare_and_swap(key, None::<&[u8]>, Some(&value[..]))? {
                Ok(()) => {
                    recorded.insert(key, value);
                    Ok(Seen::New)
                }
                Err(_) => Ok(Seen::Known),
            }
        })
        .collect();
    let flushed = if recorded.is_empty() { Ok(()) } else { flush() };
    if flushed.is_err() {
        for (key, value) in &recorded {
            // Only while it holds the value this group wrote.
            let _ = tree.compare_and_swap(key, Some(&value[..]), None::<&[u8]>);
        }
    }
    seen.into_iter()
        .map(|seen| match seen? {
            Seen::New => flushed.clone().map(|()| true),
            Seen::Repeat => flushed.clone().map(|()| false),
            Seen::Known => Ok(false),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn tree() -> (Store, sled::Tree) {
        let store = Store::temporary().unwrap();
        let tree = store.tree("ncs_notices").unwrap();
        (store, tree)
    }

    fn answers(got: Vec<Result<bool, StoreError>>) -> Vec<Option<bool>> {
        got.into_iter().map(Result::ok).collect()
    }

    #[test]
    fn one_flush_per_group_and_duplicates_inside_it_are_not_first() {
        let (_store, tree) = tree();
        let flushes = Cell::new(0);
        let flush = || {
            flushes.set(flushes.get() + 1);
            Ok(())
        };
        let group = [(&b"a"[..], 1), (b"b", 1), (b"a", 2), (b"c", 1), (b"b", 3)];
        assert_eq!(
            answers(record_group(&tree, &group, flush)),
            [Some(true), Some(true), Some(false), Some(true), Some(false)]
        );
        assert_eq!(flushes.get(), 1);
        // The first occurrence's time is what is kept.
        assert_eq!(tree.get(b"a").unwrap().unwrap(), 1u64.to_be_bytes());
        // A later group sees them all as known; a group with nothing new needs no flush.
        let flush = || {
            flushes.set(flushes.get() + 1);
            Ok(())
        };
        assert_eq!(
            answers(record_group(&tree, &[(b"c", 9), (b"a", 9)], flush)),
            [Some(false), Some(false)]
        );
        assert_eq!(flushes.get(), 1);
    }

    #[test]
    fn a_failed_flush_fails_the_group_and_withdraws_every_id_it_recorded() {
        let (_store, tree) = tree();
        let ok = || Ok(());
        assert_eq!(
            answers(record_group(&tree, &[(b"old", 1)], ok)),
            [Some(true)]
        );
        let fail = || Err(StoreError::Flush("disk gone".into()));
        let group = [(&b"x"[..], 5), (b"old", 5), (b"y", 5), (b"x", 6)];
        let got = record_group(&tree, &group, fail);
        assert!(matches!(&got[0], Err(StoreError::Flush(m)) if m == "disk gone"));
        assert_eq!(got[1].as_ref().ok(), Some(&false), "known before: durable");
        assert!(got[2].is_err());
        assert!(
            got[3].is_err(),
            "a repeat of a withdrawn id is not a duplicate"
        );
        assert!(!tree.contains_key(b"x").unwrap());
        assert!(!tree.contains_key(b"y").unwrap());
        assert!(tree.contains_key(b"old").unwrap());
        // The resend that follows is recorded as new.
        assert_eq!(
            answers(record_group(&tree, &[(b"x", 7), (b"y", 7)], ok)),
            [Some(true), Some(true)]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deliveries_through_the_thread_get_one_first() {
        let (store, tree) = tree();
        let writer = std::sync::Arc::new(Writer::start(tree, store).unwrap());
        let tasks: Vec<_> = (0..64u64)
            .map(|i| {
                let writer = writer.clone();
                // Eight deliveries each of eight notices, interleaved.
                let key = format!("n{}", i % 8).into_bytes();
                tokio::spawn(async move { writer.record(key, i).await.unwrap() })
            })
            .collect();
        let mut firsts = 0;
        for t in tasks {
            firsts += usize::from(t.await.unwrap());
        }
        assert_eq!(firsts, 8);
    }
}
