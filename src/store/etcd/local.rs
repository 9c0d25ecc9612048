//! A real etcd server on loopback, started by tests and benchmarks (Debian's
//! `etcd-server` package provides the binary); never a fake of etcd.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One etcd member on loopback ports, killed and its data removed on drop.
pub struct LocalEtcd {
    child: Option<Child>,
    name: String,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    /// Plain HTTP `/health`, also when clients must speak TLS.
    metrics_port: u16,
    /// Certificate and key (PEM) clients are served with, when TLS is on.
    tls: Option<(PathBuf, PathBuf)>,
    cluster: String,
    /// Unique per cluster, so members of two test clusters never talk.
    token: String,
}

/// Between two `/health` asks while a member starts.
const POLL: Duration = Duration::from_millis(20);
/// How many asks a member may take to answer `/health` (20 s).
const START_POLLS: u32 = 1000;

impl LocalEtcd {
    /// Starts a single-member cluster and waits until it is healthy.
    pub fn start() -> std::io::Result<LocalEtcd> {
        Ok(LocalEtcd::cluster(1)?.remove(0))
    }

    /// A single member serving clients over TLS with `cert` and `key` (PEM files).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> std::io::Result<LocalEtcd> {
        let mut etcd = LocalEtcd::start()?;
        etcd.kill();
        etcd.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        etcd.restart()?;
        Ok(etcd)
    }

    /// Starts a cluster of `members` and waits until each is healthy (which takes a
    /// quorum, so all are started first).
    pub fn cluster(members: usize) -> std::io::Result<Vec<LocalEtcd>> {
        let ports = (0..members)
            .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
            .collect::<std::io::Result<Vec<(u16, u16, u16)>>>()?;
        let cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer, _))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("pk-etcd-{}", uuid::Uuid::new_v4());
        let base = std::env::temp_dir().join(&token);
        let mut out = Vec::new();
        for (i, (client_port, peer_port, metrics_port)) in ports.into_iter().enumerate() {
            let mut member = LocalEtcd {
                child: None,
                name: format!("m{i}"),
                dir: base.join(format!("m{i}")),
                client_port,
                peer_port,
                metrics_port,
                tls: None,
                cluster: cluster.clone(),
                token: token.clone(),
            };
            member.spawn()?;
            out.push(member);
        }
        for member in &mut out {
            member.wait_healthy()?;
        }
        Ok(out)
    }

    /// The client URL.
    /// The member's process, while it runs (a benchmark reports its CPU).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its Prometheus metrics (`etcd_mvcc_db_total_size_in_bytes`, …), plain HTTP.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// Kills the member (SIGKILL) and waits for it to exit; its data stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the killed member again on the same ports and data, and waits until it
    /// is healthy (for a member of a cluster that has lost its quorum: until enough
    /// members are back, so restart those with [`LocalEtcd::revive`] first).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.revive()?;
        self.wait_healthy()
    }

    /// Starts the killed member again without waiting for it.
    pub fn revive(&mut self) -> std::io::Result<()> {
        self.kill();
        self.spawn()
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let client = self.endpoint();
        let metrics = format!("http://127.0.0.1:{}", self.metrics_port);
        let mut command = Command::new("etcd");
        if let Some((cert, key)) = &self.tls {
            command
                .arg("--cert-file")
                .arg(cert)
                .arg("--key-file")
                .arg(key);
        }
        let child = command
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .args(["--listen-metrics-urls", &metrics])
            // Fast elections and no fsync: a test server, not a durable one.
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            .arg("--unsafe-no-fsync")
            .args([
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
                "--log-level",
                "error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot start etcd (Debian package etcd-server): {e}"),
                )
            })?;
        self.child = Some(child);
        Ok(())
    }

    fn wait_healthy(&mut self) -> std::io::Result<()> {
        let url = format!("127.0.0.1:{}", self.metrics_port);
        for _ in 0..START_POLLS {
            if health(&url) {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                return Err(std::io::Error::other(format!("etcd exited: {status}")));
            }
            std::thread::sleep(POLL);
        }
        Err(std::io::Error::other("etcd did not become healthy"))
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        // The cluster's directory, once its last member's is gone.
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir(base);
        }
    }
}

/// Asks `/health` over a plain socket (no runtime needed).
fn health(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
