//! A compact binary form of [`Event`]: standalone's journal holds one per accepted event,
//! written inside the request, and the SQLite store keeps each event in it.
//!
//! Why not the JSON document ([`crate::event::encode`]) there: JSON is the costly part of
//! writing an event (escape scans of every string, field names, number formatting); this
//! form is the event's bytes with lengths, about half the size, and its decoder has no text
//! to parse. In the store that halves what every event costs on disk twice (the WAL, then the
//! database), and the document was the bulk of the file. The JSON document stays the form of
//! what other programs read: Kafka messages, dead letters, and the export API, which turns
//! stored events back into it.
//!
//! Both places keep their bytes across upgrades, so a layout, once released, is never
//! changed: the next one takes another [`MARKER`] and this decoder stays.
//!
//! Layout, integers little-endian:
//! `MARKER`, `ts` (i64), `received_at` (i64), `device` (u8), the required strings
//! (`event_id`, `site`, `name`, `visitor_id`, `path`, `browser`, `os`), a u32 of which optional
//! fields follow, the optional strings present in [`Event`]'s field order, then the target
//! (a u8 of its fields, its strings) and the properties (a count, then key, kind, value).
//! A string is a LEB128 length and its UTF-8 bytes.
//!
//! [`decode`] never panics and never reads past its input: a journal record is checksummed,
//! so a failure here means a bug or a version this build does not know, and ends up a dead
//! letter.

use std::collections::BTreeMap;

use crate::event::{DecodeEventError, Device, Event, PropValue, Target};

/// The first byte of every compact event. Never `{`, the first byte of a JSON document, so a
/// reader can tell the two apart; the next version of this layout takes another value.
pub const MARKER: u8 = 0xF1;

const HAS_TARGET: u32 = 1 << 16;
const HAS_PROPS: u32 = 1 << 17;

fn target_fields(t: &Target) -> [&Option<String>; 4] {
    [&t.tag, &t.text, &t.href, &t.id]
}

/// Appends `event` to `out`.
pub fn encode_into(out: &mut Vec<u8>, event: &Event) {
    out.push(MARKER);
    out.extend_from_slice(&event.ts.to_le_bytes());
    out.extend_from_slice(&event.received_at.to_le_bytes());
    out.push(match event.device {
        Device::Desktop => 0,
        Device::Mobile => 1,
        Device::Tablet => 2,
        Device::Other => 3,
    });
    // Layout order is `Event`'s own (bit `i` of the u32 is optional text `i`).
    for s in event.required_texts() {
        put_str(out, s);
    }
    let optional = event.optional_texts();
    let mut present = optional
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_some())
        .fold(0u32, |bits, (i, _)| bits | 1 << i);
    if event.target.is_some() {
        present |= HAS_TARGET;
    }
    if !event.props.is_empty() {
        present |= HAS_PROPS;
    }
    out.extend_from_slice(&present.to_le_bytes());
    for s in optional.into_iter().flatten() {
        put_str(out, s);
    }
    if let Some(target) = &event.target {
        let fields = target_fields(target);
        let bits = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_some())
            .fold(0u8, |bits, (i, _)| bits | 1 << i);
        out.push(bits);
        for s in fields.into_iter().flatten() {
            put_str(out, s);
        }
    }
    if !event.props.is_empty() {
        put_len(out, event.props.len());
        for (key, value) in &event.props {
            put_str(out, key);
            match value {
                PropValue::Bool(false) => out.push(0),
                PropValue::Bool(true) => out.push(1),
                PropValue::Number(n) => {
                    out.push(2);
                    // Its text is exact (arbitrary size, shortest round-trip for floats).
                    put_str(out, &n.to_string());
                }
                PropValue::String(s) => {
                    out.push(3);
                    put_str(out, s);
                }
            }
        }
    }
}

/// Reads one event from the front of `input` and advances it past the event.
///
/// # Errors
/// [`DecodeEventError::UnsupportedVersion`] for another marker (a layout this build does not
/// know), [`DecodeEventError::Malformed`] for anything cut short or not UTF-8.
pub fn decode(input: &mut &[u8]) -> Result<Event, DecodeEventError> {
    let mut r = Reader(input);
    let marker = r.byte()?;
    if marker != MARKER {
        return Err(DecodeEventError::UnsupportedVersion {
            found: u64::from(marker),
        });
    }
    let ts = r.i64()?;
    let received_at = r.i64()?;
    let device = match r.byte()? {
        0 => Device::Desktop,
        1 => Device::Mobile,
        2 => Device::Tablet,
        3 => Device::Other,
        other => return Err(malformed(&format!("device {other}"))),
    };
    let mut event = Event {
        event_id: r.string()?,
        site: r.string()?,
        name: r.string()?,
        ts,
        received_at,
        visitor_id: r.string()?,
        session_id: None,
        user_id: None,
        host: None,
        path: r.string()?,
        title: None,
        referrer_host: None,
        utm_source: None,
        utm_medium: None,
        utm_campaign: None,
        utm_term: None,
        utm_content: None,
        screen: None,
        lang: None,
        timezone: None,
        country: None,
        region: None,
        city: None,
        device,
        browser: r.string()?,
        os: r.string()?,
        props: BTreeMap::new(),
        target: None,
    };
    let present = u32::from_le_bytes(r.array()?);
    if present >> 18 != 0 {
        return Err(malformed("unknown optional fields"));
    }
    for (i, field) in event.optional_texts_mut().into_iter().enumerate() {
        if present & 1 << i != 0 {
            *field = Some(r.string()?);
        }
    }
    if present & HAS_TARGET != 0 {
        let bits = r.byte()?;
        if bits >> 4 != 0 {
            return Err(malformed("unknown target fields"));
        }
        let mut target = Target::default();
        for (i, field) in [
            &mut target.tag,
            &mut target.text,
            &mut target.href,
            &mut target.id,
        ]
        .into_iter()
        .enumerate()
        {
            if bits & 1 << i != 0 {
                *field = Some(r.string()?);
            }
        }
        event.target = Some(target);
    }
    if present & HAS_PROPS != 0 {
        for _ in 0..r.len()? {
            let key = r.string()?;
            let value = match r.byte()? {
                0 => PropValue::Bool(false),
                1 => PropValue::Bool(true),
                2 => PropValue::Number(
                    r.string()?
                        .parse()
                        .map_err(|_| malformed("property number"))?,
                ),
                3 => PropValue::String(r.string()?),
                other => return Err(malformed(&format!("property kind {other}"))),
            };
            event.props.insert(key, value);
        }
    }
    Ok(event)
}

