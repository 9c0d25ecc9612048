use super::*;
use crate::agora::wire::PlayerStatus;
use crate::ncs::inbox::Drained;
use axum::http::HeaderValue;
use serde_json::json;
use std::time::Duration;

#[test]
fn v2_header_wins_and_sha1_is_the_fallback() {
    let body = b"{}";
    let s256 = signature::sign_sha256(b"k", body);
    let s1 = signature::sign_sha1(b"k", body);
    let mut h = HeaderMap::new();
    assert!(!signature_ok(&h, b"k", body), "no header");
    h.insert(signature::HEADER_SHA1, HeaderValue::from_str(&s1).unwrap());
    assert!(signature_ok(&h, b"k", body), "SHA1 alone");
    assert!(!signature_ok(&h, b"other", body));
    // With V2 present only V2 counts, even if the SHA1 one is right.
    h.insert(signature::HEADER_SHA256, HeaderValue::from_static("00"));
    assert!(!signature_ok(&h, b"k", body));
    h.insert(
        signature::HEADER_SHA256,
        HeaderValue::from_str(&s256).unwrap(),
    );
    assert!(signature_ok(&h, b"k", body));
}

/// One project `p` with secret `k` on `store`, and its inbox.
fn rig(store: &Store) -> (Intake, Arc<Inbox>, NoticeLog) {
    let inbox = Arc::new(Inbox::default());
    let project = NcsProject {
        secret: "k".into(),
        inbox: inbox.clone(),
    };
    let projects = HashMap::from([("p".to_string(), project)]);
    let log = NoticeLog::open(store).unwrap();
    (
        Intake::new(projects, log.clone(), store.clone()).unwrap(),
        inbox,
        log,
    )
}

/// A signed status notice `id` about player `pl` at `lts`.
async fn deliver(intake: &Intake, id: &str, pl: &str, status: &str, lts: u64) -> Receipt {
    try_deliver(intake, id, pl, status, lts).await.unwrap()
}

/// [`deliver`], with the error that keeps the notice from being acknowledged.
async fn try_deliver(
    intake: &Intake,
    id: &str,
    pl: &str,
    status: &str,
    lts: u64,
) -> Result<Receipt, StoreError> {
    let body = serde_json::to_vec(&json!({
        "noticeId": id, "productId": 4, "eventType": 4, "notifyMs": 1,
        "payload": {"lts": lts, "player": {"id": pl, "name": "pk_s_m_1", "status": status}},
    }))
    .unwrap();
    let mut headers = HeaderMap::new();
    let signature = signature::sign_sha256(b"k", &body);
    headers.insert(
        signature::HEADER_SHA256,
        HeaderValue::from_str(&signature).unwrap(),
    );
    intake.take("p", &headers, &body).await
}

