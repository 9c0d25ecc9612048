//! Redundant sources and the slate: `backup_stream_urls` and `slate_url`.

use super::{one, run, scene};
use crate::model::SLATE_SLOT;

#[test]
fn backups_pull_backup_urls_in_order_then_the_primary() {
    let s = run(&scene(
        "a",
        &[
            ("backups: 1", "backups: 3"),
            (
                "region: na",
                "region: na\n    backup_stream_urls: [rtmp://b/one, https://c/two.m3u8]\n    slate_url: https://cdn/slate.png",
            ),
        ],
    ))
    .unwrap();
    let a = &s[0];
    let urls: Vec<&str> = [0, 1, 2, 3, SLATE_SLOT]
        .into_iter()
        .map(|slot| a.slot_url(slot))
        .collect();
    assert_eq!(
        urls,
        [
            "rtmp://h/a",
            "rtmp://b/one",
            "https://c/two.m3u8",
            "rtmp://h/a",
            "https://cdn/slate.png"
        ]
    );
    let labels: Vec<String> = [0, 1, 2, 3, SLATE_SLOT]
        .into_iter()
        .map(|slot| a.source_label(slot))
        .collect();
    assert_eq!(
        labels,
        ["primary", "backup1", "backup2", "primary", "slate"]
    );
    assert_eq!(a.sources().len(), 3);
}

#[test]
fn more_backup_urls_than_backups_is_an_error_at_the_list() {
    let d = one(&scene(
        "a",
        &[(
            "region: na",
            "region: na\n    backup_stream_urls: [rtmp://b/one, rtmp://b/two]",
        )],
    ));
    assert_eq!(
        d,
        (
            Some(7),
            "scenes[0].backup_stream_urls".to_string(),
            "backup_stream_urls lists 2 URLs but the scene has 1 backups; each backup pulls one URL, in order"
                .to_string()
        )
    );
}

#[test]
fn each_backup_url_is_checked_where_it_is_written() {
    let d = one(&scene(
        "a",
        &[(
            "region: na",
            "region: na\n    backup_stream_urls:\n      - ftp://b/one",
        )],
    ));
    assert_eq!(d.0, Some(8));
    assert_eq!(d.1, "scenes[0].backup_stream_urls[0]");
    assert!(d.2.starts_with("stream_url must be rtmp://"), "{}", d.2);
}

#[test]
fn a_slate_is_an_http_image_or_file() {
    let d = one(&scene(
        "a",
        &[("region: na", "region: na\n    slate_url: rtmp://h/slate")],
    ));
    assert_eq!(
        d,
        (
            Some(7),
            "scenes[0].slate_url".to_string(),
            "slate_url must be an http:// or https:// image or file (JPEG, PNG, MP4, …)"
                .to_string()
        )
    );
}
