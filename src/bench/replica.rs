//! `pullkeeper run` child processes sharing one etcd, for the scenarios that need
//! several replicas (takeover, scale-out): started from this very binary, killed,
//! measured through `/proc`, their JSON logs kept.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::Instant;

use super::rig::{self, Layout, SettingsYaml};
use crate::simulator::SimHandle;
use crate::store::LocalEtcd;
use crate::telemetry::process;

/// What a replica logs when a term begins.
pub const LEADING: &str = "leading the project";
/// What a replica logs when a term ends.
pub const LOST: &str = "leadership lost";
/// Why a term ends when the balance hands its project to a less loaded replica.
pub const HANDED_OVER: &str = "handing the project over";

/// The messages counted as their lines arrive. Counting them by a scan of the whole log
/// (16 MB per replica at the end of a 1,000-project run) every 20 ms while the survivors
/// of a kill took over kept this process busy and the log's lock held, where a replica
/// whose stderr pipe fills waits in its logging.
const COUNTED: [&str; 3] = [LEADING, LOST, HANDED_OVER];

/// What a replica logged: every line, and how many mention each of [`COUNTED`].
#[derive(Default)]
struct Log {
    lines: Vec<String>,
    counts: [usize; COUNTED.len()],
}

/// One `pullkeeper run` child and what it logged.
pub struct Replica {
    pub name: &'static str,
    child: Child,
    log: Arc<Mutex<Log>>,
}

impl Replica {
    pub async fn start(name: &'static str, dir: &Path) -> anyhow::Result<Replica> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--log-format", "json", "run", "--config"])
            .arg(dir.join("pullkeeper.yaml"))
            .envs(rig::env())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start a pullkeeper replica")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let log: Arc<Mutex<Log>> = Arc::default();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = kept.lock().unwrap_or_else(|e| e.into_inner());
                for (count, needle) in log.counts.iter_mut().zip(COUNTED) {
                    *count += usize::from(line.contains(needle));
                }
                log.lines.push(line);
            }
        });
        let replica = Replica { name, child, log };
        replica
            .wait_logged("pullkeeper listening", 0, Duration::from_secs(30))
            .await?;
        Ok(replica)
    }

    /// How many log lines mention `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        match COUNTED.iter().position(|c| *c == needle) {
            Some(i) => log.counts[i],
            None => log.lines.iter().filter(|l| l.contains(needle)).count(),
        }
    }

    /// Its last `n` log lines.
    pub fn log_tail(&self, n: usize) -> String {
        let lines = &self.log.lock().unwrap_or_else(|e| e.into_inner()).lines;
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Writes its whole log to `pullkeeper-bench-{name}.log` in the system's temporary
    /// directory (kept after the bench, unlike its working directory) and returns where.
    pub fn save_log(&self) -> std::io::Result<std::path::PathBuf> {
        let path = std::env::temp_dir().join(format!("pullkeeper-bench-{}.log", self.name));
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::write(&path, log.lines.join("\n"))?;
        Ok(path)
    }

    /// How many projects it leads now, by its log: terms begun minus terms ended.
    pub fn leads(&self) -> usize {
        self.logged(LEADING).saturating_sub(self.logged(LOST))
    }

    /// Waits until more than `seen` lines with `needle` were logged.
    pub async fn wait_logged(
        &self,
        needle: &str,
        seen: usize,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        while self.logged(needle) <= seen {
            if start.elapsed() > limit {
                bail!(
                    "replica {} did not log {needle:?} within {limit:?}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Where it listens, as its log says.
    pub fn addr(&self) -> Option<String> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.lines.iter().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["message"] == "pullkeeper listening")
                .then(|| v["addr"].as_str().map(str::to_string))?
        })
    }

    /// CPU seconds it used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        Ok(process::cpu_seconds_of(self.child.id())?)
    }

    /// A `/proc/PID/status` value in MiB (`VmHWM` = peak RSS).
    pub fn status_mib(&self, field: &str) -> anyhow::Result<f64> {
        Ok(process::status_bytes_of(self.child.id(), field)? as f64 / (1024.0 * 1024.0))
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The settings of replica `name` in `dir`: the bench layout with `settings`, the store
/// in etcd.
pub fn configure(
    dir: &Path,
    layout: Layout,
    api: &str,
    settings: &SettingsYaml<'_>,
    etcd: &LocalEtcd,
    name: &str,
    ttl: Duration,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    rig::write_config(dir, layout, api, settings)?;
    let path = dir.join("pullkeeper.yaml");
    let text = std::fs::read_to_string(&path)?
        .replace(
            "server: { listen: \"127.0.0.1:0\" }",
            "server: { listen: \"127.0.0.1:0\", admin_token: { env: BENCH_ADMIN_TOKEN } }",
        )
        .replace(
            "store: { path: store }",
            &format!(
                "store: {{ backend: etcd, etcd: {{ endpoints: [\"{}\"], prefix: /pk-bench/ }} }}\n\
             leader: {{ ttl: {}s, replica: {name} }}",
                etcd.endpoint(),
                ttl.as_secs()
            ),
        );
    std::fs::write(&path, text)?;
    Ok(())
}

/// Sends project p's notices to `replicas[p % n]`, as a Service spreads them over the
/// pods (one replica: all to it).
pub fn route_ncs(sim: &SimHandle, replicas: &[&Replica], layout: Layout) {
    let addrs: Vec<Option<String>> = replicas.iter().map(|r| r.addr()).collect();
    for p in 0..layout.projects {
        let url = addrs[p % addrs.len()]
            .as_ref()
            .map(|a| format!("http://{a}/ncs/{}", Layout::project_id(p)));
        sim.set_ncs_url(&Layout::app_id(p), url);
    }
}
