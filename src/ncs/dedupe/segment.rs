//! Segment files: the notice log on disk.
//!
//! A segment is an append-only file of *frames*, one per group the writer records:
//!
//! ```text
//! frame  = payload length (u32 LE) · payload · CRC32 of length and payload (u32 LE)
//! payload = record*
//! record = head (u32 LE) · key bytes · Unix ms (u64 LE) · [data length (u32 LE) · data]
//! head   = key length (low 24 bits) · kind (high 8 bits)
//! ```
//!
//! The kinds ([`Kind`]): 0, a notice id first seen at that ms (the only kind before
//! notices were kept here, so older segments read unchanged); 1, the same with the
//! notice to act on as `data` (see [`super::pending`]); 2, the notice with that key was
//! applied (at that ms). Only kind 1 has a data part. A key is at most a request body
//! (64 KiB), so 24 bits hold its length.
//!
//! One CRC per frame, not per record, makes a group all or nothing: a write that failed
//! half-way, or a `kill -9` during one, leaves a frame whose CRC does not match, and
//! none of its records counts (each of them was answered with an error, or not at all).
//! A frame is read only if all of it is there and its CRC matches; reading stops at the
//! first that is not, which is where a torn tail begins.
//!
//! A segment is named after its start, `{start_ms:020}.log`: the newest first-seen time
//! recorded when it was opened. Every record of every *earlier* segment was first seen
//! at or before that start, so the next segment's name bounds a segment's contents
//! without reading it (pruning and replay rely on this). Names are zero-padded so they
//! sort as the numbers do.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const SUFFIX: &str = ".log";
const DIGITS: usize = 20;
/// Length and CRC around each frame's payload.
const FRAME_OVERHEAD: usize = 8;

/// The file name of the segment starting at `start_ms`.
pub(super) fn file_name(start_ms: u64) -> String {
    format!("{start_ms:0DIGITS$}{SUFFIX}")
}

/// The start of a segment named `name`, or `None` for a file that is not one.
pub(super) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, oldest first, as `(start_ms, path)`.
pub(super) fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(start) = entry.file_name().to_str().and_then(parse_name) {
            found.push((start, entry.path()));
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// What a record says about its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// First seen; nothing to act on (a stale notice, or a log written before notices
    /// were kept here).
    Seen,
    /// First seen, and acknowledged to be acted on: the record holds the notice.
    Accepted,
    /// The notice was applied: nothing waits for it any more.
    Applied,
}

impl Kind {
    fn code(self) -> u32 {
        match self {
            Kind::Seen => 0,
            Kind::Accepted => 1,
            Kind::Applied => 2,
        }
    }

    fn from_code(code: u32) -> Option<Kind> {
        [Kind::Seen, Kind::Accepted, Kind::Applied]
            .into_iter()
            .find(|k| k.code() == code)
    }
}

const KEY_BITS: u32 = 24;
const KEY_MASK: u32 = (1 << KEY_BITS) - 1;

/// One record as read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record<'a> {
    pub(super) kind: Kind,
    pub(super) key: &'a [u8],
    pub(super) ms: u64,
    /// The notice, for [`Kind::Accepted`]; empty otherwise.
    pub(super) data: &'a [u8],
}

/// One frame being built: records go in, [`Frame::finish`] seals it.
pub(super) struct Frame {
    bytes: Vec<u8>,
    records: usize,
}

impl Frame {
    pub(super) fn new() -> Frame {
        Frame {
            bytes: vec![0; 4],
            records: 0,
        }
    }

