//! The normalised event: what the collector produces and every later stage (queue, store,
//! metrics) consumes. It never holds a raw IP address or a raw user agent.
//!
//! Between stages it travels as JSON with a schema version `v`; [`decode`] refuses versions
//! it does not know instead of guessing, so a queue message from a newer collector ends up in
//! the dead-letter topic rather than being stored wrongly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the serialised [`Event`]. Bump it on any change a reader must know about.
///
/// Optional fields added later (`region`, `city`) do not bump it: an older reader skips
/// unknown fields and loses only them, a newer reader gets `None` from an older writer. A
/// bump would instead dead-letter every new event in a processor not yet upgraded.
pub const SCHEMA_VERSION: u16 = 1;

/// A property value: the flat types the tracker may send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropValue {
    Bool(bool),
    Number(serde_json::Number),
    String(String),
}

/// The element a click happened on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Device class derived from the user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Desktop,
    Mobile,
    Tablet,
    Other,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Other => "other",
        }
    }
}

/// A validated, enriched event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique per event; stores ignore a second insert of the same id.
    pub event_id: String,
    pub site: String,
    /// `page_view`, `click`, `session_start`, `session_end` or a custom name.
    pub name: String,
    /// When it happened: the client's time corrected for clock skew, ms since the epoch.
    pub ts: i64,
    /// When the collector received it, ms since the epoch.
    pub received_at: i64,
    /// Keyed daily hash (or a hash of the opted-in user id); never an IP.
    pub visitor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Path of the page, without query or fragment (those often carry personal data).
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Host of an external referrer; `None` for direct traffic and internal navigation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// ISO 3166-1 alpha-2: from the geoip database when the collector has one, else derived
    /// from `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// ISO 3166-2 subdivision (`DE-BE`), from the geoip database only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// City name (English), from the geoip database only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    pub device: Device,
    pub browser: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub props: BTreeMap<String, PropValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

impl Event {
    /// The text fields every event has, for code that walks them all (the compact form, the
    /// size bound of normalisation).
    pub fn required_texts(&self) -> [&String; 7] {
        [
            &self.event_id,
            &self.site,
            &self.name,
            &self.visitor_id,
            &self.path,
            &self.browser,
            &self.os,
        ]
    }

    /// The optional text fields, in declaration order, for code that walks them all.
    pub fn optional_texts(&self) -> [&Option<String>; 16] {
        [
            &self.session_id,
            &self.user_id,
            &self.host,
            &self.title,
            &self.referrer_host,
            &self.utm_source,
            &self.utm_medium,
            &self.utm_campaign,
            &self.utm_term,
            &self.utm_content,
            &self.screen,
            &self.lang,
            &self.timezone,
            &self.country,
            &self.region,
            &self.city,
        ]
    }

    /// [`Event::optional_texts`], to fill in.
    pub fn optional_texts_mut(&mut self) -> [&mut Option<String>; 16] {
        [
            &mut self.session_id,
            &mut self.user_id,
            &mut self.host,
            &mut self.title,
            &mut self.referrer_host,
            &mut self.utm_source,
            &mut self.utm_medium,
            &mut self.utm_campaign,
            &mut self.utm_term,
            &mut self.utm_content,
            &mut self.screen,
            &mut self.lang,
            &mut self.timezone,
            &mut self.country,
            &mut self.region,
            &mut self.city,
        ]
    }
}

/// Why a serialised event could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeEventError {
    #[error("not an event document: {0}")]
    Malformed(String),
    #[error("unsupported event schema version {found} (this build reads {SCHEMA_VERSION})")]
    UnsupportedVersion { found: u64 },
}

#[derive(Deserialize)]
struct VersionProbe {
    v: Option<u64>,
}

/// Why an event could not be serialised. Not expected for any event the types allow (strings,
/// numbers, maps with string keys); surfaced rather than hidden so that nothing ever stores
/// or queues an empty document in an event's place.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode event {event_id}: {source}")]
pub struct EncodeEventError {
    pub event_id: String,
    #[source]
    pub source: serde_json::Error,
}

/// Serialises an event for a queue or store, stamped with [`SCHEMA_VERSION`].
///
/// # Errors
/// [`EncodeEventError`] if serde_json refuses the event (see there).
pub fn encode(event: &Event) -> Result<Vec<u8>, EncodeEventError> {
    let mut out = Vec::with_capacity(512);
    encode_into(&mut out, event)?;
    Ok(out)
}

/// [`encode`], appended to `out`: a store encoding a whole batch writes every document into
/// one buffer.
///
/// # Errors
/// As [`encode`]; `out` may then hold part of the document.
pub fn encode_into(out: &mut Vec<u8>, event: &Event) -> Result<(), EncodeEventError> {
    // `{"v":1` and then the event's own object with its `{` turned into the `,` that follows
    // `v`: one struct serialisation. (`#[serde(flatten)]` would do the same through serde's
    // map path, a field at a time, which cost a tenth of a request's CPU.) The event always
    // has fields (`eventId` first), so its object is never `{}`.
    let start = out.len();
    out.extend_from_slice(&CURRENT_PREFIX[..CURRENT_PREFIX.len() - 1]);
    let brace = out.len();
    serde_json::to_writer(&mut *out, event).map_err(|source| EncodeEventError {
        event_id: event.event_id.clone(),
        source,
    })?;
    match out.get_mut(brace) {
        Some(b @ b'{') => *b = b',',
        _ => {
            out.truncate(start);
            return Err(EncodeEventError {
                event_id: event.event_id.clone(),
                source: serde::ser::Error::custom("an event serialises as a JSON object"),
            });
        }
    }
    Ok(())
}

