//! The real `pullkeeper` binary as a child process: started, SIGKILLed, SIGTERMed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::time::Instant;

use crate::harness::env;

/// A running `pullkeeper run` and the lines it logged.
pub struct Proc {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Runs `pullkeeper run --config <dir>/pullkeeper.yaml` with JSON logs and waits
    /// until it listens (its log says where: the settings ask for port 0).
    pub async fn start(dir: &Path) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pullkeeper"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(dir.join("pullkeeper.yaml"))
            .envs(env())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the pullkeeper binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap();
        let mut proc = Proc {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        match addr {
            Ok(addr) => proc.addr = addr,
            Err(_) => panic!(
                "pullkeeper did not start listening; its log:\n{}",
                proc.log_tail(50)
            ),
        }
        proc
    }

    /// SIGKILL: no chance to flush or finish anything.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the killed process is reaped");
    }

    /// SIGTERM, as Kubernetes sends it.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends `SIG{name}` (`STOP` freezes the process as a long GC pause or a stopped VM
    /// would, `CONT` resumes it).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the process to exit; its status and how long it took.
    pub async fn exit_within(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait works") {
                return (status, start.elapsed());
            }
            assert!(
                start.elapsed() < limit,
                "still running {limit:?} after the signal; log:\n{}",
                self.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The JSON log lines whose message is `message`, in order.
    pub fn logged(&self, message: &str) -> Vec<serde_json::Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("message").and_then(|m| m.as_str()) == Some(message))
            .collect()
    }

    /// How many log lines so far mention `needle` anywhere.
    pub fn mentions(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The last `n` log lines.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    /// A failing test must not leave a supervisor running behind it.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? != "pullkeeper listening" {
        return None;
    }
    v.get("addr")?.as_str()?.parse().ok()
}
