//! An acknowledged notice as the log keeps it: the `data` of a [`Kind::Accepted`]
//! record, from which a restart rebuilds the notices not applied and each player's
//! newest position.
//!
//! ```text
//! data = project length (u32 LE) · project · player length (u32 LE) · player
//!        · lts (u64 LE) · stage (u8) · body
//! ```
//!
//! [`Kind::Accepted`]: super::segment::Kind::Accepted

use crate::store::{NoticePosition, PendingNotice};

pub(super) fn encode(notice: &PendingNotice) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(17 + notice.project.len() + notice.player.len() + notice.body.len());
    for part in [&notice.project, &notice.player] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(&notice.position.lts.to_le_bytes());
    out.push(notice.position.stage);
    out.extend_from_slice(&notice.body);
    out
}

/// The notice kept under `key`, or `None` for data this build cannot read.
pub(super) fn decode(key: &[u8], data: &[u8]) -> Option<PendingNotice> {
    let (project, rest) = text(data)?;
    let (player, rest) = text(rest)?;
    let lts = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let stage = *rest.get(8)?;
    Some(PendingNotice {
        project,
        key: String::from_utf8(key.to_vec()).ok()?,
        body: rest[9..].to_vec(),
        player,
        position: NoticePosition { lts, stage },
    })
}

fn text(bytes: &[u8]) -> Option<(String, &[u8])> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(len)?;
    let text = std::str::from_utf8(bytes.get(4..end)?).ok()?.to_string();
    Some((text, &bytes[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(player: &str, lts: u64, stage: u8) -> PendingNotice {
        PendingNotice {
            project: "p".into(),
            key: format!("p\0{player}{lts}{stage}"),
            body: br#"{"json":true}"#.to_vec(),
            player: player.into(),
            position: NoticePosition { lts, stage },
        }
    }

    #[test]
    fn a_notice_reads_back_and_cut_data_does_not() {
        let n = notice("pl", 1_700_000_000_000, 2);
        let data = encode(&n);
        assert_eq!(decode(n.key.as_bytes(), &data), Some(n.clone()));
        for cut in 0..data.len() - n.body.len() {
            assert_eq!(decode(n.key.as_bytes(), &data[..cut]), None, "cut at {cut}");
        }
    }
}
