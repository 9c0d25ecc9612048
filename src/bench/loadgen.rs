//! A small closed-loop HTTP/1.1 load generator: `connections` keep-alive connections,
//! each sending the next prepared request as soon as the previous answer is in.
//!
//! Built in because every notice must be a different signed body (unique `noticeId`,
//! HMAC over the exact bytes), which wrk's Lua cannot compute, and because it records
//! every latency, so percentiles are exact. Requests are prepared before the clock
//! starts; the generator's own per-request work is a write and a read.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, usize>,
}

impl Measurement {
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// A POST of `body` to `path` with `headers`, as raw bytes.
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// Sends every request once over `connections` connections to `addr`.
pub async fn run(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    connections: usize,
) -> std::io::Result<Measurement> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (requests, next) = (requests.clone(), next.clone());
        tasks.spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(4096);
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    return Ok::<_, std::io::Error>(mine);
                };
                let sent = Instant::now();
                stream.write_all(request).await?;
                let status = read_response(&mut stream, &mut buf).await?;
                mine.push((sent.elapsed(), status));
            }
        });
    }
    let mut latencies = Vec::with_capacity(requests.len());
    let mut statuses = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        for (latency, status) in done.map_err(std::io::Error::other)?? {
            latencies.push(latency);
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    Ok(Measurement {
        elapsed: start.elapsed(),
        latencies,
        statuses,
    })
}

/// Reads one response with a `Content-Length` body; returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed mid-response"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("non-UTF-8 head"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| bad("no Content-Length"))?;
    let mut have = buf.len() - head_end;
    while have < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed mid-body"));
        }
        have += n;
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post as route_post;

    #[tokio::test]
    async fn every_request_is_answered_and_timed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/x", route_post(|body: String| async move { body }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let requests: Vec<Vec<u8>> = (0..50)
            .map(|i| {
                post(
                    addr,
                    "/x",
                    &[("X-N", i.to_string())],
                    format!("{i}").as_bytes(),
                )
            })
            .collect();
        let out = run(addr, Arc::new(requests), 4).await.unwrap();
        assert_eq!(out.latencies.len(), 50);
        assert_eq!(out.statuses.get(&200), Some(&50));
        assert!(out.rate() > 0.0);
    }
}
