//! What clients send. Field names are camelCase and stay compatible with the original
//! single-event `POST /api/track` body; unknown fields are ignored so newer trackers keep
//! working against older collectors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::Target;

/// One event as a client sends it: the classic `/api/track` body, or one element of a
/// batch's `events`. Everything but `event` is optional; [`crate::validate`] decides what is
/// acceptable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireEvent {
    /// `page_view`, `click`, `session_start`, `session_end`, or a custom name.
    pub event: String,
    /// Client-made id; the collector makes a time-ordered one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// A full URL (`https://example.com/a?b`) or just a path (`/a`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Only when the site opted in to identification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Classic clients send it in the body; otherwise the `User-Agent` header is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// IANA zone name, e.g. `Asia/Kolkata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Client clock, milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `WIDTHxHEIGHT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// BCP 47 language tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Flat map of string / number / bool; anything nested is rejected by validation with
    /// the offending key named, so it is kept as raw JSON here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub props: Option<BTreeMap<String, serde_json::Value>>,
    /// The element a `click` happened on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Only meaningful on `/api/track`; a batch names its site once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// The tracker's `POST /api/batch` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Client clock when the batch left, used to correct clock skew of event timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    pub events: Vec<WireEvent>,
}

/// Why a body could not be read as JSON of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("body is empty")]
    Empty,
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        message: String,
        line: usize,
        column: usize,
    },
    #[error("a batch holds at most {max} events, this one has {got}")]
    TooManyEvents { max: usize, got: usize },
    #[error("a batch needs at least one event")]
    NoEvents,
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        // serde_json's message already names the line/column; keep only the first clause so
        // the client sees "missing field `event`" rather than a repeated position.
        let message = e.to_string();
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        DecodeError::Json {
            message,
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Decodes the classic single-event body of `POST /api/track`.
pub fn decode_track(body: &[u8]) -> Result<WireEvent, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    Ok(serde_json::from_slice(body)?)
}

/// Decodes the tracker's batch body and enforces the event-count cap.
pub fn decode_batch(body: &[u8]) -> Result<BatchRequest, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    let batch: BatchRequest = serde_json::from_slice(body)?;
    let max = crate::validate::MAX_EVENTS_PER_BATCH;
    match batch.events.len() {
        0 => Err(DecodeError::NoEvents),
        n if n > max => Err(DecodeError::TooManyEvents { max, got: n }),
        _ => Ok(batch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_body_decodes() {
        let body = br#"{"event":"page_view","page":"/home","sessionId":"s1","userId":"u1",
            "userAgent":"Mozilla/5.0","timezone":"Asia/Kolkata","timestamp":1701234567890}"#;
        let e = decode_track(body).expect("decodes");
        assert_eq!(e.event, "page_view");
        assert_eq!(e.page.as_deref(), Some("/home"));
        assert_eq!(e.session_id.as_deref(), Some("s1"));
        assert_eq!(e.timestamp, Some(1_701_234_567_890));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let e = decode_track(br#"{"event":"x","future":{"a":1}}"#).expect("decodes");
        assert_eq!(e.event, "x");
    }

    #[test]
    fn missing_event_is_a_json_error_naming_it() {
        match decode_track(br#"{"page":"/"}"#) {
            Err(DecodeError::Json { message, .. }) => assert!(message.contains("event")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_and_whitespace_bodies() {
        assert_eq!(decode_track(b""), Err(DecodeError::Empty));
        assert_eq!(decode_batch(b" \n"), Err(DecodeError::Empty));
    }

    #[test]
    fn batch_caps_at_limit_and_one_over() {
        let one = r#"{"event":"e"}"#;
        let at = format!(
            r#"{{"site":"s","events":[{}]}}"#,
            vec![one; crate::validate::MAX_EVENTS_PER_BATCH].join(",")
        );
        assert!(decode_batch(at.as_bytes()).is_ok());
        let over = format!(
            r#"{{"site":"s","events":[{}]}}"#,
            vec![one; crate::validate::MAX_EVENTS_PER_BATCH + 1].join(",")
        );
        assert!(matches!(
            decode_batch(over.as_bytes()),
            Err(DecodeError::TooManyEvents { .. })
        ));
        assert_eq!(
            decode_batch(br#"{"site":"s","events":[]}"#),
            Err(DecodeError::NoEvents)
        );
    }
}
