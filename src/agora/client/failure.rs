//! A call that got no answer: how the transport's error becomes an [`ApiError`].

use crate::agora::error::{ApiError, Op, TransportKind};

/// A call that got no HTTP answer, classified by what reqwest says went wrong.
pub(super) fn transport_error(op: Op, e: &reqwest::Error, request_id: &str) -> ApiError {
    // reqwest reports a failed lookup as a connect error whose cause chain mentions DNS;
    // the chain is the only place the distinction survives.
    let chain = error_chain(e);
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if chain.contains("dns error") || chain.contains("failed to lookup address") {
        TransportKind::Dns
    } else if e.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Other
    };
    ApiError::Transport {
        op,
        kind,
        detail: chain,
        request_id: request_id.to_string(),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
