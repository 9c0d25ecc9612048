//! What a verified notice means for the controller: a Media Pull event (1, 3 or 4) becomes
//! an [`Observation`]; anything else is ignored, or malformed when it claims to be one
//! and does not make sense.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::inbox::{Observation, PlayerEvent};
use super::notice::{
    EVENT_PLAYER_CREATED, EVENT_PLAYER_DESTROYED, EVENT_PLAYER_STATUS, MediaPullPayload, Notice,
    PRODUCT_MEDIA_PULL,
};

/// What a verified notice means for the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Not Media Pull, or not an event the controller uses.
    Ignored,
    /// A Media Pull event whose payload does not make sense.
    Malformed,
    Observation(Observation),
}

/// Maps a Media Pull notice (events 1, 3, 4) to an [`Observation`].
pub fn decode(notice: &Notice) -> Decoded {
    decode_payload(notice.product_id, notice.event_type, || {
        MediaPullPayload::deserialize(&notice.payload).ok()
    })
}

/// A [`Notice`] as the intake reads it, in one pass: the payload stays raw until the
/// envelope says it is a Media Pull event, and is then decoded straight into
/// [`MediaPullPayload`] (building a `serde_json::Value` first was a visible share of
/// intake's cost). It requires and tolerates the same fields as [`Notice`]. A payload it
/// does not decode need only be valid JSON: a number no f64 holds (`1E400`) there is
/// accepted, where a [`Notice`]'s `Value` payload would refuse it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Envelope<'a> {
    #[serde(borrow)]
    pub(super) notice_id: Cow<'a, str>,
    pub(super) product_id: u32,
    pub(super) event_type: u32,
    #[serde(rename = "notifyMs")]
    _notify_ms: u64,
    #[serde(borrow)]
    payload: &'a RawValue,
}

impl Envelope<'_> {
    /// [`decode`], without building the whole [`Notice`].
    pub(super) fn decode(&self) -> Decoded {
        decode_payload(self.product_id, self.event_type, || {
            serde_json::from_str(self.payload.get()).ok()
        })
    }
}

/// [`decode`] from the envelope's ids; `payload` is decoded only for a Media Pull event
/// and is `None` when it does not decode.
fn decode_payload(
    product_id: u32,
    event_type: u32,
    payload: impl FnOnce() -> Option<MediaPullPayload>,
) -> Decoded {
    if product_id != PRODUCT_MEDIA_PULL
        || ![
            EVENT_PLAYER_CREATED,
            EVENT_PLAYER_DESTROYED,
            EVENT_PLAYER_STATUS,
        ]
        .contains(&event_type)
    {
        return Decoded::Ignored;
    }
    let Some(payload) = payload() else {
        return Decoded::Malformed;
    };
    if payload.player.id.is_empty() {
        return Decoded::Malformed;
    }
    let event = match event_type {
        EVENT_PLAYER_CREATED => PlayerEvent::Created {
            channel: payload.player.channel_name,
            uid: payload.player.uid,
        },
        EVENT_PLAYER_STATUS => match payload.player.status {
            Some(status) => PlayerEvent::Status(status),
            None => return Decoded::Malformed,
        },
        // A destroy without a reason still means the player is gone.
        _ => PlayerEvent::Destroyed {
            reason: payload.destroy_reason.unwrap_or_default(),
        },
    };
    Decoded::Observation(Observation {
        player_id: payload.player.id,
        name: payload.player.name,
        lts: payload.lts,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agora::wire::PlayerStatus;
    use serde_json::json;

    fn notice(product: u32, event: u32, payload: serde_json::Value) -> Notice {
        Notice {
            notice_id: "n-1".into(),
            product_id: product,
            event_type: event,
            notify_ms: 1,
            payload,
        }
    }

    #[test]
    fn decode_maps_the_three_events() {
        let created = notice(
            4,
            1,
            json!({"lts": 5, "xRequestId": "r", "player": {"id": "p", "name": "n",
                "channelName": "c", "uid": 7, "status": "connecting"}}),
        );
        assert_eq!(
            decode(&created),
            Decoded::Observation(Observation {
                player_id: "p".into(),
                name: Some("n".into()),
                lts: 5,
                event: PlayerEvent::Created {
                    channel: Some("c".into()),
                    uid: Some(7)
                },
            })
        );
        let status = notice(
            4,
            4,
            json!({"lts": 6, "player": {"id": "p", "status": "failed"}}),
        );
        let Decoded::Observation(o) = decode(&status) else {
            panic!("status decodes")
        };
        assert_eq!(o.event, PlayerEvent::Status(PlayerStatus::Failed));
        let destroyed = notice(
            4,
            3,
            json!({"lts": 7, "destroyReason": "Idle Timeout", "player": {"id": "p"}}),
        );
        let Decoded::Observation(o) = decode(&destroyed) else {
            panic!("destroy decodes")
        };
        assert_eq!(
            o.event,
            PlayerEvent::Destroyed {
                reason: "Idle Timeout".into()
            }
        );
    }

    #[test]
    fn decode_ignores_other_products_and_events_and_rejects_bad_payloads() {
        let p = json!({"lts": 1, "player": {"id": "p", "status": "running"}});
        assert_eq!(decode(&notice(1, 4, p.clone())), Decoded::Ignored);
        assert_eq!(decode(&notice(4, 2, p.clone())), Decoded::Ignored);
        assert_eq!(decode(&notice(4, 5, p)), Decoded::Ignored);
        assert_eq!(decode(&notice(4, 4, json!({"a": 1}))), Decoded::Malformed);
        assert_eq!(
            decode(&notice(4, 4, json!({"lts": 1, "player": {"id": "p"}}))),
            Decoded::Malformed,
            "status event without a status"
        );
        assert_eq!(
            decode(&notice(4, 1, json!({"lts": 1, "player": {"id": ""}}))),
            Decoded::Malformed
        );
        assert_eq!(
            decode(&notice(4, 1, json!({"lts": "x", "player": {"id": "p"}}))),
            Decoded::Malformed
        );
    }
}
