//! The one thread that records NCS notice ids.
//!
//! It takes every id waiting, decides which are new from the index (being the only
//! writer, its check-then-insert cannot race), appends the new ones as one frame with
//! one `write(2)`, and only then answers each request. One thread for all also makes
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
use super::segment::Frame;
use crate::store::StoreError;

/// One notice id to record, and where its answer goes.
struct Request {
    key: Vec<u8>,
    seen_ms: u64,
    reply: oneshot::Sender<Result<bool, StoreError>>,
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
        let ids: Vec<(&[u8], u64)> = group.iter().map(|r| (&r.key[..], r.seen_ms)).collect();
        let answers = record_group(index, &mut appender, &ids);
        for (request, answer) in group.into_iter().zip(answers) {
            // The handler may have gone (client hung up); its id is recorded regardless.
            let _ = request.reply.send(answer);
        }
        if appender.sync_due_in() == Some(Duration::ZERO) {
            appender.sync_or_log();
        }
    }
    appender.sync_or_log();
}

/// How one id of a group stood before the write.
enum Seen {
    /// New: in this group's frame.
    New,
    /// Already recorded by an earlier group, hence written.
    Known,
    /// Again in this group, after its first occurrence: shares that one's fate.
    Repeat,
}

/// Records a group of `(key, first-seen ms)` with one append and answers each, in order:
/// `Ok(true)` for the first record of a key, `Ok(false)` for one recorded before. The
/// new keys enter the index only once the write returned, so when it fails none of them
/// is recorded (a resend must not look like a duplicate) and each of them and its
/// repeats gets the error: nothing is answered that is not written.
pub(super) fn record_group(
    index: &Mutex<Index>,
    appender: &mut Appender,
    ids: &[(&[u8], u64)],
) -> Vec<Result<bool, StoreError>> {
    let mut new: HashSet<&[u8]> = HashSet::new();
    let mut frame = Frame::new();
    let mut newest_ms = 0;
    let seen: Vec<Seen> = {
        let index = lock(index);
        ids.iter()
            .map(|&(key, seen_ms)| {
                if index.contains(key) {
                    Seen::Known
                } else if new.insert(key) {
                    frame.push(key, seen_ms);
                    newest_ms = newest_ms.max(seen_ms);
                    Seen::New
                } else {
                    Seen::Repeat
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
            })
    };
    seen.into_iter()
        .map(|seen| match seen {
            Seen::New => written.clone().map(|()| true),
            Seen::Repeat => written.clone().map(|()| false),
            Seen::Known => Ok(false),
        })
        .collect()
}
