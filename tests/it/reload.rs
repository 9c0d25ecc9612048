//! Hot reload of the scenes file: a valid edit takes effect, a broken one changes nothing.

use std::time::Duration;

use pullkeeper::store::Store;

use crate::harness::{
    APP_ID, SCENES, eventually, start_app, start_simulator, temp_dir, write_config,
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