/// How every document [`encode`] writes begins (`v` is serialised first).
const CURRENT_PREFIX: &[u8] = b"{\"v\":1,";
const _: () = assert!(SCHEMA_VERSION == 1, "CURRENT_PREFIX spells the version");

/// Reads back what [`encode`] wrote, refusing unknown schema versions.
///
/// A document that begins the way [`encode`] begins its documents is of this version and is
/// parsed once (the event ignores the `v` it does not declare). Anything else has its
/// version read first, so that a newer version is refused as such, not as malformed.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeEventError> {
    if !bytes.starts_with(CURRENT_PREFIX) {
        let probe: VersionProbe = serde_json::from_slice(bytes)
            .map_err(|e| DecodeEventError::Malformed(e.to_string()))?;
        match probe.v {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(found) => return Err(DecodeEventError::UnsupportedVersion { found }),
            None => return Err(DecodeEventError::Malformed("missing field `v`".into())),
        }
    }
    serde_json::from_slice(bytes).map_err(|e| DecodeEventError::Malformed(e.to_string()))
}

#[cfg(test)]
pub(crate) fn sample() -> Event {
    crate::fixture::EventBuilder::new("example.com", "page_view", 1_701_234_567_890)
        .id("0190a5d2-0000-7000-8000-000000000001")
        .received_at(1_701_234_567_999)
        .visitor("a1b2c3d4e5f60718")
        .session("s1")
        .host("example.com")
        .path("/home")
        .title("Home")
        .referrer("news.ycombinator.com")
        .utm_source("hn")
        .screen("1920x1080")
        .lang("en-US")
        .timezone("Asia/Kolkata")
        .browser("Chrome")
        .os("Windows 10")
        .prop("plan", PropValue::String("pro".into()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let e = sample();
        assert_eq!(decode(&encode(&e).expect("encode")), Ok(e));
    }

    #[test]
    fn the_document_is_the_event_object_with_v_first() {
        let e = sample();
        let bytes = encode(&e).expect("encode");
        assert!(bytes.starts_with(CURRENT_PREFIX));
        let mut expected = serde_json::to_value(&e).expect("value");
        expected["v"] = 1.into();
        let got: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(got, expected);
        // Appending leaves what the buffer held before untouched.
        let mut out = b"[".to_vec();
        encode_into(&mut out, &e).expect("encode");
        assert_eq!(&out[1..], &bytes[..]);
    }

    #[test]
    fn encoding_carries_the_version() {
        let v: serde_json::Value =
            serde_json::from_slice(&encode(&sample()).expect("encode")).expect("json");
        assert_eq!(v["v"], 1);
        assert_eq!(v["eventId"], "0190a5d2-0000-7000-8000-000000000001");
    }

    #[test]
    fn huge_and_awkward_numbers_roundtrip_exactly() {
        let mut e = sample();
        let digits = format!("1{}", "0".repeat(111));
        for raw in [
            digits.as_str(),
            "1e111",
            "0.1",
            "-0.0",
            "9007199254740993",
            "1.7976931348623157e308",
        ] {
            let n: serde_json::Number = serde_json::from_str(raw).expect("number");
            e.props.insert("n".into(), PropValue::Number(n));
            assert_eq!(decode(&encode(&e).expect("encode")), Ok(e.clone()), "{raw}");
        }
    }

    #[test]
    fn documents_begin_with_the_current_version() {
        let bytes = encode(&sample()).expect("encode");
        assert!(bytes.starts_with(CURRENT_PREFIX), "{:?}", &bytes[..10]);
        assert_eq!(SCHEMA_VERSION, 1, "CURRENT_PREFIX names the version");
        // Another key order still decodes, through the version probe.
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        let map = v.as_object_mut().expect("object");
        let version = map.remove("v").expect("v");
        map.insert("v".into(), version);
        let reordered = serde_json::to_vec(&v).expect("json");
        assert!(!reordered.starts_with(CURRENT_PREFIX));
        assert_eq!(decode(&reordered), Ok(sample()));
    }

    #[test]
    fn unknown_version_is_refused() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&encode(&sample()).expect("encode")).expect("json");
        v["v"] = 2.into();
        let bytes = serde_json::to_vec(&v).expect("json");
        assert_eq!(
            decode(&bytes),
            Err(DecodeEventError::UnsupportedVersion { found: 2 })
        );
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            decode(b"{nope"),
            Err(DecodeEventError::Malformed(_))
        ));
        assert!(matches!(
            decode(br#"{"eventId":"x"}"#),
            Err(DecodeEventError::Malformed(_))
        ));
    }
}
