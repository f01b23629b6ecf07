//! Limits and field-level validation.
//!
//! Identifiers (event name, site, ids, time zone) are *rejected* when they break a rule, with
//! the field named, because a wrong identifier would silently split or merge data. Descriptive
//! text (title, click text) is *trimmed* to its cap instead: losing a click because a button's
//! label is long would be worse than storing the first 256 characters of it.

use std::collections::BTreeMap;

use crate::event::PropValue;

pub const MAX_EVENTS_PER_BATCH: usize = 100;
pub const MAX_EVENT_NAME_LEN: usize = 64;
pub const MAX_SITE_LEN: usize = 253;
pub const MAX_ID_LEN: usize = 128;
pub const MIN_EVENT_ID_LEN: usize = 8;
pub const MAX_EVENT_ID_LEN: usize = 64;
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_USER_AGENT_LEN: usize = 512;
pub const MAX_TIMEZONE_LEN: usize = 64;
pub const MAX_TITLE_LEN: usize = 512;
pub const MAX_TEXT_LEN: usize = 256;
pub const MAX_SCREEN_LEN: usize = 16;
pub const MAX_LANG_LEN: usize = 35;
pub const MAX_PROPS: usize = 32;
pub const MAX_PROP_KEY_LEN: usize = 64;
pub const MAX_PROP_VALUE_LEN: usize = 256;
/// Limits in **bytes** of what is stored, after normalisation. The limits above count the
/// characters a client sends; stored text can be far longer in bytes (a path is kept
/// percent-encoded, so one 4-byte character takes 12 bytes), and it is copied into the event
/// row, its JSON document, rollups and the live view. The security review (issue 12) turned
/// 2,047 characters into 24 KB per path that way. These caps bound every stored string, and
/// [`MAX_EVENT_BYTES`] the whole encoded event.
pub const MAX_PATH_BYTES: usize = 256;
pub const MAX_HOST_BYTES: usize = 253;
/// A page title is cut to this, deliberately short: titles carry what a page shows about
/// its reader (an inbox subject, a customer's name, a search), and the first 256 bytes are
/// all a dashboard needs to tell pages apart.
pub const MAX_TITLE_BYTES: usize = 256;
/// Click text, element ids, UTM values, a click target's `href` (without query or fragment).
pub const MAX_TEXT_BYTES: usize = 256;
/// All props of one event, as encoded JSON.
pub const MAX_PROPS_BYTES: usize = 2048;
/// One encoded event (`event::encode`): nothing larger is ever queued or stored.
pub const MAX_EVENT_BYTES: usize = 6144;
/// How far in the past an event may be: trackers keep unsent events in localStorage and
/// may deliver them days later.
pub const MAX_EVENT_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// How far in the future (after skew correction) an event may claim to be.
pub const MAX_EVENT_FUTURE_MS: i64 = 10 * 60 * 1000;

/// A field that broke a rule. `code` is stable for clients; `message` is for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error for the `index`-th event of a batch (`events[3].page`).
    pub fn in_batch(mut self, index: usize) -> Self {
        self.field = format!("events[{index}].{}", self.field);
        self
    }
}

fn too_long(field: &str, max: usize) -> ValidationError {
    ValidationError::new(
        "too_long",
        field,
        format!("must be at most {max} characters"),
    )
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let n = value.chars().count();
    if n > max {
        return Err(too_long(field, max));
    }
    if n < min {
        return Err(if min == 1 {
            ValidationError::new("required", field, "must not be empty")
        } else {
            ValidationError::new(
                "too_short",
                field,
                format!("must be at least {min} characters"),
            )
        });
    }
    Ok(())
}

fn check_chars(
    field: &str,
    value: &str,
    allowed: impl Fn(char) -> bool,
    what: &str,
) -> Result<(), ValidationError> {
    if value.chars().all(allowed) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "invalid_characters",
            field,
            format!("may only contain {what}"),
        ))
    }
}

/// `page_view`, `click`, custom names: 1–64 of letters, digits, space and `_ - . : /`,
/// starting with a letter or digit.
pub fn event_name(name: &str) -> Result<(), ValidationError> {
    check_len("event", name, 1, MAX_EVENT_NAME_LEN)?;
    check_chars(
        "event",
        name,
        |c| c.is_ascii_alphanumeric() || " _-.:/".contains(c),
        "letters, digits, spaces and _ - . : /",
    )?;
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            "invalid_characters",
            "event",
            "must start with a letter or digit",
        ));
    }
    Ok(())
}

