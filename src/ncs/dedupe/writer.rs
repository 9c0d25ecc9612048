//! The one thread that records NCS notice ids, the notices to act on, and which of
//! those were applied.
//!
//! It takes every request waiting, decides which ids are new from the index (being the
//! only writer, its check-then-insert cannot race), appends the new ones (and the
//! applied marks) as one frame with one `write(2)`, and only then answers each request.
//! Requests are handled in the order they were sent: a notice's applied mark, sent
//! after the notice was handed to the controller, never precedes its record. One thread for all also makes
//! duplicates inside one group plain bookkeeping, and lets the periodic `fdatasync` run
//! where the file is (see [`Appender::sync`]).

use std::collections::HashSet;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::appender::Appender;
use super::index::Index;
use super::lock;
use super::segment::{Frame, Kind, Record};
use crate::store::StoreError;

/// What the writer is asked to do.
enum Request {
    /// Record a notice id, with the notice when it is to be acted on; answered with
    /// whether it was new.
    Record {
        key: Vec<u8>,
        seen_ms: u64,
        notice: Option<Vec<u8>>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Mark notices applied; answered once the marks are written.
    Applied {
        keys: Vec<Vec<u8>>,
        at_ms: u64,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Answered once everything sent before it is written, with whether `key` is
    /// recorded.
    Barrier {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
}

/// An answer still to come from the writer.
pub(super) struct Answer(Option<oneshot::Receiver<Result<bool, StoreError>>>);

impl Answer {
    pub(super) async fn get(self) -> Result<bool, StoreError> {
        let stopped = || StoreError::NoticeWriter("stopped".into());
        self.0.ok_or_else(stopped)?.await.map_err(|_| stopped())?
    }
}

/// The writer thread; [`Writer::stop`] (or drop) ends and joins it.
pub(super) struct Writer {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(
        index: Arc<Mutex<Index>>,
        appender: Appender,
    ) -> Result<Writer, StoreError> {
        let (requests, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ncs-notice-writer".into())
            .spawn(move || run(&queue, &index, appender))
            .map_err(|e| StoreError::NoticeWriter(format!("cannot start: {e}")))?;
        Ok(Writer {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Records `key` (see [`super::NoticeLog::first_time`]), with `notice` if it is to
    /// be acted on. The request is queued when this returns.
    pub(super) fn record(&self, key: Vec<u8>, seen_ms: u64, notice: Option<Vec<u8>>) -> Answer {
        let (reply, answer) = oneshot::channel();
        let request = Request::Record {
            key,
            seen_ms,
            notice,
            reply,
        };
        Answer(self.send(request).then_some(answer))
    }

    /// Marks the notices under `keys` applied.
    pub(super) fn applied(&self, keys: Vec<Vec<u8>>, at_ms: u64) -> Answer {
        let (reply, answer) = oneshot::channel();
        Answer(
            self.send(Request::Applied { keys, at_ms, reply })
                .then_some(answer),
        )
    }

    /// Whether `key` is recorded once everything queued before is written.
    pub(super) fn barrier(&self, key: Vec<u8>) -> Answer {
        let (reply, answer) = oneshot::channel();
        Answer(self.send(Request::Barrier { key, reply }).then_some(answer))
    }

    fn send(&self, request: Request) -> bool {
        self.requests
            .as_ref()
            .is_some_and(|requests| requests.send(request).is_ok())
    }

    /// Closes the queue; the thread answers the group in hand, `fdatasync`s and ends.
    pub(super) fn stop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long the writer lets a group fill while notices are arriving in numbers, so
/// fewer, larger groups share the per-group costs (a wake-up, a lock, a `write`); a lone
/// notice never waits (see [`run`]).
const GATHER: Duration = Duration::from_micros(50);

fn run(queue: &mpsc::Receiver<Request>, index: &Mutex<Index>, mut appender: Appender) {
    let mut busy = false;
    loop {
        let first = match appender.sync_due_in() {
            None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(due) => queue.recv_timeout(due),
        };
        let first = match first {
            Ok(request) => request,
            Err(RecvTimeoutError::Timeout) => {
                appender.sync_or_log();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // A group of more than one says more notices are in flight: let them join.
        if busy {
            std::thread::sleep(GATHER);
        }
        let group: Vec<Request> = std::iter::once(first).chain(queue.try_iter()).collect();
        busy = group.len() > 1;
        let entries: Vec<Entry> = group.iter().flat_map(Entry::of).collect();
        let mut answers = write_group(index, &mut appender, &entries).into_iter();
        for request in group {
            // The handler may have gone (client hung up); what it sent is recorded
            // regardless.
            match request {
                Request::Record { reply, .. } => {
                    let _ = reply.send(answers.next().unwrap_or(Ok(false)));
                }
                Request::Applied { keys, reply, .. } => {
                    let marks: Result<Vec<bool>, StoreError> =
                        answers.by_ref().take(keys.len()).collect();
                    let _ = reply.send(marks.map(|m| m.contains(&true)));
                }
                Request::Barrier { key, reply } => {
                    let _ = reply.send(Ok(lock(index).contains(&key)));
                }
            }
        }
        if appender.sync_due_in() == Some(Duration::ZERO) {
            appender.sync_or_log();
        }
    }
    appender.sync_or_log();
}

/// One record a group asks for.
pub(super) enum Entry<'a> {
    /// A notice id first seen at `seen_ms`, with the notice if it is to be acted on.
    Seen {
        key: &'a [u8],
        seen_ms: u64,
        notice: Option<&'a [u8]>,
    },
    /// The notice under `key` was applied at `at_ms`.
    Applied { key: &'a [u8], at_ms: u64 },
}

impl Entry<'_> {
    /// The entries of one request, in order (none for a barrier).
    fn of(request: &Request) -> Vec<Entry<'_>> {
        match request {
            Request::Record {
                key,
                seen_ms,
                notice,
                ..
            } => vec![Entry::Seen {
                key,
                seen_ms: *seen_ms,
                notice: notice.as_deref(),
            }],
            Request::Applied { keys, at_ms, .. } => keys
                .iter()
                .map(|key| Entry::Applied { key, at_ms: *at_ms })
                .collect(),
            Request::Barrier { .. } => Vec::new(),
        }
    }
}

/// How one entry of a group stood before the write.
enum Seen {
    /// New: in this group's frame.
    New,
    /// Already recorded by an earlier group, hence written.
    Known,
    /// Again in this group, after its first occurrence: shares that one's fate.
    Repeat,
    /// An applied mark in this group's frame.
    Marked,
    /// An applied mark for a notice not waiting (applied before, or never kept).
    Idle,
}

/// Records a group of entries with one append and answers each, in order: `Ok(true)`
/// for the first record of a key (or a mark written), `Ok(false)` for one recorded
/// before (or a mark with nothing to mark). The new keys enter the index, and the marks
/// take their notices out of it, only once the write returned, so when it fails none
/// of them counts (a resend must not look like a duplicate) and each of them and its
/// repeats gets the error: nothing is answered that is not written.
pub(super) fn write_group(
    index: &Mutex<Index>,
    appender: &mut Appender,
    entries: &[Entry<'_>],
) -> Vec<Result<bool, StoreError>> {
    let mut new: HashSet<&[u8]> = HashSet::new();
    let mut accepted: Vec<(&[u8], u64, &[u8])> = Vec::new();
    let mut accepted_keys: HashSet<&[u8]> = HashSet::new();
    let mut marked: HashSet<&[u8]> = HashSet::new();
    let mut frame = Frame::new();
    let mut newest_ms = 0;
    let seen: Vec<Seen> = {
        let index = lock(index);
        entries
            .iter()
            .map(|entry| match *entry {
                Entry::Seen { key, .. } if index.contains(key) => Seen::Known,
                Entry::Seen {
                    key,
                    seen_ms,
                    notice,
                } => {
                    if !new.insert(key) {
                        return Seen::Repeat;
                    }
                    let (kind, data) = match notice {
                        Some(data) => {
                            accepted.push((key, seen_ms, data));
                            accepted_keys.insert(key);
                            (Kind::Accepted, data)
                        }
                        None => (Kind::Seen, &[][..]),
                    };
                    frame.push(Record {
                        kind,
                        key,
                        ms: seen_ms,
                        data,
                    });
                    newest_ms = newest_ms.max(seen_ms);
                    Seen::New
                }
                Entry::Applied { key, at_ms } => {
                    let waits = index.is_pending(key) || accepted_keys.contains(key);
                    if !waits || !marked.insert(key) {
                        return Seen::Idle;
                    }
                    frame.push(Record {
                        kind: Kind::Applied,
                        key,
                        ms: at_ms,
                        data: &[],
                    });
                    newest_ms = newest_ms.max(at_ms);
                    Seen::Marked
                }
            })
            .collect()
    };
    let written = if frame.is_empty() {
        Ok(())
    } else {
        appender
            .append(&frame.finish(), newest_ms, index)
            .map(|segment| {
                let mut index = lock(index);
                for key in &new {
                    index.insert(key, segment);
                }
                for (key, seen_ms, data) in &accepted {
                    index.accept(key, *seen_ms, data);
                }
                for key in &marked {
                    index.applied(key);
                }
            })
    };
    seen.into_iter()
        .map(|seen| match seen {
            Seen::New | Seen::Marked => written.clone().map(|()| true),
            Seen::Repeat => written.clone().map(|()| false),
            Seen::Known | Seen::Idle => Ok(false),
        })
        .collect()
}
