//! JSON bodies the HTTP APIs share, so the collector, the stats API and the dashboard agree
//! on them byte for byte.

use serde::{Deserialize, Serialize};

/// `{"success":false,"error":{"code":"...","message":"...","field":"..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub success: bool,
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_json`, `too_long`, `rate_limited`, ...
    pub code: String,
    /// For humans.
    pub message: String,
    /// The offending field (`events[2].page`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorBody {
    pub fn new(code: &str, message: &str, field: Option<&str>) -> Self {
        ErrorBody {
            success: false,
            error: ErrorDetail {
                code: code.to_string(),
                message: message.to_string(),
                field: field.map(str::to_string),
            },
        }
    }
}

/// Serialises an API body. Our bodies are plain structs of strings and numbers, for which
/// serde_json cannot fail; should one ever fail, a generic error body is returned instead of
/// panicking in a request path.
pub fn to_json<T: Serialize>(body: &T) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_else(|_| {
        br#"{"success":false,"error":{"code":"internal","message":"internal error"}}"#.to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shape() {
        let body = ErrorBody::new("too_long", "must be at most 64 characters", Some("event"));
        assert_eq!(
            String::from_utf8(to_json(&body)).expect("utf8"),
            r#"{"success":false,"error":{"code":"too_long","message":"must be at most 64 characters","field":"event"}}"#
        );
        let body = ErrorBody::new("not_found", "no such endpoint", None);
        assert!(!String::from_utf8(to_json(&body))
            .expect("utf8")
            .contains("field"));
    }
}
