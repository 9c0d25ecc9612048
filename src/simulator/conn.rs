//! A TCP listener whose connections the handler can kill.
//!
//! `FaultAction::Drop` must be a transport failure for the client, not an HTTP status:
//! a client has to see "connection closed before message completed". Each accepted
//! stream carries a kill switch that handlers reach through `ConnectInfo`; once it is
//! set, every write fails, so hyper closes the socket before any response byte leaves.
//! `FaultAction::Cut` sets a byte budget instead: the answer starts and then dies.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub struct KillableListener(pub TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let io = KillableStream {
                        inner: stream,
                        kill: KillSwitch::default(),
                    };
                    return (io, addr);
                }
                // Same policy as axum's own TcpListener: log, back off, keep serving.
                Err(e) => {
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// How many more bytes the connection may write; once they are used up it dies.
#[derive(Debug, Clone)]
pub struct KillSwitch(Arc<AtomicUsize>);

impl Default for KillSwitch {
    fn default() -> Self {
        KillSwitch(Arc::new(AtomicUsize::new(usize::MAX)))
    }
}

impl KillSwitch {
    /// The connection dies on its next write.
    pub fn kill(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    /// The connection writes `bytes` more bytes, then dies.
    pub fn cut_after(&self, bytes: usize) {
        self.0.store(bytes, Ordering::SeqCst);
    }

    fn is_killed(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for KillSwitch {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.io().kill.clone()
    }
}

pub struct KillableStream {
    inner: TcpStream,
    kill: KillSwitch,
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "dropped by fault injection",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // One writer per connection, so a plain load and store keep the budget exact.
        let left = self.kill.0.load(Ordering::SeqCst);
        if left == 0 {
            return Poll::Ready(Err(killed()));
        }
        let allowed = buf.len().min(left);
        let result = Pin::new(&mut self.inner).poll_write(cx, &buf[..allowed]);
        if let Poll::Ready(Ok(written)) = &result
            && left != usize::MAX
        {
            self.kill.0.store(left - written, Ordering::SeqCst);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