/// A site id is a host name (optionally with a port) or a short slug; returned lower-cased
/// so `Example.com` and `example.com` are one site.
pub fn site(site: &str) -> Result<String, ValidationError> {
    check_len("site", site, 1, MAX_SITE_LEN)?;
    check_chars(
        "site",
        site,
        |c| c.is_ascii_alphanumeric() || "-._:".contains(c),
        "letters, digits and - . _ :",
    )?;
    Ok(site.to_ascii_lowercase())
}

fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.:".contains(c)
}

pub fn event_id(id: &str) -> Result<(), ValidationError> {
    check_len("eventId", id, MIN_EVENT_ID_LEN, MAX_EVENT_ID_LEN)?;
    check_chars(
        "eventId",
        id,
        |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
        "letters, digits, - and _",
    )
}

pub fn session_id(id: &str) -> Result<(), ValidationError> {
    check_len("sessionId", id, 1, MAX_ID_LEN)?;
    check_chars("sessionId", id, id_char, "letters, digits and - _ . :")
}

/// User ids are chosen by the site (emails, numbers, UUIDs), so any printable text is fine.
pub fn user_id(id: &str) -> Result<(), ValidationError> {
    check_len("userId", id, 1, MAX_ID_LEN)?;
    check_chars("userId", id, |c| !c.is_control(), "printable characters")
}

pub fn timezone(tz: &str) -> Result<(), ValidationError> {
    check_len("timezone", tz, 1, MAX_TIMEZONE_LEN)?;
    check_chars(
        "timezone",
        tz,
        |c| c.is_ascii_alphanumeric() || "/_+-".contains(c),
        "letters, digits and / _ + -",
    )
}

pub fn url(field: &str, value: &str) -> Result<(), ValidationError> {
    check_len(field, value, 1, MAX_URL_LEN)?;
    check_chars(field, value, |c| !c.is_control(), "printable characters")
}

pub fn user_agent(ua: &str) -> Result<(), ValidationError> {
    check_len("userAgent", ua, 0, MAX_USER_AGENT_LEN)
}

/// `1920x1080`.
pub fn screen(value: &str) -> Result<(), ValidationError> {
    check_len("screen", value, 3, MAX_SCREEN_LEN)?;
    let ok = value
        .split_once('x')
        .is_some_and(|(w, h)| is_digits(w) && is_digits(h));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "invalid_format",
            "screen",
            "must look like 1920x1080",
        ))
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit())
}

pub fn lang(value: &str) -> Result<(), ValidationError> {
    check_len("lang", value, 1, MAX_LANG_LEN)?;
    check_chars(
        "lang",
        value,
        |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
        "letters, digits, - and _",
    )
}

