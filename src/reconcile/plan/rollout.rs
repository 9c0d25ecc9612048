//! Reloads that change what players run: Update in place, or a rollout of new players.
//!
//! Pure helpers of the plan. A change Update can carry (§1.7: stream URL, volume) goes to
//! each live player at once, because it costs no player and no UID. A change only a
//! Create can carry replaces players one slot at a time per scene, backups first and the
//! master last: the new player is created next to the old one under a fresh UID, and the
//! old one is deleted once the new one runs (the plan's generation sweep), so the scene
//! never has fewer running players than before. The next slot starts only when the scene
//! has nothing in transition, which is also what keeps a rollout from stacking on top of
//! a failover.

use crate::agora::wire::ListedPlayer;
use crate::config::UidRange;
use crate::model::{Fixed, Live, SlotKey, SlotRecord, Spec};

use super::actions::Update;

/// The Update the current player of `key` needs to run `want`, if any.
///
/// When List already shows the wanted stream URL, Agora applied it (the process died
/// between the Update and its record, or the store was lost): only the record learns it,
/// so a restart never sends the same change twice.
pub(super) fn update(
    key: &SlotKey,
    name: &str,
    player: &ListedPlayer,
    applied: &Spec,
    want: &Live,
) -> Option<Update> {
    let url_differs = applied.live.stream_url != want.stream_url;
    let send_volume = applied.live.volume != want.volume;
    if !url_differs && !send_volume {
        return None;
    }
    let shown = player.stream_url.as_deref() == Some(want.stream_url.as_str());
    Some(Update {
        key: key.clone(),
        id: player.id.clone(),
        name: name.to_string(),
        to: want.clone(),
        send_stream_url: url_differs && !shown,
        send_volume,
    })
}

/// What makes the current player of a slot unfit for the scene as configured now: the
/// create-only fields that changed, and `uids` if its UID left the scene's range. Empty
/// when it may stay.
pub(super) fn unfit(
    record: &SlotRecord,
    applied: &Spec,
    fixed: &Fixed,
    uids: UidRange,
) -> Vec<&'static str> {
    let mut changed = applied.fixed.changes(fixed);
    // 0: an adopted player whose List entry had no UID; nothing says it is out of range.
    if record.uid != 0 && !(uids.start..=uids.end).contains(&record.uid) {
        changed.push("uids");
    }
    changed
}

/// The slot a scene rolls out next: of the slots whose players are unfit, the highest,
/// so backups go before the master (slot 0) and the master last. `None` while anything
/// of the scene is in transition.
pub(super) fn next_slot(unfit_slots: &[u32], settled: bool) -> Option<u32> {
    if !settled {
        return None;
    }
    unfit_slots.iter().copied().max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Phase, PlayerStatus, RECORD_VERSION, Region};

    fn spec(url: &str, volume: u32) -> Spec {
        Spec {
            live: Live {
                stream_url: url.into(),
                volume,
            },
            fixed: Fixed {
                channel: "c".into(),
                region: Region::Na,
                idle_timeout: 300,
                token_sha256: None,
            },
        }
    }

    fn listed(url: Option<&str>) -> ListedPlayer {
        ListedPlayer {
            id: "id1".into(),
            name: Some("pk_s_m_1".into()),
            stream_url: url.map(Into::into),
            channel_name: Some("c".into()),
            uid: Some(7),
            account: None,
            create_ts: 0,
            status: Some(PlayerStatus::Running),
        }
    }

    fn record(uid: u32) -> SlotRecord {
        SlotRecord {
            v: RECORD_VERSION,
            name: "pk_s_m_1".into(),
            uid,
            generation: 1,
            phase: Phase::Created,
            region: Region::Na,
            id: Some("id1".into()),
            created_at_ms: 0,
            spec: Some(spec("rtmp://a", 100)),
        }
    }

    fn sends(a: Option<Update>) -> Option<(bool, bool)> {
        a.map(|u| (u.send_stream_url, u.send_volume))
    }

    #[test]
    fn only_what_changed_is_sent() {
        let key = SlotKey::new("p", "s", 0);
        let applied = spec("rtmp://a", 100);
        let at = |url: &str, volume| spec(url, volume).live;
        let p = listed(Some("rtmp://a"));
        assert_eq!(
            sends(update(&key, "n", &p, &applied, &at("rtmp://a", 100))),
            None
        );
        assert_eq!(
            sends(update(&key, "n", &p, &applied, &at("rtmp://b", 100))),
            Some((true, false))
        );
        assert_eq!(
            sends(update(&key, "n", &p, &applied, &at("rtmp://a", 40))),
            Some((false, true))
        );
        // A List entry without a stream URL says nothing: send it.
        let bare = listed(None);
        assert_eq!(
            sends(update(&key, "n", &bare, &applied, &at("rtmp://b", 40))),
            Some((true, true))
        );
    }

    #[test]
    fn a_url_list_already_shows_is_recorded_not_sent_again() {
        let key = SlotKey::new("p", "s", 0);
        let applied = spec("rtmp://a", 100);
        let p = listed(Some("rtmp://b"));
        assert_eq!(
            sends(update(&key, "n", &p, &applied, &spec("rtmp://b", 100).live)),
            Some((false, false))
        );
    }

    #[test]
    fn create_only_changes_and_a_uid_outside_the_range_make_a_player_unfit() {
        let r = record(1005);
        let applied = r.spec.clone().unwrap();
        let range = UidRange {
            start: 1000,
            end: 1099,
        };
        assert!(unfit(&r, &applied, &applied.fixed, range).is_empty());
        let moved = Fixed {
            channel: "d".into(),
            ..applied.fixed.clone()
        };
        assert_eq!(unfit(&r, &applied, &moved, range), vec!["channel"]);
        let narrowed = UidRange {
            start: 1010,
            end: 1099,
        };
        assert_eq!(unfit(&r, &applied, &applied.fixed, narrowed), vec!["uids"]);
        assert!(unfit(&record(0), &applied, &applied.fixed, narrowed).is_empty());
    }

    #[test]
    fn backups_roll_first_the_master_last_and_only_when_settled() {
        assert_eq!(next_slot(&[0, 1, 2], true), Some(2));
        assert_eq!(next_slot(&[0, 1], true), Some(1));
        assert_eq!(next_slot(&[0], true), Some(0));
        assert_eq!(next_slot(&[0, 2], false), None);
        assert_eq!(next_slot(&[], true), None);
    }
}
