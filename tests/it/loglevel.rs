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

/// Text logs to a file (what `kubectl logs` or a log collector stores) carry no colour
/// escape codes, even with `NO_COLOR` unset; the start says the version and then "ready".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_to_a_file_have_no_colour_codes_and_say_version_and_ready() {
    let dir = temp_dir("logfile");
    let sim = start_simulator().await;
    write_config(&dir, &sim, &one_scene("revertive"));
    let log_path = dir.join("stderr.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pullkeeper"))
        .args(["run", "--config"])
        .arg(dir.join("pullkeeper.yaml"))
        .envs(env())
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("PULLKEEPER_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&log_path).unwrap_or_default();
    eventually(Duration::from_secs(30), "\"ready\" in the log file", || {
        read()
            .lines()
            .any(|l| l.ends_with(" ready") || l.contains(" ready "))
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let log = read();
    assert!(!log.contains("\x1b["), "colour codes in a file:\n{log}");
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    let starting = log
        .lines()
        .find(|l| l.contains("pullkeeper starting"))
        .unwrap_or_else(|| panic!("no start line:\n{log}"));
    assert!(starting.contains(&version), "{starting}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An invalid `RUST_LOG` stops any command at start with a message naming it, instead of
/// running at `info` as if the operator had not asked for something else.
#[tokio::test]
async fn an_invalid_rust_log_is_an_error_at_start() {
    let dir = temp_dir("badrustlog");
    let sim = start_simulator().await;
    write_config(&dir, &sim, &one_scene("revertive"));
    let check = |rust_log: &str| {
        Command::new(env!("CARGO_BIN_EXE_pullkeeper"))
            .args(["check", "--config"])
            .arg(dir.join("pullkeeper.yaml"))
            .envs(env())
            .env("RUST_LOG", rust_log)
            .output()
            .unwrap()
    };
    let ok = check("pullkeeper=debug,info");
    assert!(ok.status.success(), "{ok:?}");
    let empty = check("");
    assert!(
        empty.status.success(),
        "an empty RUST_LOG is unset: {empty:?}"
    );
    let bad = check("pullkeeper=loud");
    assert_eq!(bad.status.code(), Some(64), "{bad:?}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("RUST_LOG=\"pullkeeper=loud\" is not a valid log filter"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