/// Descriptive text: control characters become spaces, surrounding space is trimmed and
/// the result is cut to `max` characters on a character boundary. Empty becomes `None`.
pub fn text(value: &str, max: usize) -> Option<String> {
    let trimmed = value.trim();
    // One allocation, sized for what can be kept (at most 4 bytes a character).
    let mut out = String::with_capacity(trimmed.len().min(max.saturating_mul(4)));
    for c in trimmed.chars().take(max) {
        out.push(if c.is_control() { ' ' } else { c });
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
    (!out.is_empty()).then_some(out)
}

/// `value` cut to at most `max` bytes, on a character boundary.
pub fn cut_to_bytes(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// A percent-encoded `value` (a URL path) cut to at most `max` bytes, never inside a `%XX`
/// escape or a character, so what remains decodes as the start of what was sent.
pub fn cut_escaped(value: &str, max: usize) -> &str {
    let cut = cut_to_bytes(value, max);
    if cut.len() == value.len() {
        return cut;
    }
    let cut = match cut
        .get(cut.len().saturating_sub(2)..)
        .and_then(|t| t.find('%'))
    {
        Some(i) => &cut[..cut.len().saturating_sub(2) + i],
        None => cut,
    };
    // The escapes at the end may hold a UTF-8 sequence the cut left short: drop it too.
    let b = cut.as_bytes();
    let mut end = b.len();
    let escaped_byte = |at: usize| -> Option<u8> {
        let hex = cut.get(at + 1..at + 3)?;
        (b[at] == b'%').then(|| u8::from_str_radix(hex, 16).ok())?
    };
    let mut continuation = 0;
    while end >= 3 {
        match escaped_byte(end - 3) {
            Some(byte) if byte & 0xC0 == 0x80 => {
                continuation += 1;
                end -= 3;
            }
            Some(lead) => {
                let needed = match lead {
                    0xC0..=0xDF => 1,
                    0xE0..=0xEF => 2,
                    0xF0..=0xF7 => 3,
                    _ => 0,
                };
                return if needed > continuation {
                    &cut[..end - 3]
                } else {
                    cut
                };
            }
            None => break,
        }
    }
    cut
}

/// Descriptive text within both a character and a byte limit (see [`text`]).
pub fn text_in(value: &str, max_chars: usize, max_bytes: usize) -> Option<String> {
    let mut t = text(value, max_chars)?;
    let kept = cut_to_bytes(&t, max_bytes).trim_end().len();
    t.truncate(kept);
    (!t.is_empty()).then_some(t)
}

/// Flat props only: string (≤ 256 chars), finite number or bool, at most 32 keys.
pub fn props(
    raw: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, PropValue>, ValidationError> {
    if raw.len() > MAX_PROPS {
        return Err(ValidationError::new(
            "too_many",
            "props",
            format!("at most {MAX_PROPS} properties"),
        ));
    }
    let mut out = BTreeMap::new();
    for (key, value) in raw {
        let field = format!(
            "props.{}",
            key.chars().take(MAX_PROP_KEY_LEN).collect::<String>()
        );
        check_len(&field, key, 1, MAX_PROP_KEY_LEN)?;
        check_chars(&field, key, |c| !c.is_control(), "printable characters")?;
        let value = match value {
            serde_json::Value::Bool(b) => PropValue::Bool(*b),
            // serde_json never produces NaN or infinities, so every Number is finite.
            serde_json::Value::Number(n) => PropValue::Number(n.clone()),
            serde_json::Value::String(s) => {
                check_len(&field, s, 0, MAX_PROP_VALUE_LEN)?;
                PropValue::String(s.clone())
            }
            serde_json::Value::Null
            | serde_json::Value::Array(_)
            | serde_json::Value::Object(_) => {
                return Err(ValidationError::new(
                    "invalid_type",
                    field,
                    "must be a string, number or boolean",
                ))
            }
        };
        out.insert(key.clone(), value);
    }
    let encoded = serde_json::to_vec(&out).map_or(usize::MAX, |v| v.len());
    if encoded > MAX_PROPS_BYTES {
        return Err(ValidationError::new(
            "too_long",
            "props",
            format!("at most {MAX_PROPS_BYTES} bytes of properties in all"),
        ));
    }
    Ok(out)
}

/// The event time: the client's timestamp shifted by the batch's clock skew
/// (`received_at - sent_at`), which must land within [now − 7 days, now + 10 minutes].
/// Without a timestamp the receive time is used.
pub fn timestamp(
    client_ts: Option<i64>,
    sent_at: Option<i64>,
    received_at: i64,
) -> Result<i64, ValidationError> {
    let Some(ts) = client_ts else {
        return Ok(received_at);
    };
    let skew = sent_at.map_or(0, |sent| received_at.saturating_sub(sent));
    let corrected = ts.saturating_add(skew);
    if corrected < received_at.saturating_sub(MAX_EVENT_AGE_MS) {
        return Err(ValidationError::new(
            "out_of_range",
            "timestamp",
            "is more than 7 days in the past",
        ));
    }
    if corrected > received_at.saturating_add(MAX_EVENT_FUTURE_MS) {
        return Err(ValidationError::new(
            "out_of_range",
            "timestamp",
            "is in the future",
        ));
    }
    Ok(corrected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names() {
        for ok in ["page_view", "click", "Signup Click", "checkout:step-2", "a"] {
            assert_eq!(event_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(event_name("").map_err(|e| e.code), Err("required"));
        assert_eq!(
            event_name(" x").map_err(|e| e.code),
            Err("invalid_characters")
        );
        assert_eq!(
            event_name("<script>").map_err(|e| e.code),
            Err("invalid_characters")
        );
        let at = "a".repeat(MAX_EVENT_NAME_LEN);
        assert_eq!(event_name(&at), Ok(()));
        let over = "a".repeat(MAX_EVENT_NAME_LEN + 1);
        assert_eq!(event_name(&over).map_err(|e| e.code), Err("too_long"));
    }

    #[test]
    fn sites_are_lowercased() {
        assert_eq!(site("Example.COM").as_deref(), Ok("example.com"));
        assert_eq!(site("localhost:3000").as_deref(), Ok("localhost:3000"));
        assert!(site("exa mple").is_err());
        assert!(site("").is_err());
    }

    #[test]
    fn event_id_bounds() {
        assert!(event_id(&"a".repeat(MIN_EVENT_ID_LEN)).is_ok());
        assert!(event_id(&"a".repeat(MIN_EVENT_ID_LEN - 1)).is_err());
        assert!(event_id(&"a".repeat(MAX_EVENT_ID_LEN)).is_ok());
        assert!(event_id(&"a".repeat(MAX_EVENT_ID_LEN + 1)).is_err());
        assert!(event_id("0190a5d2-0000-7000-8000-000000000001").is_ok());
        assert!(event_id("abc def ghi").is_err());
    }

    #[test]
    fn screen_format() {
        assert!(screen("1920x1080").is_ok());
        assert!(screen("x1080").is_err());
        assert!(screen("1920×1080").is_err());
    }

    #[test]
    fn text_is_trimmed_and_capped() {
        assert_eq!(text("  hi\n there ", 100).as_deref(), Some("hi  there"));
        assert_eq!(text("héllo", 2).as_deref(), Some("hé"));
        assert_eq!(text("   ", 10), None);
    }

    #[test]
    fn byte_cuts_keep_characters_and_escapes_whole() {
        assert_eq!(cut_to_bytes("héllo", 2), "h");
        assert_eq!(cut_to_bytes("héllo", 3), "hé");
        assert_eq!(cut_to_bytes("abc", 10), "abc");
        let escaped = "/a%F0%90%80%80%F0%90%80%80";
        assert_eq!(cut_escaped(escaped, 14), "/a%F0%90%80%80");
        assert_eq!(cut_escaped(escaped, 15), "/a%F0%90%80%80");
        assert_eq!(cut_escaped(escaped, 16), "/a%F0%90%80%80");
        // A complete escape, but only the start of a character.
        assert_eq!(cut_escaped(escaped, 17), "/a%F0%90%80%80");
        assert_eq!(cut_escaped(escaped, 25), "/a%F0%90%80%80");
        assert_eq!(cut_escaped("/%C3%A9%C3%A9", 10), "/%C3%A9");
        assert_eq!(cut_escaped(escaped, 100), escaped);
        assert_eq!(text_in("  ab\u{10000}cd ", 100, 5).as_deref(), Some("ab"));
    }

    #[test]
    fn props_rules() {
        let ok: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(r#"{"plan":"pro","n":3,"beta":true}"#).expect("json");
        assert_eq!(props(&ok).map(|p| p.len()), Ok(3));

        let nested: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(r#"{"a":{"b":1}}"#).expect("json");
        let err = props(&nested).expect_err("nested");
        assert_eq!((err.code, err.field.as_str()), ("invalid_type", "props.a"));

        let at: BTreeMap<String, serde_json::Value> = (0..MAX_PROPS)
            .map(|i| (format!("k{i}"), serde_json::Value::from(i)))
            .collect();
        assert!(props(&at).is_ok());
        let mut over = at.clone();
        over.insert("one-more".into(), 1.into());
        assert_eq!(props(&over).map_err(|e| e.code), Err("too_many"));

        let long: BTreeMap<String, serde_json::Value> =
            BTreeMap::from([("k".into(), "v".repeat(MAX_PROP_VALUE_LEN + 1).into())]);
        assert_eq!(props(&long).map_err(|e| e.code), Err("too_long"));
        // Within every per-value limit, too much in all.
        let bulky: BTreeMap<String, serde_json::Value> = (0..MAX_PROPS)
            .map(|i| {
                (
                    format!("k{i}"),
                    "\u{10000}".repeat(MAX_PROP_VALUE_LEN).into(),
                )
            })
            .collect();
        let err = props(&bulky).expect_err("too large");
        assert_eq!((err.code, err.field.as_str()), ("too_long", "props"));
    }

    #[test]
    fn timestamps_are_skew_corrected_and_windowed() {
        let now = 1_800_000_000_000;
        assert_eq!(timestamp(None, None, now), Ok(now));
        // A client clock 2 hours fast: the event happened 1 s before it was sent.
        let fast = 2 * 3600 * 1000;
        assert_eq!(
            timestamp(Some(now + fast - 1000), Some(now + fast), now),
            Ok(now - 1000)
        );
        assert!(timestamp(Some(now - MAX_EVENT_AGE_MS), None, now).is_ok());
        assert!(timestamp(Some(now - MAX_EVENT_AGE_MS - 1), None, now).is_err());
        assert!(timestamp(Some(now + MAX_EVENT_FUTURE_MS), None, now).is_ok());
        assert!(timestamp(Some(now + MAX_EVENT_FUTURE_MS + 1), None, now).is_err());
        assert!(timestamp(Some(i64::MIN), Some(i64::MAX), now).is_err());
    }
}
