//! Serving a router: plain HTTP, or HTTPS through [`TlsListener`], with the peer address
//! available to handlers as [`Peer`] (the NCS address guard, [`super::ncs::guard`], needs it).
//!
//! Both go through `axum::serve`, whose HTTP/1.1 connections stay open for any number
//! of requests (NCS asks for at least 100 requests and 10 s idle per connection,
//! docs/agora-api.md §2.1), on a [`Bounded`] listener: a bounded number of
//! connections, each closed after an idle time. A TLS connection's handshake runs in its
//! connection's task (see [`TlsListener`]), so it counts against that bound too. A
//! connection that starts with HTTP/2's preface is served as HTTP/2: the other replicas
//! send theirs that way, many requests on one connection (see `peers`).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::bounded::{Bounded, IDLE_TIMEOUT, MAX_CONNECTIONS};
use super::tls::TlsListener;

/// The address a connection came from (the proxy's, behind one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl<L> Connected<IncomingStream<'_, Bounded<L>>> for Peer
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    fn connect_info(stream: IncomingStream<'_, Bounded<L>>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// What a router is served on.
pub enum Listening {
    Plain(TcpListener),
    Tls(TlsListener),
}

/// Serves `router` until `shutdown`, then lets open requests finish; at most
/// [`MAX_CONNECTIONS`] connections at once.
pub async fn serve(listening: Listening, router: Router, shutdown: CancellationToken) {
    serve_bounded(listening, router, shutdown, MAX_CONNECTIONS).await
}

/// [`serve`] with at most `max_connections` at once; over TLS a connection counts from
/// accept, through its handshake, until it closes.
pub async fn serve_bounded(
    listening: Listening,
    router: Router,
    shutdown: CancellationToken,
    max_connections: usize,
) {
    let service = router.into_make_service_with_connect_info::<Peer>();
    let done = shutdown.cancelled_owned();
    let result = match listening {
        Listening::Plain(l) => {
            axum::serve(
                Bounded::with_limits(l, max_connections, IDLE_TIMEOUT),
                service,
            )
            .with_graceful_shutdown(done)
            .await
        }
        Listening::Tls(l) => {
            axum::serve(
                Bounded::with_limits(l, max_connections, IDLE_TIMEOUT),
                service,
            )
            .with_graceful_shutdown(done)
            .await
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "HTTP server stopped");
    }
}
