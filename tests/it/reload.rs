//! Hot reload of the scenes file: a valid edit takes effect, a broken one changes nothing,
//! a ConfigMap's symlink swap is followed, and a new stream URL is an Update in place.

use std::collections::BTreeMap;
use std::time::Duration;

use pullkeeper::App;
use pullkeeper::config;
use pullkeeper::simulator::SimHandle;
use pullkeeper::store::Store;

use crate::harness::{
    APP_ID, ConfigMap, SCENES, env, eventually, start_app, start_simulator, temp_dir, write_config,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenes_file_edits_apply_and_broken_edits_keep_the_last_good_scenes() {
    let dir = temp_dir("reload");
    let sim = start_simulator().await;
    let config = write_config(&dir, &sim, SCENES);
    let scenes_path = config.scenes_path.clone();
    let app = start_app(config, Store::temporary().unwrap()).await;
    let ours = |sim: &pullkeeper::simulator::SimHandle| {
        sim.players(APP_ID)
            .iter()
            .filter(|p| p.name.as_deref().is_some_and(|n| n.starts_with("pk_")))
            .count()
    };
    eventually(Duration::from_secs(30), "9 players", || ours(&sim) == 9).await;

    // Swap the file the way Kubernetes does: write elsewhere, rename over it.
    let swap = |text: &str| {
        let tmp = dir.join("scenes.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &scenes_path).unwrap();
    };
    let without_lobby = SCENES.split("  - name: lobby").next().unwrap().to_string();
    swap(&without_lobby);
    eventually(Duration::from_secs(15), "lobby's players deleted", || {
        ours(&sim) == 6
    })
    .await;

    swap("scenes:\n  - name: news\n    region: NA\n");
    eventually(Duration::from_secs(10), "the rejection counted", || {
        app.metrics
            .render()
            .contains("pullkeeper_config_reload_failures_total 1")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ours(&sim), 6, "a broken file changes nothing");
    assert_eq!(app.board.all().len(), 2);

    swap(SCENES);
    eventually(Duration::from_secs(15), "lobby back", || ours(&sim) == 9).await;
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `news` scene (a master and one backup) playing `url`, plus `more` of its fields.
fn news(url: &str, more: &str) -> String {
    format!(
        r#"
  - name: news
    project: e2e
    channel: news-live
    stream_url: {url}
    region: na
    backups: 1
    hold_down: 1s
    uids: {{ start: 1000, end: 1099 }}
{more}"#
    )
}

const SPORTS: &str = r#"
  - name: sports
    project: e2e
    channel: sports-live
    stream_url: https://origin.example.com/sports/index.m3u8
    region: eu
    backups: 1
    uids: { start: 2000, end: 2099 }
"#;

/// A scene's players in the simulator: name → (id, uid, stream URL, volume).
fn players_of(
    sim: &SimHandle,
    scene: &str,
) -> BTreeMap<String, (String, Option<u64>, String, u32)> {
    let prefix = format!("pk_{scene}_");
    sim.players(APP_ID)
        .into_iter()
        .filter_map(|p| {
            let name = p.name.filter(|n| n.starts_with(&prefix))?;
            Some((name, (p.id, p.uid, p.stream_url, p.volume)))
        })
        .collect()
}

/// Update calls the simulator answered 200.
fn updates(sim: &SimHandle) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status == Some(200))
        .count()
}

/// Reconcile passes of project `e2e` so far, and polls that found nothing to plan: each
/// one judged the scenes in force.
fn passes(app: &App) -> u64 {
    let scrape = app.metrics.render();
    [
        "pullkeeper_reconcile_passes_total",
        "pullkeeper_reconcile_skipped_total",
    ]
    .iter()
    .map(|metric| {
        scrape
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{metric}{{project=\"e2e\"}} ")))
            .map_or(0, |n| n.parse::<u64>().unwrap())
    })
    .sum()
}

/// Waits until the controller has judged a few more times, so a change it was going to
/// make would have started.
async fn a_few_passes(app: &App) {
    let from = passes(app);
    eventually(
        Duration::from_secs(30),
        "three more reconcile passes or quiet polls",
        || passes(app) >= from + 3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_swaps_add_a_scene_keep_the_last_good_one_and_update_urls_in_place() {
    let dir = temp_dir("configmap");
    let sim = start_simulator().await;
    let first = format!("scenes:{}", news("rtmp://origin.example.com/live/news", ""));
    let config = write_config(&dir, &sim, &first);
    let mut map = ConfigMap::mount(&dir, &first);
    let store = Store::open(&dir.join("store")).unwrap();
    let app = start_app(config, store.clone()).await;
    eventually(Duration::from_secs(30), "news running", || {
        app.board
            .get("news")
            .is_some_and(|s| s.healthy_players == 2)
    })
    .await;
    let before = players_of(&sim, "news");
    assert_eq!(before.len(), 2);

    // A scene added through a swap is created.
    let with_sports = format!("{first}{SPORTS}");
    map.update(&with_sports);
    eventually(Duration::from_secs(30), "sports running", || {
        app.board
            .get("sports")
            .is_some_and(|s| s.healthy_players == 2)
    })
    .await;
    assert_eq!(players_of(&sim, "sports").len(), 2);

    // A broken file keeps the scenes in force.
    map.update("scenes:\n  - name: news\n    region: NA\n");
    eventually(Duration::from_secs(10), "the rejection counted", || {
        app.metrics
            .render()
            .contains("pullkeeper_config_reload_failures_total 1")
    })
    .await;
    let created = sim.history().len();
    a_few_passes(&app).await;
    assert_eq!(
        sim.history().len(),
        created,
        "a broken file creates nothing"
    );
    assert_eq!(players_of(&sim, "news"), before, "nor touches a player");
    assert_eq!(players_of(&sim, "sports").len(), 2);

    // A new stream URL and volume are Updates: same players, same UIDs, nothing created.
    let new_url = "rtmp://origin.example.com/live/news-v2";
    map.update(&format!(
        "scenes:{}{SPORTS}",
        news(new_url, "    volume: 40\n")
    ));
    eventually(Duration::from_secs(30), "both news players updated", || {
        players_of(&sim, "news")
            .values()
            .all(|(_, _, url, volume)| url == new_url && *volume == 40)
    })
    .await;
    let after = players_of(&sim, "news");
    let identity = |m: &BTreeMap<String, (String, Option<u64>, String, u32)>| {
        m.iter()
            .map(|(name, (id, uid, _, _))| (name.clone(), id.clone(), *uid))
            .collect::<Vec<_>>()
    };
    assert_eq!(identity(&after), identity(&before));
    assert_eq!(sim.history().len(), created, "nothing recreated");
    assert!(updates(&sim) >= 2, "one Update per player at least");
    let listed = sim.players(APP_ID);
    assert!(
        listed
            .iter()
            .filter(|p| p.channel_name == "news-live")
            .all(|p| p.stream_url == new_url),
        "the simulator's List shows the new URL"
    );

    // The store remembers what was applied: a restart sends no Update again.
    app.shutdown().await;
    let sent = updates(&sim);
    let config = config::load_with_env(&dir.join("pullkeeper.yaml"), &env()).unwrap();
    let app = start_app(config, store).await;
    a_few_passes(&app).await;
    eventually(
        Duration::from_secs(30),
        "news running after restart",
        || {
            app.board
                .get("news")
                .is_some_and(|s| s.healthy_players == 2)
        },
    )
    .await;
    a_few_passes(&app).await;
    assert_eq!(updates(&sim), sent, "a restart repeats no Update");
    assert_eq!(sim.history().len(), created, "nor creates anything");
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
