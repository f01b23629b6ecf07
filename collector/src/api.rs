//! The wire responses, and the one place where collector errors become HTTP statuses.

use std::time::Duration;

use footfall_http::{answer, ResponseBody};
use http::StatusCode;
use hyper::Response;
use protocol::{DecodeError, ValidationError};
use serde::Serialize;

use crate::sinks::SinkError;

/// Everything that makes the collector refuse a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Not JSON, or a batch with no or too many events. (A field of the wrong type is
    /// `Invalid`, with the field named.)
    #[error(transparent)]
    Decode(DecodeError),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported content type {0:?}; send application/json or text/plain")]
    UnsupportedMediaType(String),
    #[error("unsupported content encoding {0:?}; send gzip or no encoding")]
    UnsupportedEncoding(String),
    #[error("body is not valid gzip")]
    BadGzip,
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

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Invalid(v) => ApiError::Invalid(v),
            other => ApiError::Decode(other),
        }
    }
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
            ApiError::Decode(DecodeError::Invalid(e)) => e.code,
            ApiError::BadGzip => "invalid_gzip",
            ApiError::BodyRead => "body_read_failed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
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
            ApiError::Invalid(e) | ApiError::Decode(DecodeError::Invalid(e)) => {
                (e.message.clone(), Some(e.field.clone()))
            }
            ApiError::UnknownSite(_) => (self.to_string(), Some("site".to_string())),
            ApiError::Decode(DecodeError::TooManyEvents { .. } | DecodeError::NoEvents) => {
                (self.to_string(), Some("events".to_string()))
            }
            other => (other.to_string(), None),
        };
        // A shape error of the whole body (not an object) has no field to name.
        let field = field.filter(|f| !f.is_empty());
        match &self {
            ApiError::MethodNotAllowed { allow } => answer::method_not_allowed(allow),
            ApiError::RateLimited { retry_after } | ApiError::Unavailable { retry_after } => {
                answer::with_retry_after(
                    answer::error(self.status(), self.code(), &message, None),
                    *retry_after,
                )
            }
            _ => answer::error(self.status(), self.code(), &message, field.as_deref()),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_4xx_or_5xx_status_and_a_code() {
        let second = Duration::from_secs(1);
        let invalid = ValidationError::new("too_long", "page", "too long");
        let all = [
            ApiError::Invalid(invalid.clone()),
            ApiError::Decode(DecodeError::Empty),
            ApiError::Decode(DecodeError::Json {
                message: "x".into(),
                line: 1,
                column: 1,
            }),
            ApiError::Decode(DecodeError::Invalid(invalid)),
            ApiError::Decode(DecodeError::TooManyEvents { max: 1, got: 2 }),
            ApiError::Decode(DecodeError::NoEvents),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType("x".into()),
            ApiError::UnsupportedEncoding("x".into()),
            ApiError::BadGzip,
            ApiError::MethodNotAllowed { allow: "POST" },
            ApiError::OriginNotAllowed("x".into()),
            ApiError::RateLimited {
                retry_after: second,
            },
            ApiError::Unavailable {
                retry_after: second,
            },
            ApiError::Timeout,
            ApiError::BodyRead,
        ];
        for e in all {
            let status = e.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{e:?}"
            );
            assert!(!e.code().is_empty());
            let retry = e.into_response().headers().contains_key("retry-after");
            assert_eq!(
                retry,
                status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE
            );
        }
    }
}
