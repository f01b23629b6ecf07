//! One tracked event and its wire encoding.
//!
//! The limits mirror the collector's (`protocol::validate`): the collector *rejects* an
//! event whose identifiers or props break a rule, so the tracker trims or drops first and
//! never sends something that would cost the whole batch. The tracker does not link
//! `protocol` (size), so `src/protocol_agreement.rs` checks on the host that these rules
//! accept exactly what `protocol::validate` accepts.

use alloc::string::String;

use crate::json::{self, Object};

pub const MAX_NAME_LEN: usize = 64;
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_TITLE_LEN: usize = 512;
pub const MAX_TEXT_LEN: usize = 256;
pub const MAX_USER_ID_LEN: usize = 128;
pub const MAX_PROPS: usize = 32;
pub const MAX_PROP_KEY_LEN: usize = 64;
pub const MAX_PROP_VALUE_LEN: usize = 256;

/// Custom event names: 1–64 of letters, digits, space and `_ . : - /`, starting with a
/// letter or digit (`protocol::validate::event_name`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-' | b' ' | b'/')
        })
}

/// A user id chosen by the site: 1–128 printable characters.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && char_len(id) <= MAX_USER_ID_LEN && !has_control(id)
}

/// Whether `s` has a control character (`char::is_control`: C0, DEL, C1), checked on the
/// UTF-8 bytes: C1 controls are U+0080..=U+009F, encoded `C2 80`..=`C2 9F`.
pub fn has_control(s: &str) -> bool {
    let mut prev = 0u8;
    s.bytes().any(|b| {
        let control = b < 0x20 || b == 0x7f || (prev == 0xc2 && (0x80..=0x9f).contains(&b));
        prev = b;
        control
    })
}

/// Characters (not bytes) in `s`, as the collector counts them. Counting the bytes that do
/// not continue a UTF-8 sequence avoids core's larger SIMD-style counter.
pub fn char_len(s: &str) -> usize {
    s.bytes().filter(|b| b & 0xc0 != 0x80).count()
}

/// `s` cut to at most `max` characters (not bytes), on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    let mut chars = 0;
    for (i, b) in s.bytes().enumerate() {
        if b & 0xc0 != 0x80 {
            if chars == max {
                return s.get(..i).unwrap_or(s);
            }
            chars += 1;
        }
    }
    s
}

/// `s` cut to `max` characters, or `None` when absent or empty: empty text is left out.
fn nonempty(s: Option<&str>, max: usize) -> Option<&str> {
    s.filter(|s| !s.is_empty()).map(|s| truncate(s, max))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PropValue<'a> {
    Str(&'a str),
    /// A number as JSON text, e.g. JS `String(n)` of a finite number (`19.99`, `1e+21`).
    /// Taking the text keeps float formatting (several KB of wasm) out of the tracker, and
    /// JS's shortest round-trip form is exactly what should be stored.
    Num(&'a str),
    Bool(bool),
}

/// Whether `s` is a JSON number: `-?digits(.digits)?([eE][+-]?digits)?`.
pub fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Flat custom properties, encoded as they are added (`"plan":"pro","price":19.99`), so
/// nothing is kept twice. Invalid entries are refused one by one: a bad key never costs
/// the event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Props {
    json: String,
    len: usize,
}

impl Props {
    pub const fn new() -> Self {
        Props {
            json: String::new(),
            len: 0,
        }
    }

    /// Adds `key = value` unless the key is empty, longer than 64 characters or has
    /// control characters, the value is a non-finite number, or 32 props exist. Long
    /// strings are cut to 256 characters. Returns whether it was kept. (Keys come from JS
    /// objects and attributes, which cannot repeat; a repeated key would be last-wins.)
    pub fn insert(&mut self, key: &str, value: PropValue<'_>) -> bool {
        let key_ok = !key.is_empty() && char_len(key) <= MAX_PROP_KEY_LEN && !has_control(key);
        if !key_ok
            || self.len >= MAX_PROPS
            || matches!(value, PropValue::Num(n) if !is_json_number(n))
        {
            return false;
        }
        if self.len > 0 {
            self.json.push(',');
        }
        json::write_str(&mut self.json, key);
        self.json.push(':');
        match value {
            PropValue::Str(s) => json::write_str(&mut self.json, truncate(s, MAX_PROP_VALUE_LEN)),
            PropValue::Num(n) => self.json.push_str(n),
            PropValue::Bool(b) => self.json.push_str(if b { "true" } else { "false" }),
        }
        self.len += 1;
        true
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

/// The element a click landed on (the nearest link or button).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Target<'a> {
    pub tag: &'a str,
    pub text: &'a str,
    pub href: Option<&'a str>,
    pub id: &'a str,
}

impl Target<'_> {
    fn encode(&self, out: &mut String) {
        let mut o = Object::new(out);
        o.str("tag", truncate(self.tag, 32));
        o.opt_str("text", nonempty(Some(self.text), MAX_TEXT_LEN));
        o.opt_str("href", self.href.map(|h| truncate(h, MAX_URL_LEN)));
        o.opt_str("id", nonempty(Some(self.id), MAX_TEXT_LEN));
        o.finish();
    }
}

/// What stays the same for every event of a page load: screen, language and time zone,
/// encoded once as a JSON fragment (`,"screen":"1920x1080","lang":"en-US",...`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    json: String,
}

