//! Errors on the wire: every failure leaves as Docker's `{"message": "..."}` with the
//! status its meaning calls for. Engine errors are mapped to statuses here and only here.

use hyper::StatusCode;
use skiff_daemon::error::ErrorKind;
use skiff_daemon::EngineError;

use super::{json, Response};

/// An error answer of the Docker API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What the client prints after "Error response from daemon: ".
    pub message: String,
}

#[derive(serde::Serialize)]
struct Body<'a> {
    message: &'a str,
}

impl ApiError {
    /// An error with a status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 500: anything else.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 501: a feature skiff does not have (yet).
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, message)
    }

    /// Whether this is a 404.
    pub fn is_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
    }

    /// The response: `{"message": ...}` with the status.
    pub fn into_response(self) -> Response {
        json(
            self.status,
            &Body {
                message: &self.message,
            },
        )
    }
}

/// The one place where an engine error's meaning becomes an HTTP status.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::new(status_of(e.kind()), e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn engine_errors_map_by_meaning() {
        let e: ApiError = EngineError::NotFound("No such container: x".into()).into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.message, "No such container: x");
        let e: ApiError = EngineError::Conflict("busy".into()).into();
        assert_eq!(e.status, StatusCode::CONFLICT);
        let e: ApiError = EngineError::InvalidInput("bad".into()).into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e: ApiError = EngineError::Internal("boom".into()).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_of(ErrorKind::Unauthorized), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn body_is_docker_json() {
        let r = ApiError::not_found("No such image: x").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let b = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&b[..], br#"{"message":"No such image: x"}"#);
    }
}