    pub(super) fn push(&mut self, record: Record<'_>) {
        // A key is at most a request body (64 KiB), far below 2^24.
        let len = u32::try_from(record.key.len())
            .unwrap_or(KEY_MASK)
            .min(KEY_MASK);
        let head = len | (record.kind.code() << KEY_BITS);
        self.bytes.extend_from_slice(&head.to_le_bytes());
        self.bytes.extend_from_slice(&record.key[..len as usize]);
        self.bytes.extend_from_slice(&record.ms.to_le_bytes());
        if record.kind == Kind::Accepted {
            let data = u32::try_from(record.data.len()).unwrap_or(u32::MAX);
            self.bytes.extend_from_slice(&data.to_le_bytes());
            self.bytes.extend_from_slice(&record.data[..data as usize]);
        }
        self.records += 1;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The frame as written to the file.
    pub(super) fn finish(mut self) -> Vec<u8> {
        let payload = u32::try_from(self.bytes.len() - 4).unwrap_or(u32::MAX);
        self.bytes[..4].copy_from_slice(&payload.to_le_bytes());
        let crc = crc32fast::hash(&self.bytes);
        self.bytes.extend_from_slice(&crc.to_le_bytes());
        self.bytes
    }
}

/// Reads the records of every intact frame at the start of `bytes`, in order, and
/// returns how many bytes those frames take: anything after that is a torn or garbled
/// tail.
pub(super) fn read_frames(bytes: &[u8], mut each: impl FnMut(Record<'_>)) -> usize {
    let mut at = 0;
    while let Some(payload) = frame_at(bytes, at) {
        let mut records = payload;
        while let Some((found, rest)) = record(records) {
            each(found);
            records = rest;
        }
        at += FRAME_OVERHEAD + payload.len();
    }
    at
}

/// The payload of the intact frame at `at`, if there is one.
fn frame_at(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let rest = bytes.get(at..)?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(len)?;
    let crc = u32::from_le_bytes(rest.get(end..end.checked_add(4)?)?.try_into().ok()?);
    let payload = &rest[4..end];
    // Zero-filled space (a file extended but never written) reads as a frame of length
    // 0, which is never written.
    let intact = len > 0 && crc32fast::hash(&rest[..end]) == crc && records_fit(payload);
    intact.then_some(payload)
}

/// Whether `payload` is a whole number of well-formed records.
fn records_fit(mut payload: &[u8]) -> bool {
    while !payload.is_empty() {
        match record(payload) {
            Some((_, rest)) => payload = rest,
            None => return false,
        }
    }
    true
}

/// The record at the start of `bytes` and what follows it.
fn record(bytes: &[u8]) -> Option<(Record<'_>, &[u8])> {
    let head = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let kind = Kind::from_code(head >> KEY_BITS)?;
    let key_end = 4usize.checked_add((head & KEY_MASK) as usize)?;
    let key = bytes.get(4..key_end)?;
    let ms_end = key_end.checked_add(8)?;
    let ms = u64::from_le_bytes(bytes.get(key_end..ms_end)?.try_into().ok()?);
    let (data, end) = if kind == Kind::Accepted {
        let len = u32::from_le_bytes(bytes.get(ms_end..ms_end + 4)?.try_into().ok()?) as usize;
        let end = (ms_end + 4).checked_add(len)?;
        (bytes.get(ms_end + 4..end)?, end)
    } else {
        (&[][..], ms_end)
    };
    let found = Record {
        kind,
        key,
        ms,
        data,
    };
    Some((found, &bytes[end..]))
}

/// The segment being appended to.
pub(super) struct Segment {
    pub(super) start_ms: u64,
    pub(super) path: PathBuf,
    file: File,
    len: u64,
}

impl Segment {
    /// Creates the segment starting at `start_ms` in `dir` and makes its name durable.
    pub(super) fn create(dir: &Path, start_ms: u64) -> io::Result<Segment> {
        let path = dir.join(file_name(start_ms));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
        // A new file's directory entry is not covered by the file's own fdatasync.
        File::open(dir)?.sync_all()?;
        Ok(Segment {
            start_ms,
            path,
            file,
            len: 0,
        })
    }

    /// Opens an existing segment to append after its first `len` bytes, cutting off
    /// whatever follows them (a torn tail: see [`read_frames`]).
    pub(super) fn reopen(path: PathBuf, start_ms: u64, len: u64) -> io::Result<Segment> {
        let file = OpenOptions::new().append(true).open(&path)?;
        if file.metadata()?.len() > len {
            file.set_len(len)?;
            file.sync_data()?;
        }
        Ok(Segment {
            start_ms,
            path,
            file,
            len,
        })
    }

    /// A segment whose file takes no writes: every append fails as a full or broken
    /// disk makes it fail (tests).
    #[cfg(test)]
    pub(super) fn read_only(path: PathBuf, start_ms: u64) -> io::Result<Segment> {
        let file = File::open(&path)?;
        let len = file.metadata()?.len();
        Ok(Segment {
            start_ms,
            path,
            file,
            len,
        })
    }

    /// Appends one frame: a single `write(2)` unless the kernel takes only part of it.
    pub(super) fn append(&mut self, frame: &[u8]) -> io::Result<()> {
        self.file.write_all(frame)?;
        self.len += frame.len() as u64;
        Ok(())
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// `fdatasync`: what was appended survives a power loss too.
    pub(super) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(records: &[(&[u8], u64)]) -> Vec<u8> {
        let mut f = Frame::new();
        for (key, ms) in records {
            f.push(Record {
                kind: Kind::Seen,
                key,
                ms: *ms,
                data: &[],
            });
        }
        f.finish()
    }

    fn read(bytes: &[u8]) -> (Vec<(Vec<u8>, u64)>, usize) {
        let mut got = Vec::new();
        let len = read_frames(bytes, |r| got.push((r.key.to_vec(), r.ms)));
        (got, len)
    }

    #[test]
    fn names_sort_as_their_starts_and_other_files_are_not_segments() {
        assert_eq!(file_name(42), "00000000000000000042.log");
        assert_eq!(
            parse_name(&file_name(1_700_000_000_000)),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        for other in [
            "42.log",
            "0000000000000000004x.log",
            "00000000000000000042.tmp",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn frames_read_back_in_order() {
        let mut bytes = frame(&[(b"a", 1), (b"", 2), (&[0xff; 300], 3)]);
        bytes.extend(frame(&[(b"b", u64::MAX)]));
        let (got, len) = read(&bytes);
        assert_eq!(len, bytes.len());
        let keys: Vec<_> = got.iter().map(|(k, ms)| (k.len(), *ms)).collect();
        assert_eq!(keys, [(1, 1), (0, 2), (300, 3), (1, u64::MAX)]);
    }

    #[test]
    fn a_frame_cut_anywhere_is_not_read_and_the_frames_before_it_are() {
        let first = frame(&[(b"kept", 1)]);
        let second = frame(&[(b"x", 2), (b"y", 3)]);
        let whole = [first.clone(), second.clone()].concat();
        for cut in first.len()..whole.len() {
            let (got, len) = read(&whole[..cut]);
            assert_eq!(got, [(b"kept".to_vec(), 1)], "cut at {cut}");
            assert_eq!(len, first.len(), "cut at {cut}");
        }
    }

    #[test]
    fn garbage_zeros_and_flipped_bits_end_the_readable_part() {
        let good = frame(&[(b"kept", 1)]);
        let second = frame(&[(b"lost", 2)]);
        let garbage: Vec<u8> = (0..200u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut tails = vec![garbage, vec![0; 64], vec![0xff; 64]];
        for bit in 0..second.len() * 8 {
            let mut flipped = second.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            tails.push(flipped);
        }
        for tail in tails {
            let (got, len) = read(&[good.clone(), tail.clone()].concat());
            assert_eq!(got, [(b"kept".to_vec(), 1)], "tail {tail:?}");
            assert_eq!(len, good.len());
        }
    }

    #[test]
    fn every_kind_reads_back_and_an_unknown_kind_ends_the_readable_part() {
        let records = [
            Record {
                kind: Kind::Accepted,
                key: b"k1",
                ms: 7,
                data: b"the notice",
            },
            Record {
                kind: Kind::Accepted,
                key: b"k2",
                ms: 8,
                data: b"",
            },
            Record {
                kind: Kind::Applied,
                key: b"k1",
                ms: 9,
                data: &[],
            },
            Record {
                kind: Kind::Seen,
                key: b"k3",
                ms: 10,
                data: &[],
            },
        ];
        let mut f = Frame::new();
        for r in records {
            f.push(r);
        }
        let bytes = f.finish();
        let mut got = Vec::new();
        assert_eq!(
            read_frames(&bytes, |r| got.push((
                r.kind,
                r.key.to_vec(),
                r.ms,
                r.data.to_vec()
            ))),
            bytes.len()
        );
        let want: Vec<_> = records
            .iter()
            .map(|r| (r.kind, r.key.to_vec(), r.ms, r.data.to_vec()))
            .collect();
        assert_eq!(got, want);
        // A record of a kind this build does not know, in an otherwise intact frame.
        let mut payload = (1u32 | (3 << KEY_BITS)).to_le_bytes().to_vec();
        payload.extend_from_slice(b"x");
        payload.extend_from_slice(&1u64.to_le_bytes());
        let mut unknown = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
        unknown.extend(payload);
        let crc = crc32fast::hash(&unknown);
        unknown.extend_from_slice(&crc.to_le_bytes());
        let (got, len) = read(&[bytes.clone(), unknown].concat());
        assert_eq!(got.len(), 4);
        assert_eq!(len, bytes.len());
    }
}
