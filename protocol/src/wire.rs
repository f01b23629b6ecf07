//! What clients send. Field names are camelCase and stay compatible with the original
//! single-event `POST /api/track` body; unknown fields are ignored so newer trackers keep
//! working against older collectors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::error::Category;
use serde_json::value::RawValue;

use crate::event::Target;
use crate::validate::ValidationError;

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
    /// Not JSON at all (a syntax error or a truncated body).
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        message: String,
        line: usize,
        column: usize,
    },
    /// JSON, but a field has the wrong type or is missing: the error names the field
    /// (`event`, `events[3].page`), like a validation error.
    #[error(transparent)]
    Invalid(ValidationError),
    #[error("a batch holds at most {max} events, this one has {got}")]
    TooManyEvents { max: usize, got: usize },
    #[error("a batch needs at least one event")]
    NoEvents,
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        DecodeError::Json {
            message: first_clause(&e),
            line: e.line(),
            column: e.column(),
        }
    }
}

/// serde_json's message names the line and column; keep only the first clause so the
/// client sees "missing field `event`" rather than a repeated position.
fn first_clause(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    }
}

/// A type or shape error becomes a [`ValidationError`] naming the field (serde_path_to_error
/// tracks where the deserializer was); anything else stays a JSON error with its position.
fn traced(e: serde_path_to_error::Error<serde_json::Error>) -> DecodeError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.classify() != Category::Data {
        return inner.into();
    }
    let message = first_clause(&inner);
    let at = |name: &str| match (path.as_str(), name) {
        (".", name) => name.to_string(),
        (path, "") => path.to_string(),
        (path, name) => format!("{path}.{name}"),
    };
    // serde reports a missing field at the object that lacks it, naming it in the message.
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        return DecodeError::Invalid(ValidationError::new("required", at(name), "is required"));
    }
    let code = if message.starts_with("invalid type") {
        "invalid_type"
    } else {
        "invalid_value"
    };
    DecodeError::Invalid(ValidationError::new(code, at(""), message))
}

/// `T` from JSON, with type errors naming their field.
fn decode_traced<'de, T: Deserialize<'de>>(json: &'de [u8]) -> Result<T, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(traced)?;
    de.end()?;
    Ok(value)
}

fn check_not_empty(body: &[u8]) -> Result<(), DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    Ok(())
}

/// Decodes the classic single-event body of `POST /api/track`.
pub fn decode_track(body: &[u8]) -> Result<WireEvent, DecodeError> {
    check_not_empty(body)?;
    decode_traced(body)
}

/// A decoded `POST /api/batch` body. Events are decoded one by one: an event of the wrong
/// shape is refused alone (`Err`, its field named relative to the event, e.g. `page`), and
/// the others are still stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBatch {
    pub site: Option<String>,
    pub sent_at: Option<i64>,
    pub events: Vec<Result<WireEvent, ValidationError>>,
}

