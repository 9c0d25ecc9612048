//! Folding NCS observations into the observed players.
//!
//! Between two Lists, notices are the freshest truth: a `failed` status or a destroy
//! pullkeeper did not cause must reach the plan at once (that is the whole point of
//! listening), and a created player can be seen before the List lag lets List show it.
//! The next complete List replaces the picture wholesale, so a notice can only ever make
//! the picture fresher, never stick.

use crate::agora::wire::{ListedPlayer, PlayerStatus};
use crate::ncs::inbox::{Observation, PlayerEvent};
use crate::ncs::notice::destroy_reason;

/// Applies one observation to `players`. `deleted_by_us` tells whether pullkeeper itself
/// deleted (or is deleting) the player with that id. Returns whether the picture changed:
/// a notice that only repeats what the picture says needs no new plan.
pub fn fold(
    players: &mut Vec<ListedPlayer>,
    observation: Observation,
    deleted_by_us: impl Fn(&str) -> bool,
) -> bool {
    let Observation {
        player_id,
        name,
        event,
        ..
    } = observation;
    let index = players.iter().position(|p| p.id == player_id);
    let status = match event {
        PlayerEvent::Destroyed { reason } => {
            if reason == destroy_reason::DELETE_REQUEST && deleted_by_us(&player_id) {
                if let Some(i) = index {
                    players.remove(i);
                }
                return index.is_some();
            }
            // Gone without pullkeeper asking: as good as failed, replace it now.
            PlayerStatus::Failed
        }
        PlayerEvent::Status(status) => status,
        // Media reports are counted by the controller, not folded into the picture.
        PlayerEvent::Stalled => return false,
        PlayerEvent::Created { channel, uid } => {
            if index.is_none() {
                players.push(ListedPlayer {
                    id: player_id,
                    name,
                    stream_url: None,
                    channel_name: channel,
                    uid,
                    account: None,
                    create_ts: 0,
                    status: Some(PlayerStatus::Connecting),
                });
            }
            return index.is_none();
        }
    };
    match index {
        Some(i) => {
            let changed = players[i].status != Some(status);
            players[i].status = Some(status);
            changed
        }
        None => {
            players.push(ListedPlayer {
                id: player_id,
                name,
                stream_url: None,
                channel_name: None,
                uid: None,
                account: None,
                create_ts: 0,
                status: Some(status),
            });
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(id: &str, event: PlayerEvent) -> Observation {
        Observation {
            player_id: id.into(),
            name: Some(format!("pk_s_m_{id}")),
            lts: 1,
            event,
        }
    }

    fn status_of(players: &[ListedPlayer], id: &str) -> Option<PlayerStatus> {
        players.iter().find(|p| p.id == id).and_then(|p| p.status)
    }

    #[test]
    fn failed_status_reaches_the_picture() {
        let mut players = vec![];
        fold(
            &mut players,
            obs(
                "1",
                PlayerEvent::Created {
                    channel: Some("c".into()),
                    uid: Some(5),
                },
            ),
            |_| false,
        );
        assert_eq!(status_of(&players, "1"), Some(PlayerStatus::Connecting));
        fold(
            &mut players,
            obs("1", PlayerEvent::Status(PlayerStatus::Failed)),
            |_| false,
        );
        assert_eq!(status_of(&players, "1"), Some(PlayerStatus::Failed));
        assert_eq!(players.len(), 1);
    }

    #[test]
    fn a_notice_that_repeats_the_picture_changes_nothing() {
        let mut players = vec![];
        let running = || obs("1", PlayerEvent::Status(PlayerStatus::Running));
        assert!(fold(&mut players, running(), |_| false));
        assert!(!fold(&mut players, running(), |_| false));
        let created = || {
            obs(
                "1",
                PlayerEvent::Created {
                    channel: None,
                    uid: None,
                },
            )
        };
        assert!(!fold(&mut players, created(), |_| false));
        assert!(fold(
            &mut players,
            obs("1", PlayerEvent::Status(PlayerStatus::Failed)),
            |_| false
        ));
        assert!(!fold(&mut players, obs("1", PlayerEvent::Stalled), |_| {
            false
        }));
    }

    #[test]
    fn destroy_not_caused_by_us_is_a_failure_ours_is_a_removal() {
        let mut players = vec![];
        for id in ["1", "2", "3"] {
            fold(
                &mut players,
                obs(id, PlayerEvent::Status(PlayerStatus::Running)),
                |_| false,
            );
        }
        let ours = |id: &str| id == "1";
        let destroyed = |reason: &str| PlayerEvent::Destroyed {
            reason: reason.into(),
        };
        fold(&mut players, obs("1", destroyed("Delete Request")), ours);
        fold(&mut players, obs("2", destroyed("Idle Timeout")), ours);
        fold(&mut players, obs("3", destroyed("Delete Request")), ours);
        assert_eq!(status_of(&players, "1"), None);
        assert_eq!(status_of(&players, "2"), Some(PlayerStatus::Failed));
        assert_eq!(
            status_of(&players, "3"),
            Some(PlayerStatus::Failed),
            "someone else deleted it"
        );
    }
}