/// One event stored on its own: its compact form, or its JSON document (which always begins
/// with `{`), as stores written before the compact form hold.
///
/// # Errors
/// As [`decode`] or [`crate::event::decode`], and [`DecodeEventError::Malformed`] for bytes
/// after a compact event.
pub fn decode_stored(bytes: &[u8]) -> Result<Event, DecodeEventError> {
    if bytes.first() == Some(&b'{') {
        return crate::event::decode(bytes);
    }
    let mut rest = bytes;
    let event = decode(&mut rest)?;
    if rest.is_empty() {
        Ok(event)
    } else {
        Err(malformed("bytes after the event"))
    }
}

fn malformed(what: &str) -> DecodeEventError {
    DecodeEventError::Malformed(format!("compact event: {what}"))
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Bounds-checked reads from the front of a slice.
struct Reader<'a, 'b>(&'a mut &'b [u8]);

impl Reader<'_, '_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeEventError> {
        if self.0.len() < n {
            return Err(malformed("cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        *self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeEventError> {
        let bytes = self.take(N)?;
        let mut array = [0; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    fn byte(&mut self) -> Result<u8, DecodeEventError> {
        Ok(self.array::<1>()?[0])
    }

    fn i64(&mut self) -> Result<i64, DecodeEventError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize, DecodeEventError> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                // Never more than what is left: a length is followed by that many bytes.
                return usize::try_from(n)
                    .ok()
                    .filter(|n| *n <= self.0.len())
                    .ok_or_else(|| malformed("length past the end"));
            }
        }
        Err(malformed("length too long"))
    }

    fn string(&mut self) -> Result<String, DecodeEventError> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| malformed("not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(e: &Event) {
        let mut out = vec![7];
        encode_into(&mut out, e);
        encode_into(&mut out, e);
        let mut input = &out[1..];
        assert_eq!(decode(&mut input).as_ref(), Ok(e));
        assert_eq!(decode(&mut input).as_ref(), Ok(e));
        assert!(input.is_empty());
    }

    #[test]
    fn a_stored_event_is_read_in_either_form() {
        let e = crate::event::sample();
        let mut compact = Vec::new();
        encode_into(&mut compact, &e);
        let json = crate::event::encode(&e).expect("json");
        assert_eq!(decode_stored(&compact).as_ref(), Ok(&e));
        assert_eq!(decode_stored(&json).as_ref(), Ok(&e));

        let mut longer = compact.clone();
        longer.push(0);
        assert!(matches!(
            decode_stored(&longer),
            Err(DecodeEventError::Malformed(_))
        ));
        let mut unknown = compact;
        unknown[0] = MARKER + 1;
        assert!(matches!(
            decode_stored(&unknown),
            Err(DecodeEventError::UnsupportedVersion { .. })
        ));
        assert!(decode_stored(b"").is_err());
    }

    #[test]
    fn every_field_roundtrips() {
        let mut e = crate::event::sample();
        roundtrip(&e);
        e.user_id = Some("u".into());
        e.city = Some("Zürich 🏔".into());
        e.region = Some("CH-ZH".into());
        e.device = Device::Tablet;
        e.target = Some(Target {
            tag: Some("a".into()),
            text: None,
            href: Some("https://x.test/".into()),
            id: Some(String::new()),
        });
        e.props.insert("yes".into(), PropValue::Bool(true));
        e.props.insert("no".into(), PropValue::Bool(false));
        let digits = format!("1{}", "0".repeat(111));
        for raw in [digits.as_str(), "-0.0", "1.7976931348623157e308", "42"] {
            e.props
                .insert(raw.into(), PropValue::Number(raw.parse().expect("number")));
        }
        e.props
            .insert("long".into(), PropValue::String("x".repeat(300)));
        e.ts = i64::MIN;
        e.received_at = i64::MAX;
        roundtrip(&e);
        e.props.clear();
        e.target = None;
        roundtrip(&e);
    }

    #[test]
    fn it_is_about_half_the_json_document() {
        let e = crate::event::sample();
        let mut out = Vec::new();
        encode_into(&mut out, &e);
        let json = crate::event::encode(&e).expect("encode");
        assert!(
            out.len() * 2 < json.len() + 40,
            "{} vs {}",
            out.len(),
            json.len()
        );
    }

    #[test]
    fn cut_or_foreign_input_is_an_error() {
        let mut out = Vec::new();
        encode_into(&mut out, &crate::event::sample());
        for n in 0..out.len() {
            assert!(decode(&mut &out[..n]).is_err(), "cut at {n}");
        }
        assert!(matches!(
            decode(&mut &b"{\"v\":1}"[..]),
            Err(DecodeEventError::UnsupportedVersion { found: 123 })
        ));
        let mut huge = vec![MARKER];
        huge.extend_from_slice(&[0; 17]);
        huge.extend_from_slice(&[0xff; 12]);
        assert!(decode(&mut &huge[..]).is_err());
    }
}
