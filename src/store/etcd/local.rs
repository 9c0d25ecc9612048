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
    cluster: String,
}

/// Between two `/health` asks while a member starts.
const POLL: Duration = Duration::from_millis(20);
/// How many asks a member may take to answer `/health` (20 s).
const START_POLLS: u32 = 1000;

impl LocalEtcd {
    /// Starts a single-member cluster and waits until it is healthy.
    pub fn start() -> std::io::Result<LocalEtcd> {
        let (client_port, peer_port) = (free_port()?, free_port()?);
        let name = "m1".to_string();
        let cluster = format!("{name}=http://127.0.0.1:{peer_port}");
        let dir = std::env::temp_dir().join(format!("pk-etcd-{}", uuid::Uuid::new_v4()));
        let mut etcd = LocalEtcd {
            child: None,
            name,
            dir,
            client_port,
            peer_port,
            cluster,
        };
        etcd.spawn()?;
        etcd.wait_healthy()?;
        Ok(etcd)
    }

    /// The client URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Kills the member (SIGKILL) and waits for it to exit; its data stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the killed member again on the same ports and data.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        self.spawn()?;
        self.wait_healthy()
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let client = self.endpoint();
        let child = Command::new("etcd")
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.cluster])
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
        let url = format!("127.0.0.1:{}", self.client_port);
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
