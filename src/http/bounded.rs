//! A listener wrapper that bounds what connections may cost: at most
//! [`MAX_CONNECTIONS`] open at once, and each closed after [`IDLE_TIMEOUT`] without a
//! byte either way.
//!
//! `axum::serve` keeps a connection open for as long as the client does, and each costs
//! a task, hyper's state and an 8 KiB read buffer. A sender that opens a connection
//! per notice in a burst and keeps them in its idle pool (the simulator does, reqwest's
//! default) made these more than half of pullkeeper's heap at scale (heaptrack at 100
//! projects, BENCHMARKS.md). Beyond the bound, new connections wait in the kernel's
//! backlog until one closes; NCS asks receivers for 10 s of keep-alive
//! (docs/agora-api.md §2.1), which the idle timeout gives three times over. The place is
//! taken before the inner listener accepts and given back when the connection is
//! dropped, so over TLS it covers the handshake too (see `tls::listener`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep, sleep};

/// Connections served at once on one listener.
pub const MAX_CONNECTIONS: usize = 1024;

/// A connection with no traffic either way for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// `L`, with its connections bounded in number and idle time.
pub struct Bounded<L> {
    inner: L,
    permits: Arc<Semaphore>,
    idle: Duration,
}

impl<L> Bounded<L> {
    pub fn with_limits(inner: L, max_connections: usize, idle: Duration) -> Self {
        Bounded {
            inner,
            permits: Arc::new(Semaphore::new(max_connections)),
            idle,
        }
    }
}

impl<L: Listener> Listener for Bounded<L> {
    type Io = Idle<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (io, addr) = self.inner.accept().await;
        let io = Idle {
            inner: io,
            timeout: self.idle,
            deadline: Box::pin(sleep(self.idle)),
            _permit: permit,
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that fails with `TimedOut` once idle too long, and frees its place
/// among the listener's connections when dropped.
pub struct Idle<T> {
    inner: T,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl<T> Idle<T> {
    fn active(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.timeout);
    }

    /// Passes a read's or write's outcome on; while it is pending, the idle deadline
    /// may end the connection with `TimedOut` instead.
    fn track<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(result) => {
                self.active();
                Poll::Ready(result)
            }
            Poll::Pending => {
                ready!(self.deadline.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle",
                )))
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Idle<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.track(cx, polled)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Idle<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.track(cx, polled)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn listener(max: usize, idle: Duration) -> (Bounded<TcpListener>, std::net::SocketAddr) {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        (Bounded::with_limits(tcp, max, idle), addr)
    }

    #[test]
    fn the_bounds_the_readme_states() {
        // README, Run: 1,024 connections at once, each closed after 30 s without traffic.
        assert_eq!(MAX_CONNECTIONS, 1024);
        assert_eq!(IDLE_TIMEOUT, Duration::from_secs(30));
    }

    #[tokio::test]
    async fn beyond_the_bound_a_connection_waits_until_one_closes() {
        let (mut bounded, addr) = listener(2, IDLE_TIMEOUT).await;
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        let _c = TcpStream::connect(addr).await.unwrap();
        let (first, _) = bounded.accept().await;
        let (_second, _) = bounded.accept().await;
        let third = tokio::time::timeout(Duration::from_millis(200), bounded.accept()).await;
        assert!(
            third.is_err(),
            "a third connection was served beyond the bound of 2"
        );
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), bounded.accept()).await;
        assert!(third.is_ok(), "a freed place was not handed on");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_ends_and_traffic_keeps_one_open() {
        let (mut bounded, addr) = listener(4, Duration::from_secs(30)).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut served, _) = bounded.accept().await;
        let mut buf = [0u8; 4];
        // Traffic every 20 s keeps it open past 30 s.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(20)).await;
            client.write_all(b"ping").await.unwrap();
            served.read_exact(&mut buf).await.unwrap();
        }
        let read = served.read(&mut buf).await;
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