impl Context {
    /// `screen` like `1920x1080`, `lang` like `en-US` (`navigator.language`), `timezone` an
    /// IANA zone like `Europe/Berlin` (the collector derives the country from it). A value
    /// the collector would refuse is left out: it would cost every event, not just the
    /// field.
    pub fn new(screen: &str, lang: &str, timezone: &str) -> Self {
        let screen_ok = crate::text::split_once(screen, b'x')
            .is_some_and(|(w, h)| is_digits(w) && is_digits(h));
        let mut json = String::new();
        for (key, value, ok) in [
            ("screen", screen, screen_ok && screen.len() <= 16),
            ("lang", lang, plain(lang, 35, b"-_")),
            ("timezone", timezone, plain(timezone, 64, b"/_+-")),
        ] {
            if ok {
                json.push_str(",\"");
                json.push_str(key);
                json.push_str("\":");
                json::write_str(&mut json, value);
            }
        }
        Context { json }
    }
}

/// `value` is 1..=`max` ASCII letters, digits or `extra` bytes.
// `iter().any` on purpose: `slice::contains` brings a 380-byte search routine into the wasm.
#[allow(clippy::manual_contains)]
fn plain(value: &str, max: usize, extra: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.iter().any(|&e| e == b))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// One event, borrowed from the tracker's state just long enough to be encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Event<'a> {
    pub name: &'a str,
    pub id: &'a str,
    pub timestamp: u64,
    pub page: &'a str,
    pub session_id: &'a str,
    pub referrer: Option<&'a str>,
    pub title: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub props: Option<&'a Props>,
    pub target: Option<&'a Target<'a>>,
}

