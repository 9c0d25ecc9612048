//! Fuzz tests of NCS notice decoding, and the notice generators the webhook's own fuzz
//! test (in `http::ncs`) sends through the router.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::decode::{Decoded, decode};
use super::notice::Notice;
use crate::fuzzing::{self, json_value};

/// The payload of a Media Pull event, mostly well-formed: ids, statuses, uids and
/// reasons near what Agora sends, now and then any JSON in their place.
pub(crate) fn media_payload() -> impl Strategy<Value = Value> {
    let id = prop_oneof![3 => "p-[0-9]{1,2}", 1 => any::<String>()];
    let status = prop_oneof![
        Just(json!("running")),
        Just(json!("failed")),
        Just(json!("connecting")),
        Just(json!("migrating")),
        json_value(),
    ];
    (
        prop_oneof![3 => (0u64..10_000).prop_map(Value::from), 1 => json_value()],
        id,
        status,
        prop_oneof![
            Just(Value::Null),
            any::<u64>().prop_map(Value::from),
            json_value()
        ],
        prop_oneof![
            Just(json!("Delete Request")),
            Just(Value::Null),
            json_value()
        ],
    )
        .prop_map(|(lts, id, status, uid, reason)| {
            json!({
                "lts": lts,
                "player": { "id": id, "name": "pk_news_m_1", "channelName": "news",
                            "uid": uid, "status": status },
                "destroyReason": reason,
            })
        })
}

/// A notice envelope, mostly Media Pull events 1, 3 and 4, now and then anything.
pub(crate) fn notice_json() -> impl Strategy<Value = Value> {
    (
        prop_oneof![3 => "n-[0-9]{1,3}", 1 => any::<String>()],
        prop_oneof![4 => Just(json!(4)), 1 => any::<u32>().prop_map(Value::from), 1 => json_value()],
        prop_oneof![
            4 => prop_oneof![Just(1u32), Just(3), Just(4)].prop_map(Value::from),
            1 => any::<u32>().prop_map(Value::from),
        ],
        any::<u64>(),
        prop_oneof![3 => media_payload(), 1 => json_value()],
    )
        .prop_map(|(id, product, event, notify, payload)| {
            json!({ "noticeId": id, "productId": product, "eventType": event,
                    "notifyMs": notify, "payload": payload, "appId": "x" })
        })
}

#[test]
fn fuzz_notice_decoding_never_panics_and_keeps_its_contract() {
    proptest!(fuzzing::config(3000), |(
        product in prop_oneof![3 => Just(4u32), 1 => any::<u32>()],
        event in prop_oneof![3 => prop_oneof![Just(1u32), Just(3), Just(4)], 1 => any::<u32>()],
        payload in prop_oneof![media_payload(), json_value()],
    )| {
        let notice = Notice {
            notice_id: "n".into(),
            product_id: product,
            event_type: event,
            notify_ms: 0,
            payload,
        };
        match decode(&notice) {
            Decoded::Ignored => prop_assert!(product != 4 || ![1, 3, 4].contains(&event)),
            Decoded::Malformed => prop_assert!(product == 4),
            Decoded::Observation(o) => {
                prop_assert!(product == 4 && [1, 3, 4].contains(&event));
                prop_assert!(!o.player_id.is_empty());
            }
        }
    });
}
