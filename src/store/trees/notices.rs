//! The NCS notices kept between their 200 and their application, and each player's
//! newest notice position.
//!
//! Trees:
//! - `ncs_pending`: `{project}\0{notice key}` → the notice's player, its position and its
//!   body (see [`encode`]).
//! - `ncs_positions`: `{project}\0{player}` → the player's newest position (`lts` as 8
//!   big-endian bytes, then the stage byte).

use super::{Backend, Tree, TreeStore, key};
use crate::store::error::StoreError;
use crate::store::interface::{NoticePosition, PendingNotice, PlayerPosition};

impl<B: Backend> TreeStore<B> {
    pub(in crate::store) fn put_notice_impl(
        &self,
        notice: &PendingNotice,
    ) -> Result<(), StoreError> {
        let position_key = key(&[&notice.project, &notice.player]);
        let new = position_bytes(notice.position);
        // Only ever raised: two notices of one player may be written in either order.
        self.notice_positions
            .update(&position_key, |old| match old.and_then(read_position) {
                Some(old) if old >= notice.position => position_bytes(old).to_vec(),
                _ => new.to_vec(),
            })?;
        self.pending_notices.insert(
            &key(&[&notice.project, &notice.key]),
            &encode(&notice.player, notice.position, &notice.body),
        )
    }

    pub(in crate::store) fn notices_applied_impl(
        &self,
        project: &str,
        keys: &[String],
    ) -> Result<(), StoreError> {
        for k in keys {
            self.pending_notices.remove(&key(&[project, k]))?;
        }
        Ok(())
    }

    pub(in crate::store) fn pending_notices_impl(&self) -> Result<Vec<PendingNotice>, StoreError> {
        let mut out = Vec::new();
        self.pending_notices.visit_all(|k, v| {
            let corrupt = |detail: &str| StoreError::Corrupt {
                tree: "ncs_pending",
                detail: detail.to_string(),
            };
            let (project, key) = split(k).ok_or_else(|| corrupt("key without project"))?;
            let (player, position, body) = decode(v).ok_or_else(|| corrupt("truncated value"))?;
            out.push(PendingNotice {
                project,
                key,
                body,
                player,
                position,
            });
            Ok(())
        })?;
        Ok(out)
    }

    pub(in crate::store) fn notice_positions_impl(
        &self,
    ) -> Result<Vec<PlayerPosition>, StoreError> {
        let mut out = Vec::new();
        self.notice_positions.visit_all(|k, v| {
            let corrupt = || StoreError::Corrupt {
                tree: "ncs_positions",
                detail: "malformed entry".into(),
            };
            let (project, player) = split(k).ok_or_else(corrupt)?;
            let position = read_position(v).ok_or_else(corrupt)?;
            out.push(PlayerPosition {
                project,
                player,
                position,
            });
            Ok(())
        })?;
        Ok(out)
    }

    pub(in crate::store) fn forget_notice_positions_impl(
        &self,
        lts: u64,
    ) -> Result<usize, StoreError> {
        let mut old = Vec::new();
        self.notice_positions.visit_all(|k, v| {
            if read_position(v).is_none_or(|p| p.lts < lts) {
                old.push(k.to_vec());
            }
            Ok(())
        })?;
        for k in &old {
            self.notice_positions.remove(k)?;
        }
        Ok(old.len())
    }
}

fn position_bytes(p: NoticePosition) -> [u8; 9] {
    let mut out = [0; 9];
    out[..8].copy_from_slice(&p.lts.to_be_bytes());
    out[8] = p.stage;
    out
}

fn read_position(v: impl AsRef<[u8]>) -> Option<NoticePosition> {
    let v = v.as_ref();
    let lts = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let stage = *v.get(8)?;
    (v.len() == 9).then_some(NoticePosition { lts, stage })
}

/// A pending notice's value: the player's length (u32 BE), the player, the position
/// (9 bytes), the body.
fn encode(player: &str, position: NoticePosition, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(player.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + player.len() + 9 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(player.as_bytes());
    out.extend_from_slice(&position_bytes(position));
    out.extend_from_slice(body);
    out
}

fn decode(v: &[u8]) -> Option<(String, NoticePosition, Vec<u8>)> {
    let len = u32::from_be_bytes(v.get(..4)?.try_into().ok()?) as usize;
    let player = std::str::from_utf8(v.get(4..4 + len)?).ok()?.to_string();
    let position = read_position(v.get(4 + len..4 + len + 9)?)?;
    Some((player, position, v.get(4 + len + 9..)?.to_vec()))
}

/// `{project}\0{rest}` → (project, rest).
fn split(k: &[u8]) -> Option<(String, String)> {
    let at = k.iter().position(|&b| b == 0)?;
    let project = std::str::from_utf8(&k[..at]).ok()?.to_string();
    let rest = std::str::from_utf8(&k[at + 1..]).ok()?.to_string();
    Some((project, rest))
}
