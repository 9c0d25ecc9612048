//! REST error answers, with the status codes and messages of §1.9.

use axum::http::StatusCode;

/// Why a REST request was refused. The `Display` text is the documented `message`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Invalid authentication credentials.")]
    Unauthorized,
    #[error(
        "This project has not enabled Cloud Player product yet. Please enable it in Agora Console and try again."
    )]
    NotEnabled,
    #[error("{0}")]
    BadRequest(String),
    #[error("Request rate limit exceeded.")]
    RateLimited,
    #[error("Resource with the same name already exists.")]
    Conflict { existing_id: String },
    #[error("Resources quota limit exceeded.")]
    Quota,
    #[error("Resource is not found and destroyed.")]
    NotFound,
    /// A fault injected through the control API; the message follows §1.9 for the code.
    #[error("{}", injected_message(*.0))]
    Injected(u16),
}

impl ApiError {
    /// "Parameter X is invalid." in the wording of §1.9.
    pub fn param(name: &str) -> ApiError {
        if name == "streamUrl" {
            return ApiError::BadRequest("Parameter 'streamUrl' is invalid formatted.".into());
        }
        ApiError::BadRequest(format!(
            "Parameter {name} is invalid. Fix it in your request and retry."
        ))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotEnabled => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::RateLimited | ApiError::Quota => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Injected(code) => {
                StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

fn injected_message(code: u16) -> &'static str {
    match code {
        400 => "Parameter is invalid. Fix it in your request and retry.",
        401 => "Invalid authentication credentials.",
        403 => "This project has not enabled Cloud Player product yet.",
        404 => "Resource is not found and destroyed.",
        409 => "Resource with the same name already exists.",
        429 => "Request rate limit exceeded.",
        502 => "Internal error.",
        503 => "Service overload. Retry with back off strategy.",
        504 => {
            "Gateway timeout. Query to check whether the player has been created, or to create another one instead."
        }
        _ => "Some internal error happened. Retry with back off strategy.",
    }
}