impl Event<'_> {
    /// Appends the event as one JSON object, in the field order of the wire contract.
    pub fn encode(&self, ctx: &Context, out: &mut String) {
        let mut o = Object::new(out);
        o.str("event", self.name);
        o.str("eventId", self.id);
        o.uint("timestamp", self.timestamp);
        o.str("page", truncate(self.page, MAX_URL_LEN));
        o.str("sessionId", self.session_id);
        o.opt_str("referrer", nonempty(self.referrer, MAX_URL_LEN));
        o.opt_str("title", nonempty(self.title, MAX_TITLE_LEN));
        o.raw_fields(&ctx.json);
        o.opt_str("userId", self.user_id);
        if let Some(p) = self.props.filter(|p| !p.is_empty()) {
            let out = o.key("props");
            out.push('{');
            out.push_str(&p.json);
            out.push('}');
        }
        if let Some(t) = self.target {
            t.encode(o.key("target"));
        }
        o.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn encoded(e: &Event<'_>, ctx: &Context) -> Value {
        let mut out = String::new();
        e.encode(ctx, &mut out);
        serde_json::from_str(&out).unwrap()
    }

    #[test]
    fn names() {
        for ok in [
            "page_view",
            "signup",
            "checkout:step-2",
            "v1.0",
            "A",
            "a b",
            "cart/add",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", " x", "_x", "<script>", "é", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_name(&"a".repeat(64)));
    }

    #[test]
    fn control_characters_match_char_is_control() {
        for c in ['\0', '\n', '\u{1f}', '\u{7f}', '\u{80}', '\u{9f}'] {
            assert!(c.is_control() && has_control(&format!("a{c}b")), "{c:?}");
        }
        for c in [
            'a', ' ', '\u{a0}', 'é', '\u{100}', '\u{2028}', '😀', '\u{c280}',
        ] {
            assert_eq!(has_control(&format!("a{c}b")), c.is_control(), "{c:?}");
        }
    }

    #[test]
    fn json_numbers() {
        for ok in [
            "0",
            "-1",
            "19.99",
            "1e+21",
            "5e-7",
            "1E3",
            "-0.5",
            "123456789012345678901234567890",
        ] {
            assert!(is_json_number(ok), "{ok}");
            let _: serde_json::Value = serde_json::from_str(ok).unwrap();
        }
        for bad in [
            "", "-", "NaN", "Infinity", "1.", ".5", "1e", "1e+", "0x10", "1 ", "+1", "1,5",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("😀😀", 1), "😀");
    }

    fn props_json(p: &Props) -> Value {
        serde_json::from_str(&format!("{{{}}}", p.json)).unwrap()
    }

    #[test]
    fn props_limits() {
        let mut p = Props::default();
        assert!(p.insert("plan", PropValue::Str("pro")));
        assert!(!p.insert("", PropValue::Bool(true)));
        assert!(!p.insert(&"k".repeat(65), PropValue::Bool(true)));
        assert!(p.insert(&"k".repeat(64), PropValue::Bool(true)));
        assert!(!p.insert("bad\nkey", PropValue::Bool(true)));
        assert!(!p.insert("nan", PropValue::Num("NaN")));
        assert!(!p.insert("inf", PropValue::Num("Infinity")));
        let long = "é".repeat(300);
        assert!(p.insert("long", PropValue::Str(&long)));
        assert!(p.insert("n", PropValue::Num("-2.5")));
        let v = props_json(&p);
        assert_eq!(v["long"].as_str().unwrap().chars().count(), 256);
        assert_eq!(v["plan"], "pro");
        assert_eq!(v["n"], -2.5);
        for i in 0..40 {
            p.insert(&format!("k{i}"), PropValue::Num(&i.to_string()));
        }
        assert_eq!(p.len(), MAX_PROPS);
        assert_eq!(props_json(&p).as_object().unwrap().len(), MAX_PROPS);
    }

    #[test]
    fn context_keeps_only_valid_values() {
        let c = Context::new("1920x1080", "en-US", "America/Argentina/Buenos_Aires");
        assert_eq!(
            c.json,
            r#","screen":"1920x1080","lang":"en-US","timezone":"America/Argentina/Buenos_Aires""#
        );
        assert_eq!(Context::new("x1080", "en US", ""), Context::default());
        assert_eq!(
            Context::new("1x2", "", "Etc/GMT+5").json,
            r#","screen":"1x2","timezone":"Etc/GMT+5""#
        );
    }

    #[test]
    fn encodes_the_wire_shape() {
        let mut props = Props::default();
        props.insert("plan", PropValue::Str("pro"));
        props.insert("price", PropValue::Num("19.99"));
        props.insert("trial", PropValue::Bool(false));
        let target = Target {
            tag: "a",
            text: "Buy",
            href: Some("https://example.com/buy"),
            id: "",
        };
        let e = Event {
            name: "click",
            id: "AbCdEfGh123",
            timestamp: 1_701_234_567_890,
            page: "https://example.com/pricing?x=1",
            session_id: "sess_1",
            referrer: Some(""),
            title: Some("Pricing \"now\""),
            user_id: None,
            props: Some(&props),
            target: Some(&target),
        };
        let ctx = Context::new("1920x1080", "en-US", "Europe/Berlin");
        assert_eq!(
            encoded(&e, &ctx),
            json!({
                "event": "click", "eventId": "AbCdEfGh123", "timestamp": 1_701_234_567_890u64,
                "page": "https://example.com/pricing?x=1", "sessionId": "sess_1",
                "title": "Pricing \"now\"", "screen": "1920x1080", "lang": "en-US",
                "timezone": "Europe/Berlin",
                "props": {"plan": "pro", "price": 19.99, "trial": false},
                "target": {"tag": "a", "text": "Buy", "href": "https://example.com/buy"}
            })
        );
    }

    #[test]
    fn long_fields_are_cut_to_the_collector_limits() {
        let page = format!("https://example.com/{}", "p".repeat(5000));
        let title = "t".repeat(1000);
        let e = Event {
            name: "page_view",
            id: "AbCdEfGh123",
            page: &page,
            title: Some(&title),
            ..Default::default()
        };
        let v = encoded(&e, &Context::default());
        assert_eq!(v["page"].as_str().unwrap().chars().count(), MAX_URL_LEN);
        assert_eq!(v["title"].as_str().unwrap().chars().count(), MAX_TITLE_LEN);
        assert!(v.get("referrer").is_none());
    }
}