/// The batch envelope with its events still raw, to decode them one at a time.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBatch<'a> {
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    sent_at: Option<i64>,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// Decodes the tracker's batch body and enforces the event-count cap.
///
/// The common case — every event well-formed — is one plain decode. Only when that fails on
/// a type or shape error is the body decoded again, envelope first, then event by event,
/// to name the culprit and keep the good events.
pub fn decode_batch(body: &[u8]) -> Result<DecodedBatch, DecodeError> {
    check_not_empty(body)?;
    let max = crate::validate::MAX_EVENTS_PER_BATCH;
    let check_count = |n: usize| match n {
        0 => Err(DecodeError::NoEvents),
        n if n > max => Err(DecodeError::TooManyEvents { max, got: n }),
        _ => Ok(()),
    };
    match serde_json::from_slice::<BatchRequest>(body) {
        Ok(batch) => {
            check_count(batch.events.len())?;
            Ok(DecodedBatch {
                site: batch.site,
                sent_at: batch.sent_at,
                events: batch.events.into_iter().map(Ok).collect(),
            })
        }
        Err(e) if e.classify() != Category::Data => Err(e.into()),
        Err(_) => {
            let raw: RawBatch<'_> = decode_traced(body)?;
            check_count(raw.events.len())?;
            let events = raw
                .events
                .iter()
                .map(
                    |event| match decode_traced::<WireEvent>(event.get().as_bytes()) {
                        Ok(e) => Ok(e),
                        Err(DecodeError::Invalid(v)) => Err(v),
                        // A raw value is well-formed JSON already; keep any other error readable.
                        Err(other) => {
                            Err(ValidationError::new("invalid_value", "", other.to_string()))
                        }
                    },
                )
                .collect();
            Ok(DecodedBatch {
                site: raw.site,
                sent_at: raw.sent_at,
                events,
            })
        }
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
    fn missing_event_is_an_error_naming_it() {
        match decode_track(br#"{"page":"/"}"#) {
            Err(DecodeError::Invalid(e)) => {
                assert_eq!((e.code, e.field.as_str()), ("required", "event"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn type_errors_name_their_field() {
        let field = |body: &[u8]| match decode_track(body) {
            Err(DecodeError::Invalid(e)) => (e.code, e.field, e.message),
            other => panic!("unexpected {other:?}"),
        };
        let (code, f, message) = field(br#"{"event": 12345, "page": "/"}"#);
        assert_eq!((code, f.as_str()), ("invalid_type", "event"));
        assert!(message.contains("expected a string"), "{message}");
        assert_eq!(field(br#"{"event":"x","timestamp":"soon"}"#).1, "timestamp");
        assert_eq!(
            field(br#"{"event":"x","target":{"tag":5}}"#).1,
            "target.tag"
        );
        assert_eq!(
            field(br#"{"event":"x","props":{"a":1},"screen":[1]}"#).1,
            "screen"
        );
        assert_eq!(field(br#""a string""#).1, "");
        // Not JSON at all: still a positioned syntax error.
        assert!(matches!(
            decode_track(br#"{"event": "x""#),
            Err(DecodeError::Json { .. })
        ));
        assert!(matches!(
            decode_track(br#"{"event":"x"} trailing"#),
            Err(DecodeError::Json { .. })
        ));
    }

    #[test]
    fn a_bad_event_in_a_batch_is_refused_alone() {
        let body = br#"{"site":"s","events":[{"event":"a"},{"event":"b","page":7},{"page":"/"},{"event":"d"}]}"#;
        let batch = decode_batch(body).expect("the envelope is fine");
        assert_eq!(batch.site.as_deref(), Some("s"));
        let fields: Vec<Result<&str, String>> = batch
            .events
            .iter()
            .map(|e| match e {
                Ok(e) => Ok(e.event.as_str()),
                Err(v) => Err(v.clone().in_batch(0).field),
            })
            .collect();
        assert_eq!(
            fields,
            [
                Ok("a"),
                Err("events[0].page".to_string()),
                Err("events[0].event".to_string()),
                Ok("d")
            ]
        );
        match decode_batch(br#"{"site":5,"events":[{"event":"a"}]}"#) {
            Err(DecodeError::Invalid(e)) => assert_eq!(e.field, "site"),
            other => panic!("unexpected {other:?}"),
        }
        match decode_batch(br#"{"events":{"event":"a"}}"#) {
            Err(DecodeError::Invalid(e)) => assert_eq!(e.field, "events"),
            other => panic!("unexpected {other:?}"),
        }
        // The count cap holds on the slow path too.
        let events = vec![r#"{"event":1}"#; crate::validate::MAX_EVENTS_PER_BATCH + 1];
        let over = format!(r#"{{"events":[{}]}}"#, events.join(","));
        assert!(matches!(
            decode_batch(over.as_bytes()),
            Err(DecodeError::TooManyEvents { .. })
        ));
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
