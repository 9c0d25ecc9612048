//! RTMP and RTMPS sources: connect and run the RTMP handshake.
//!
//! The client sends C0 (version 3) and C1 (1536 bytes: time, four zero bytes, random),
//! reads S0, S1 and S2, and answers C2 (S1 echoed), as the simple handshake of the RTMP
//! specification (its section 5.2) has it. A complete exchange proves that an RTMP server
//! listens at that host and port (behind TLS for `rtmps`). It does not prove that the
//! application or the stream key exists, that an encoder is publishing, or that Agora's
//! regions can reach the origin: those surface only when a player `connect`s and plays,
//! so a player that fails while its origin handshakes counts as a player problem and is
//! replaced.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Finding;

pub const VERSION: u8 = 3;
pub const HANDSHAKE_SIZE: usize = 1536;
const DEFAULT_PORT: u16 = 1935;
const DEFAULT_TLS_PORT: u16 = 443;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("the server speaks RTMP version {0}, not 3")]
    Version(u8),
    #[error("handshake broken off: {0}")]
    Io(#[from] std::io::Error),
}

/// How the server's S2 related to our C1. Servers that use the digest handshake (Flash
/// Player 9 and later) do not echo; both are RTMP servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    Exact,
    Digest,
}

/// The client side of the handshake over any byte stream.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<Echo, HandshakeError> {
    let mut c0c1 = vec![0u8; 1 + HANDSHAKE_SIZE];
    c0c1[0] = VERSION;
    // Time 0 and zero "version" bytes ask for the simple (echo) handshake.
    rand::fill(&mut c0c1[9..]);
    stream.write_all(&c0c1).await?;
    stream.flush().await?;
    let mut s0 = [0u8; 1];
    stream.read_exact(&mut s0).await?;
    if s0[0] != VERSION {
        return Err(HandshakeError::Version(s0[0]));
    }
    let mut s1 = vec![0u8; HANDSHAKE_SIZE];
    stream.read_exact(&mut s1).await?;
    let mut s2 = vec![0u8; HANDSHAKE_SIZE];
    stream.read_exact(&mut s2).await?;
    stream.write_all(&s1).await?;
    stream.flush().await?;
    Ok(if s2[8..] == c0c1[9..] {
        Echo::Exact
    } else {
        Echo::Digest
    })
}

pub async fn probe(
    url: &reqwest::Url,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Finding {
    let secure = url.scheme() == "rtmps";
    let Some(host) = url.host_str().map(str::to_string) else {
        return Finding::down("RTMP URL without a host");
    };
    let port = url.port().unwrap_or(if secure {
        DEFAULT_TLS_PORT
    } else {
        DEFAULT_PORT
    });
    let run = async {
        let tcp = match TcpStream::connect((host.as_str(), port)).await {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Finding::down("connection refused");
            }
            Err(e) => return Finding::unknown(format!("cannot connect: {e}")),
        };
        let result = if secure {
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let Ok(name) = ServerName::try_from(host) else {
                return Finding::down("RTMPS host is not a valid TLS server name");
            };
            let connector = tokio_rustls::TlsConnector::from(tls.clone());
            match connector.connect(name, tcp).await {
                Ok(mut s) => handshake(&mut s).await,
                Err(e) => return Finding::down(format!("TLS handshake failed: {e}")),
            }
        } else {
            let mut tcp = tcp;
            handshake(&mut tcp).await
        };
        match result {
            Ok(Echo::Exact) => Finding::up("RTMP handshake complete"),
            Ok(Echo::Digest) => Finding::up("RTMP handshake complete (digest variant)"),
            Err(e) => Finding::down(e.to_string()),
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or_else(|_| Finding::unknown("timed out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that echoes C1 as S2, over an in-memory pipe.
    async fn serve(mut s: tokio::io::DuplexStream, version: u8, echo: bool) {
        let mut c0c1 = vec![0u8; 1 + HANDSHAKE_SIZE];
        s.read_exact(&mut c0c1).await.unwrap();
        let mut reply = vec![version];
        reply.extend(vec![7u8; HANDSHAKE_SIZE]);
        if echo {
            reply.extend_from_slice(&c0c1[1..]);
        } else {
            reply.extend(vec![9u8; HANDSHAKE_SIZE]);
        }
        s.write_all(&reply).await.unwrap();
        let mut c2 = vec![0u8; HANDSHAKE_SIZE];
        s.read_exact(&mut c2).await.unwrap();
        assert_eq!(c2, vec![7u8; HANDSHAKE_SIZE], "C2 echoes S1");
    }

    #[tokio::test]
    async fn handshake_against_echoing_and_digest_servers() {
        for (echo, expected) in [(true, Echo::Exact), (false, Echo::Digest)] {
            let (mut client, server) = tokio::io::duplex(8192);
            let server = tokio::spawn(serve(server, VERSION, echo));
            assert_eq!(handshake(&mut client).await.unwrap(), expected);
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn wrong_version_and_short_answers_fail() {
        let (mut client, server) = tokio::io::duplex(8192);
        tokio::spawn(async move {
            let mut s = server;
            let mut c0c1 = vec![0u8; 1 + HANDSHAKE_SIZE];
            s.read_exact(&mut c0c1).await.unwrap();
            s.write_all(&[6]).await.unwrap();
        });
        assert!(matches!(
            handshake(&mut client).await,
            Err(HandshakeError::Version(6))
        ));
        let (mut client, server) = tokio::io::duplex(8192);
        tokio::spawn(async move {
            let mut s = server;
            let mut c0c1 = vec![0u8; 1 + HANDSHAKE_SIZE];
            s.read_exact(&mut c0c1).await.unwrap();
            s.write_all(&[VERSION, 1, 2, 3]).await.unwrap();
        });
        assert!(matches!(
            handshake(&mut client).await,
            Err(HandshakeError::Io(_))
        ));
    }
}
