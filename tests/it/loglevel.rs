//! `PUT /v1/log-level` and SIGUSR1 on the real binary: its JSON log lines on stderr show
//! the level change; bad directives get 400 and requests without the admin token 401.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::{
    ADMIN_TOKEN, admin_json, env, eventually, one_scene, start_simulator, temp_dir, write_config,
};

/// The debug line a notice with a wrong signature produces (src/ncs/intake.rs).
const BAD_SIGNATURE_LOG: &str = "NCS notice with a missing or wrong signature";
const LEVEL_CHANGED_LOG: &str = "log level changed";
const SIGUSR1_LOG: &str = "SIGUSR1: log level toggled";

/// `pullkeeper run` as a child process whose stderr lines are collected; killed on drop.
struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn start(config: &std::path::Path) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pullkeeper"))
            .args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .envs(env())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Process { child, lines }
    }

    /// Sends `signal` (as `kill` spells it) to this child, by its process id.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn count(&self, text: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(text)).count()
    }

    /// Waits until `text` has appeared `n` times. stderr is one ordered stream, so every
    /// line written before it has been read too.
    async fn until_count(&self, text: &str, n: usize) {
        let what = format!("{n} × {text:?} on stderr");
        eventually(Duration::from_secs(30), &what, || self.count(text) >= n).await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_level_changes_at_run_time_behind_the_admin_token() {
    let dir = temp_dir("loglevel");
    let sim = start_simulator().await;
    write_config(&dir, &sim, &one_scene("revertive"));
    let process = Process::start(&dir.join("pullkeeper.yaml"));
    process.until_count("pullkeeper listening", 1).await;
    let listening: serde_json::Value = process
        .lines()
        .iter()
        .find(|l| l.contains("pullkeeper listening"))
        .map(|l| serde_json::from_str(l).expect("--log-format json writes JSON lines"))
        .unwrap();
    let addr = listening["addr"].as_str().unwrap().to_string();
    let url = format!("http://{addr}/v1/log-level");
    let http = reqwest::Client::new();
    let bad_notice = || async {
        let answer = http
            .post(format!("http://{addr}/ncs/e2e"))
            .header("Agora-Signature-V2", "00")
            .body(r#"{"noticeId":"n1","productId":1,"eventType":1,"notifyMs":1,"payload":{}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    };

    let no_token = http.put(&url).body("debug").send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    let wrong = http.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let now: serde_json::Value = admin_json(&url).await;
    assert_eq!(now["directive"], "info");

    // At info the bad notice leaves no debug line.
    bad_notice().await;
    let put = |directive: &'static str| {
        let request = http.put(&url).bearer_auth(ADMIN_TOKEN).body(directive);
        async move { request.send().await.unwrap() }
    };
    let changed = put("pullkeeper=debug,info").await;
    assert_eq!(changed.status(), StatusCode::OK);
    let body: serde_json::Value = changed.json().await.unwrap();
    assert_eq!(body["directive"], "pullkeeper=debug,info");
    process.until_count(LEVEL_CHANGED_LOG, 1).await;
    assert_eq!(
        process.count(BAD_SIGNATURE_LOG),
        0,
        "{:#?}",
        process.lines()
    );

    // At debug it does.
    bad_notice().await;
    process.until_count(BAD_SIGNATURE_LOG, 1).await;

    for bad in ["pullkeeper=loud", "", " \n"] {
        let refused = put(bad).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        let body: serde_json::Value = refused.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("directive"), "{bad:?}: {message}");
    }

    // Back to info: the next bad notice is silent again. The second level change is the
    // marker that everything logged before it has been read.
    assert_eq!(put("info").await.status(), StatusCode::OK);
    process.until_count(LEVEL_CHANGED_LOG, 2).await;
    bad_notice().await;
    assert_eq!(put("info").await.status(), StatusCode::OK);
    process.until_count(LEVEL_CHANGED_LOG, 3).await;
    assert_eq!(
        process.count(BAD_SIGNATURE_LOG),
        1,
        "{:#?}",
        process.lines()
    );

    // SIGUSR1 turns pullkeeper's debug logs on, and the next one back off.
    process.signal("-USR1");
    process.until_count(SIGUSR1_LOG, 1).await;
    bad_notice().await;
    process.until_count(BAD_SIGNATURE_LOG, 2).await;
    process.signal("-USR1");
    process.until_count(SIGUSR1_LOG, 2).await;
    let now: serde_json::Value = admin_json(&url).await;
    assert_eq!(now["directive"], "info");
    bad_notice().await;
    assert_eq!(put("info").await.status(), StatusCode::OK);
    process.until_count(LEVEL_CHANGED_LOG, 6).await;
    assert_eq!(
        process.count(BAD_SIGNATURE_LOG),
        2,
        "{:#?}",
        process.lines()
    );
    drop(process);
    let _ = std::fs::remove_dir_all(&dir);
}
