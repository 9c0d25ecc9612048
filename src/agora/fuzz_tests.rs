//! Fuzz tests of the List page decoder: what Agora sends back is decoded with the same
//! serde path as [`super::client`] uses, and every name in it goes through the parser
//! that decides which players are pullkeeper's.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::wire::{ListResponse, PlayerStatus};
use crate::fuzzing::{self, json_leaf, json_value};
use crate::model::{format_name, parse_name};

/// Names near pullkeeper's own format, so the parser sees its own shape, almost-its-shape
/// and foreign names alike.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "pk_[a-z0-9-]{1,8}_(m|b[0-9]{1,3})_[0-9]{1,20}",
        2 => "(pk|px|)_?[a-z_]{0,6}_?(m|b|b0|b01|x)?_?-?[0-9]{0,22}",
        1 => any::<String>(),
    ]
}

fn player() -> impl Strategy<Value = Value> {
    (
        prop_oneof![3 => "[a-f0-9]{8}", 1 => any::<String>()],
        prop_oneof![4 => name().prop_map(Value::from), 1 => json_leaf()],
        prop_oneof![3 => any::<u32>().prop_map(Value::from), 1 => json_leaf()],
        prop_oneof![
            3 => prop::sample::select(&["running", "failed", "idle", "migrating"][..])
                .prop_map(Value::from),
            1 => json_leaf(),
        ],
        prop_oneof![3 => any::<i64>().prop_map(Value::from), 1 => json_leaf()],
    )
        .prop_map(|(id, name, uid, status, ts)| {
            json!({ "id": id, "name": name, "uid": uid, "status": status, "createTs": ts,
                    "channelName": "news", "streamUrl": "rtmp://h/a" })
        })
}

fn page() -> impl Strategy<Value = Vec<u8>> {
    let structured = (
        proptest::collection::vec(player(), 0..20),
        prop_oneof![
            Just(Value::Null),
            Just(json!("")),
            Just(json!("0")),
            "[a-z0-9]{1,12}".prop_map(Value::from),
            json_leaf(),
        ],
        prop_oneof![3 => any::<u64>().prop_map(Value::from), 1 => json_leaf()],
    )
        .prop_map(|(players, token, total)| {
            serde_json::to_vec(&json!({ "players": players, "nextPageToken": token,
                                         "totalSize": total, "fields": "player.id" }))
            .unwrap_or_default()
        });
    prop_oneof![
        4 => structured,
        1 => proptest::collection::vec(any::<u8>(), 0..256),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
    ]
}

#[test]
fn fuzz_list_page_decoder() {
    proptest!(fuzzing::config(2500), |(bytes in page())| {
        let Ok(page) = serde_json::from_slice::<ListResponse>(&bytes) else {
            return Ok(());
        };
        if let Some(t) = page.next_token() {
            prop_assert!(!t.is_empty() && t != "0");
        }
        for p in &page.players {
            let Some(name) = &p.name else { continue };
            // A name the parser accepts is exactly the one pullkeeper would have formatted,
            // so a foreign player can never be mistaken for one of ours.
            if let Some(n) = parse_name("pk", name) {
                prop_assert_eq!(&format_name("pk", &n.scene, n.slot, n.generation), name);
            }
        }
    });
}

#[test]
fn unknown_statuses_and_missing_fields_keep_the_page() {
    let page: ListResponse = serde_json::from_slice(
        br#"{"players":[{"id":"a","status":"migrating"},{"id":"b"}],"nextPageToken":"0"}"#,
    )
    .unwrap();
    assert_eq!(page.players[0].status, Some(PlayerStatus::Unknown));
    assert_eq!(page.players[1].name, None);
    assert_eq!(page.next_token(), None);
}
