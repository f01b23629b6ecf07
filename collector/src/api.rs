//! The wire responses, and the one place where collector errors become HTTP statuses.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::StatusCode;
use hyper::Response;
use protocol::api::{to_json, ErrorBody};
use protocol::{DecodeError, ValidationError};
use serde::Serialize;

use crate::sinks::SinkError;
use crate::ResponseBody;

/// Everything that makes the collector refuse a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported content type {0:?}; send application/json or text/plain")]
    UnsupportedMediaType(String),
    #[error("unsupported content encoding {0:?}; send gzip or no encoding")]
    UnsupportedEncoding(String),
    #[error("body is not valid gzip")]
    BadGzip,
    #[error("no such endpoint")]
    NotFound,
    #[error("method not allowed; use {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("origin {0:?} may not send events here")]
    OriginNotAllowed(String),
    #[error(
        "site {0:?} is not registered here; add it with `footfall sites add {0}`, the \
         dashboard or POST /api/sites"
    )]
    UnknownSite(String),
    #[error("too many requests; retry in {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("events could not be stored right now; retry in {} s", retry_after.as_secs())]
    Unavailable { retry_after: Duration },
    #[error("request took too long")]
    Timeout,
    #[error("connection closed while reading the body")]
    BodyRead,
}

impl From<SinkError> for ApiError {
    fn from(e: SinkError) -> Self {
        ApiError::Unavailable {
            retry_after: e.retry_after(),
        }
    }
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::Decode(_) | ApiError::BadGzip => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BodyRead => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) | ApiError::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::OriginNotAllowed(_) | ApiError::UnknownSite(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// Stable machine-readable code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(e) => e.code,
            ApiError::Decode(DecodeError::Empty) => "empty_body",
            ApiError::Decode(DecodeError::Json { .. }) => "invalid_json",
            ApiError::Decode(DecodeError::TooManyEvents { .. }) => "too_many_events",
            ApiError::Decode(DecodeError::NoEvents) => "no_events",
            ApiError::BadGzip => "invalid_gzip",
            ApiError::BodyRead => "body_read_failed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::OriginNotAllowed(_) => "origin_not_allowed",
            ApiError::UnknownSite(_) => "unknown_site",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Timeout => "timeout",
        }
    }

    pub(crate) fn into_response(self) -> Response<ResponseBody> {
        let (message, field) = match &self {
            ApiError::Invalid(e) => (e.message.clone(), Some(e.field.clone())),
            ApiError::UnknownSite(_) => (self.to_string(), Some("site".to_string())),
            ApiError::Decode(DecodeError::TooManyEvents { .. } | DecodeError::NoEvents) => {
                (self.to_string(), Some("events".to_string()))
            }
            other => (other.to_string(), None),
        };
        let mut resp = error_response(self.status(), self.code(), &message, field.as_deref());
        let headers = resp.headers_mut();
        match &self {
            ApiError::RateLimited { retry_after } | ApiError::Unavailable { retry_after } => {
                headers.insert(
                    RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(*retry_after)),
                );
            }
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
        resp
    }
}

/// `Retry-After` in whole seconds, at least 1 (0 would invite a retry storm).
fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

/// `{"success":false,"error":{"code":..,"message":..,"field":..}}` with `status`.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    field: Option<&str>,
) -> Response<ResponseBody> {
    json_response(status, &ErrorBody::new(code, message, field))
}

/// A JSON response.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Bytes::from(to_json(body))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// The classic `/api/track` answer, byte-for-byte what the original service sent.
#[derive(Serialize)]
pub(crate) struct TrackResponse {
    pub success: bool,
    pub message: &'static str,
}

/// `/api/batch`'s answer: how many were accepted, and why any were not.
#[derive(Serialize)]
pub(crate) struct BatchResponse {
    pub success: bool,
    pub accepted: usize,
    /// Events dropped on purpose (bots); counted so the tracker can tell.
    pub filtered: usize,
    pub rejected: Vec<RejectedEvent>,
}

#[derive(Serialize)]
pub(crate) struct RejectedEvent {
    pub index: usize,
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

#[derive(Serialize)]
pub(crate) struct HealthResponse {
    pub success: bool,
    pub status: &'static str,
    pub timestamp: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_at_least_one_second() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
    }

    #[test]
    fn every_error_has_a_4xx_or_5xx_status() {
        let all = [
            ApiError::NotFound,
            ApiError::Timeout,
            ApiError::BadGzip,
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::RateLimited {
                retry_after: Duration::from_secs(1),
            },
        ];
        for e in all {
            assert!(e.status().is_client_error() || e.status().is_server_error());
        }
    }
}
