//! `/metrics`: open, for Prometheus; served on `server.listen`, or on its own address
//! when `server.metrics_listen` is set.

use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::telemetry::Metrics;

/// Size of the pieces a scrape is sent in. hyper copies a body into its write buffer
/// unless the socket takes vectored writes; handed over in pieces, the copy stays one
/// piece at a time instead of a second copy of a whole part (a few MB at 1,000 projects).
const PIECE: usize = 64 * 1024;

pub fn router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(metrics)
}

/// The scrape is made as hyper asks for the next piece of the body: only the part in
/// hand is held (see `telemetry::scrape`).
async fn render(State(metrics): State<Metrics>) -> Response {
    let pieces = metrics.scrape().flat_map(|part| {
        let text = Bytes::from(part);
        (0..text.len())
            .step_by(PIECE)
            .map(move |at| Ok::<_, Infallible>(text.slice(at..(at + PIECE).min(text.len()))))
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        Body::from_stream(futures_util::stream::iter(pieces)),
    )
        .into_response()
}