#[tokio::test]
async fn an_acknowledged_notice_and_each_players_order_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("pk-intake-{}", uuid::Uuid::new_v4()));
    {
        let store = Store::open(&dir).unwrap();
        let (intake, inbox, log) = rig(&store);
        assert_eq!(
            deliver(&intake, "n1", "a", "running", 100).await,
            Receipt::Accepted
        );
        assert_eq!(
            deliver(&intake, "n2", "a", "failed", 200).await,
            Receipt::Accepted
        );
        // The first was applied; the second was acknowledged, then the process died.
        let drained = inbox.drain_all();
        assert_eq!(drained.acknowledged.len(), 2);
        assert_eq!(drained.acknowledged[1].player_id, "a");
        log.applied("p", vec![drained.acknowledged[0].key.clone()])
            .await
            .unwrap();
    }
    let store = Store::reopen(&dir);
    let (intake, inbox, log) = rig(&store);
    assert_eq!(intake.replay().unwrap(), 1);
    let drained = inbox.drain_all();
    assert_eq!(drained.observations.len(), 1);
    let failed = &drained.observations[0];
    assert_eq!(
        (failed.lts, &failed.event),
        (200, &PlayerEvent::Status(PlayerStatus::Failed))
    );
    // The order survived: an older event delivered late is stale, a resend a duplicate.
    assert_eq!(
        deliver(&intake, "n0", "a", "connecting", 150).await,
        Receipt::Stale
    );
    assert_eq!(
        deliver(&intake, "n2", "a", "failed", 200).await,
        Receipt::Duplicate
    );
    assert_eq!(
        deliver(&intake, "n3", "a", "running", 300).await,
        Receipt::Accepted
    );
    let keys = |drained: Drained| {
        drained
            .acknowledged
            .into_iter()
            .map(|a| a.key)
            .collect::<Vec<_>>()
    };
    let applied = keys(inbox.drain_all());
    log.applied("p", keys(drained)).await.unwrap();
    log.applied("p", applied).await.unwrap();
    drop((intake, log));
    drop(store);
    let store = Store::reopen(&dir);
    assert_eq!(
        rig(&store).0.replay().unwrap(),
        0,
        "applied: nothing replays"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_replayed_notice_of_a_project_no_longer_configured_is_dropped() {
    let store = Store::temporary().unwrap();
    store
        .put_notice(&PendingNotice {
            project: "gone".into(),
            key: "k".into(),
            body: b"{}".to_vec(),
            player: "a".into(),
            position: NoticePosition { lts: 1, stage: 1 },
        })
        .unwrap();
    let (intake, inbox, _) = rig(&store);
    assert_eq!(intake.replay().unwrap(), 0);
    assert!(inbox.drain().is_empty());
    assert!(store.pending_notices().unwrap().is_empty());
}

#[test]
fn dedupe_key_ignores_notify_ms() {
    let a = Notice {
        notice_id: "n-1".into(),
        product_id: 4,
        event_type: 1,
        notify_ms: 1,
        payload: json!({}),
    };
    let mut b = a.clone();
    b.notify_ms = 99;
    assert_eq!(dedupe_key("p", &a), dedupe_key("p", &b));
    let mut c = a.clone();
    c.event_type = 4;
    assert_ne!(dedupe_key("p", &a), dedupe_key("p", &c));
    assert_ne!(dedupe_key("p", &a), dedupe_key("q", &a));
}

/// On etcd the notice's id is held in the store from its write and durable only with the
/// flush: a resend after the flush failed is not a duplicate to acknowledge, or a kill
/// before the next flush would lose a notice NCS no longer resends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_etcd_a_resend_is_acknowledged_only_once_its_first_delivery_is_durable() {
    use crate::store::{EtcdOptions, LocalEtcd};
    use tokio_util::sync::CancellationToken;
    let mut server = LocalEtcd::start().unwrap();
    let store = Store::etcd(&EtcdOptions {
        endpoints: vec![server.endpoint()],
        prefix: "/pk/".into(),
        ttl: Duration::from_secs(3),
        credentials: None,
        ca_file: None,
        installation: "test".into(),
        replica: "a".into(),
        projects: vec!["p".into()],
    })
    .unwrap();
    let stop = CancellationToken::new();
    let leading = tokio::spawn({
        let (leadership, stop) = (store.leadership().clone(), stop.clone());
        async move { leadership.run(stop).await }
    });
    tokio::time::timeout(Duration::from_secs(12), store.leadership().term("p"))
        .await
        .expect("leads p");
    let inbox = Arc::new(Inbox::default());
    let projects = HashMap::from([(
        "p".to_string(),
        NcsProject {
            secret: "k".into(),
            inbox: inbox.clone(),
        },
    )]);
    let log = NoticeLog::for_projects(&store, vec!["p".into()]).unwrap();
    let intake = Intake::new(projects, log, store.clone()).unwrap();
    assert_eq!(
        deliver(&intake, "n1", "a", "running", 100).await,
        Receipt::Accepted
    );
    assert_eq!(
        deliver(&intake, "n1", "a", "running", 100).await,
        Receipt::Duplicate,
        "durable: a resend is a duplicate"
    );

    server.kill();
    assert!(
        try_deliver(&intake, "n2", "a", "failed", 200)
            .await
            .is_err(),
        "not durable: not acknowledged"
    );
    let resend = try_deliver(&intake, "n2", "a", "failed", 200).await;
    assert!(
        resend.is_err(),
        "the resend of a notice not durable is not acknowledged either: {resend:?}"
    );

    server.restart().unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(receipt) = try_deliver(&intake, "n2", "a", "failed", 200).await {
                return receipt;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("acknowledged once etcd is back");
    assert!(inbox.drain_all().acknowledged.len() >= 2);
    stop.cancel();
    leading.await.unwrap();
}
