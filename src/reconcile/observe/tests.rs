use std::collections::BTreeSet;
use std::time::Duration;

use super::*;

fn listed(id: &str, status: PlayerStatus) -> ListedPlayer {
    ListedPlayer {
        id: id.to_string(),
        name: Some(format!("pk_{id}")),
        stream_url: None,
        channel_name: Some("news-live".into()),
        uid: None,
        account: None,
        create_ts: 0,
        status: Some(status),
    }
}

fn list(observed: &mut Observed, players: &[(&str, PlayerStatus)]) -> ListNews {
    let players = players.iter().map(|(id, s)| listed(id, *s)).collect();
    observed.apply_list(players, None, 0, Duration::from_secs(1), |_| 3)
}

fn status(observed: &Observed, id: &str) -> Option<PlayerStatus> {
    observed
        .players()
        .iter()
        .find(|p| p.id == id)
        .and_then(|p| p.status)
}

/// Three rounds in which `a`'s check gets a 5xx while `b`'s is answered.
fn fail_by_checks(observed: &mut Observed) {
    for _ in 0..3 {
        assert!(observed.start_check_round(2));
        observed.apply_check("a", Some(CheckAnswer::ServerError), 3);
        observed.apply_check("b", Some(CheckAnswer::Healthy), 3);
    }
}

#[test]
fn a_player_failed_by_its_checks_stays_failed_while_agora_lists_it_running() {
    use PlayerStatus::Running;
    let mut observed = Observed::new(None);
    list(&mut observed, &[("a", Running), ("b", Running)]);
    fail_by_checks(&mut observed);
    assert_eq!(status(&observed, "a"), Some(PlayerStatus::Failed));
    assert_eq!(observed.take_detections().len(), 1);

    // A List answered before the replacement starts still shows it running.
    assert_eq!(
        list(&mut observed, &[("a", Running), ("b", Running)]),
        ListNews::Same
    );
    assert_eq!(status(&observed, "a"), Some(PlayerStatus::Failed));
    let running = Observation {
        player_id: "a".into(),
        name: Some("pk_a".into()),
        lts: 1,
        event: PlayerEvent::Status(Running),
    };
    assert!(!observed.apply_notice(running, &BTreeSet::new()));
    assert_eq!(status(&observed, "a"), Some(PlayerStatus::Failed));
    assert!(
        observed.take_detections().is_empty(),
        "one failure, detected once"
    );
    assert_eq!(status(&observed, "b"), Some(Running));
}

#[test]
fn the_verdict_ends_with_the_player() {
    use PlayerStatus::Running;
    let mut observed = Observed::new(None);
    list(&mut observed, &[("a", Running), ("b", Running)]);
    fail_by_checks(&mut observed);
    list(&mut observed, &[("b", Running)]);
    list(&mut observed, &[("a", Running), ("b", Running)]);
    assert_eq!(status(&observed, "a"), Some(Running), "gone from a List");

    fail_by_checks(&mut observed);
    observed.apply_deleted("a".into());
    assert!(observed.condemned.is_empty(), "deleted by pullkeeper");
}
