//! Typed errors of the Media Pull client.
//!
//! Callers decide by class, not by message: Agora's best-practice page prescribes a
//! different reaction to each (docs/agora-api.md §1.9), and the failover logic counts 404
//! and 5xx as strikes against a player while a network failure says nothing about the
//! player.

use std::fmt;
use std::time::Duration;

/// The API an error came from; also the label of the API metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Create,
    Delete,
    List,
    Update,
    /// The NCS IP query (§2.6).
    NcsIp,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Delete => "delete",
            Op::List => "list",
            Op::Update => "update",
            Op::NcsIp => "ncs_ip",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every value the `code_class` label of `pullkeeper_api_requests_total` takes: `2xx`
/// for an answered call, else [`ApiError::code_class`]. The README's metric table lists
/// the same (a test compares them).
pub const CODE_CLASSES: [&str; 10] = [
    "2xx", "4xx", "404", "409", "429", "5xx", "network", "dns", "decode", "stopped",
];

/// How an error should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 400, 401, 403 and other 4xx: retrying the same request cannot help.
    Permanent,
    /// 404: "not found and destroyed", or a task in failover (§1.9): back off and retry.
    NotFound,
    /// 409: a player with that name exists; its id is in `X-Resource-ID`.
    Conflict,
    /// 429: a QPS or quota limit.
    RateLimited,
    /// 5xx.
    Server,
    /// The request may or may not have reached Agora (connect, reset, timeout).
    Network,
    /// The domain did not resolve; Agora's domain switch treats this apart (§4).
    Dns,
    /// A 2xx whose body did not decode.
    Decode,
    /// Never sent: shutdown began while it waited for its turn.
    Stopped,
}

/// What Agora said when it refused a request, with the ids its docs ask us to log (§1.12).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    pub request_id: Option<String>,
    pub resource_id: Option<String>,
    pub retry_after: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "{op}: HTTP {} {} (request id {}, resource id {})",
        .refusal.status,
        .refusal.message,
        .refusal.request_id.as_deref().unwrap_or("-"),
        .refusal.resource_id.as_deref().unwrap_or("-")
    )]
    Status { op: Op, refusal: Refusal },
    #[error("{op}: {kind} error: {detail} (request id {request_id})")]
    Transport {
        op: Op,
        kind: TransportKind,
        detail: String,
        request_id: String,
    },
    #[error("{op}: undecodable answer: {detail} (request id {request_id})")]
    Decode {
        op: Op,
        detail: String,
        request_id: String,
    },
    #[error("{op}: not sent, pullkeeper is shutting down or does not lead the project")]
    Stopped { op: Op },
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Dns,
    Connect,
    Timeout,
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Dns => "dns",
            TransportKind::Connect => "connect",
            TransportKind::Timeout => "timeout",
            TransportKind::Other => "network",
        })
    }
}

impl ApiError {
    pub fn op(&self) -> Op {
        match self {
            ApiError::Status { op, .. }
            | ApiError::Transport { op, .. }
            | ApiError::Decode { op, .. }
            | ApiError::Stopped { op } => *op,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            ApiError::Status { refusal, .. } => match refusal.status {
                404 => ErrorClass::NotFound,
                409 => ErrorClass::Conflict,
                429 => ErrorClass::RateLimited,
                500..=599 => ErrorClass::Server,
                _ => ErrorClass::Permanent,
            },
            ApiError::Transport { kind, .. } => match kind {
                TransportKind::Dns => ErrorClass::Dns,
                _ => ErrorClass::Network,
            },
            ApiError::Decode { .. } => ErrorClass::Decode,
            ApiError::Stopped { .. } => ErrorClass::Stopped,
        }
    }

    /// The HTTP status, when Agora answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { refusal, .. } => Some(refusal.status),
            _ => None,
        }
    }

    /// A label for metrics: `4xx`, `404`, `409`, `429`, `5xx`, or the transport kind
    /// (one of [`CODE_CLASSES`]).
    pub fn code_class(&self) -> &'static str {
        self.class().label()
    }
}

impl ErrorClass {
    /// The class as a metric label value.
    pub fn label(self) -> &'static str {
        match self {
            ErrorClass::Permanent => "4xx",
            ErrorClass::NotFound => "404",
            ErrorClass::Conflict => "409",
            ErrorClass::RateLimited => "429",
            ErrorClass::Server => "5xx",
            ErrorClass::Network => "network",
            ErrorClass::Dns => "dns",
            ErrorClass::Decode => "decode",
            ErrorClass::Stopped => "stopped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_label_is_a_listed_code_class() {
        use ErrorClass::*;
        for class in [
            Permanent,
            NotFound,
            Conflict,
            RateLimited,
            Server,
            Network,
            Dns,
            Decode,
            Stopped,
        ] {
            assert!(CODE_CLASSES.contains(&class.label()), "{class:?}");
        }
    }
}
