//! The admin API's answers that carry no data, `{"message": "…"}`: one shape for
//! every refusal, so a client reads them all the same way.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub(super) fn message(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}
