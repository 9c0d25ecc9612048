//! A listener whose connections do their TLS handshake where they are served.
//!
//! `accept` only accepts TCP; the handshake runs on the connection's first read or
//! write, inside the task `axum::serve` starts for it. So under [`Bounded`] a connection
//! holds its place among the listener's connections from accept, through the handshake,
//! until it closes, and a burst of clients that never finish their handshake waits in
//! the kernel's backlog like any other burst instead of costing a task each. One slow or
//! silent client never holds up the accept loop, and each gets [`HANDSHAKE_TIMEOUT`]:
//! the port faces the internet directly.
//!
//! [`Bounded`]: crate::http::bounded::Bounded

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Sleep, sleep};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{Accept, TlsAcceptor};

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Wait after a failed accept (e.g. out of file descriptors) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(500);

pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: rustls::ServerConfig) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }

    /// The same listener giving each handshake `timeout` instead of [`HANDSHAKE_TIMEOUT`].
    pub fn with_handshake_timeout(self, timeout: Duration) -> TlsListener {
        TlsListener {
            handshake_timeout: timeout,
            ..self
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => {
                    let connection = TlsConnection {
                        state: State::Handshaking {
                            accept: self.acceptor.accept(stream),
                            deadline: Box::pin(sleep(self.handshake_timeout)),
                        },
                        peer,
                    };
                    return (connection, peer);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// A TLS connection that completes its handshake on first use, or fails with
/// `TimedOut` when the handshake takes too long.
pub struct TlsConnection {
    state: State,
    peer: SocketAddr,
}

enum State {
    Handshaking {
        accept: Accept<TcpStream>,
        deadline: Pin<Box<Sleep>>,
    },
    Ready(TlsStream<TcpStream>),
    /// The handshake failed or timed out; the error was returned once already.
    Failed,
}

impl TlsConnection {
    /// Drives the handshake; ready with the stream once it is done.
    fn poll_stream(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut TlsStream<TcpStream>>> {
        if let State::Handshaking { accept, deadline } = &mut self.state {
            let outcome = match Pin::new(accept).poll(cx) {
                Poll::Ready(Ok(tls)) => Ok(tls),
                Poll::Ready(Err(e)) => {
                    tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                    Err(e)
                }
                Poll::Pending => {
                    ready!(deadline.as_mut().poll(cx));
                    tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "TLS handshake timed out",
                    ))
                }
            };
            match outcome {
                Ok(tls) => self.state = State::Ready(tls),
                Err(e) => {
                    self.state = State::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        match &mut self.state {
            State::Ready(tls) => Poll::Ready(Ok(tls)),
            State::Handshaking { .. } | State::Failed => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake did not complete",
            ))),
        }
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let tls = ready!(self.get_mut().poll_stream(cx))?;
        Pin::new(tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let tls = ready!(self.get_mut().poll_stream(cx))?;
        Pin::new(tls).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let tls = ready!(self.get_mut().poll_stream(cx))?;
        Pin::new(tls).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.state {
            State::Ready(tls) => Pin::new(tls).poll_shutdown(cx),
            // Nothing was said over TLS yet: dropping the socket closes it.
            State::Handshaking { .. } | State::Failed => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_has_ten_seconds() {
        // README, Run: "Handshakes time out after 10 s."
        assert_eq!(HANDSHAKE_TIMEOUT, Duration::from_secs(10));
    }
}
