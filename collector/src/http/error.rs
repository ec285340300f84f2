//! The one error response shape of the HTTP API: a status code and a JSON body
//! `{"error": "...", "details": [...]}` whose message tells the client what to do.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vigil_shared::report::ValidationError;

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECS: u64 = 5;

/// One item of `details`: a field problem (`path`), a position in the body (`line`/`column`),
/// or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl Detail {
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Detail {
        Detail {
            path: Some(path.into()),
            message: message.into(),
            line: None,
            column: None,
        }
    }
}

impl From<ValidationError> for Detail {
    fn from(e: ValidationError) -> Detail {
        Detail::at(e.path, e.message)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    details: &'a [Detail],
}

/// An error answer. Build it with the constructors, which set the headers each status needs.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub details: Vec<Detail>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_details(mut self, details: Vec<Detail>) -> ApiError {
        self.details = details;
        self
    }

    fn with_header(mut self, name: HeaderName, value: &'static str) -> ApiError {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// Adds a header computed at run time (`Retry-After: 3`).
    pub fn with_header_value(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 with the RFC 6750 challenge; `invalid_token` when a token was presented.
    pub fn unauthorized(message: impl Into<String>, token_presented: bool) -> ApiError {
        let challenge = if token_presented {
            "Bearer realm=\"vigil\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"vigil\""
        };
        ApiError::new(StatusCode::UNAUTHORIZED, message)
            .with_header(header::WWW_AUTHENTICATE, challenge)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 415 listing what is accepted (RFC 7694 `Accept-Encoding` in the response).
    pub fn unsupported_media(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
            .with_header(header::ACCEPT_ENCODING, "gzip, identity")
    }

    pub fn unprocessable(message: impl Into<String>, details: Vec<Detail>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).with_details(details)
    }

    pub fn request_timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, message).with_header(header::CONNECTION, "close")
    }

    /// 503 with `Retry-After`: the request was fine, the collector could not take it now.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
            .with_header(header::RETRY_AFTER, retry_after_value())
    }
}

const fn retry_after_value() -> &'static str {
    // Kept in step with RETRY_AFTER_SECS by the test below.
    "5"
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            details: &self.details,
        };
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_are_json_with_details() {
        let response = ApiError::unprocessable(
            "report failed validation",
            vec![Detail::at("seq", "sequence numbers start at 1")],
        )
        .into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            body_json(response).await,
            serde_json::json!({
                "error": "report failed validation",
                "details": [{"path": "seq", "message": "sequence numbers start at 1"}]
            })
        );
    }

    #[tokio::test]
    async fn statuses_carry_the_headers_clients_need() {
        let response = ApiError::unavailable("store busy").into_response();
        assert_eq!(
            response.headers()[header::RETRY_AFTER],
            RETRY_AFTER_SECS.to_string().as_str()
        );
        assert_eq!(body_json(response).await["details"], serde_json::json!([]));
        let response = ApiError::unauthorized("no token", false).into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"vigil\""
        );
        let response = ApiError::unsupported_media("br").into_response();
        assert_eq!(
            response.headers()[header::ACCEPT_ENCODING],
            "gzip, identity"
        );
    }
}
