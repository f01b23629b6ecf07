//! A hand-written JSON writer for the one shape the tracker sends.
//!
//! serde_json plus `core::fmt` would more than double the wasm a visitor downloads (measured:
//! 32.6 KB gzip against 15 KB), and the tracker only ever *writes* flat objects of strings
//! and integers (prop numbers arrive as JSON text, see `event::PropValue::Num`). So this
//! module appends to a `String` directly and never formats through `core::fmt`.

use alloc::string::String;

/// Builds one JSON object into `out`: `{"k":v,...}`. Keys are trusted literals (or
/// validated prop keys, which are escaped like any string).
pub(crate) struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Object<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        out.push('{');
        Object { out, empty: true }
    }

    /// Writes `"key":` (with the separating comma) and hands back the buffer for the value.
    /// Keys are the encoder's own literals, which need no escaping.
    pub(crate) fn key(&mut self, key: &str) -> &mut String {
        self.out.push_str(if self.empty { "\"" } else { ",\"" });
        self.empty = false;
        self.out.push_str(key);
        self.out.push_str("\":");
        self.out
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) {
        write_str(self.key(key), value);
    }

    /// Absent values are left out rather than written as `null`: the collector treats both
    /// the same and the body stays smaller.
    pub(crate) fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    pub(crate) fn uint(&mut self, key: &str, value: u64) {
        write_u64(self.key(key), value);
    }

    /// Fields that are already JSON, each with its leading comma (`,"k":v,"k2":v2`).
    pub(crate) fn raw_fields(&mut self, json: &str) {
        if !json.is_empty() {
            self.out.push_str(if self.empty {
                json.get(1..).unwrap_or_default()
            } else {
                json
            });
            self.empty = false;
        }
    }

    pub(crate) fn finish(self) {
        self.out.push('}');
    }
}

/// Writes `s` as a JSON string. Every control character is escaped, so the output never
/// contains a raw newline: the persisted queue relies on that to use `\n` as separator.
pub(crate) fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        // Multi-byte UTF-8 sequences never contain bytes < 0x80, so slicing at an ASCII
        // byte is always on a char boundary.
        out.push_str(s.get(start..i).unwrap_or_default());
        if escape.is_empty() {
            out.push_str("\\u00");
            push_ascii(out, HEX[(b >> 4) as usize]);
            push_ascii(out, HEX[(b & 0xf) as usize]);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// Appends one ASCII byte (digits, hex, the id alphabet).
pub(crate) fn push_ascii(out: &mut String, b: u8) {
    out.push(char::from(b));
}

pub(crate) fn write_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20]; // u64::MAX has 20 digits
    let mut len = 0;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in buf.get(buf.len() - len..).unwrap_or_default() {
        push_ascii(out, d);
    }
}

/// The unsigned integer at the start of `bytes` (up to the first non-digit), without
/// `str::parse` and its error type.
pub(crate) fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    let mut any = false;
    for &b in bytes.iter().take_while(|b| b.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, v);
        out
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(s("plain"), r#""plain""#);
        assert_eq!(s(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(s("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(s("\u{0}\u{1f}\u{7f}"), r#""\u0000\u001f\u007f""#);
        assert_eq!(s("héllo ✓ 😀"), "\"héllo ✓ 😀\"");
        assert!(!s("a\nb\u{2}").contains('\n'));
    }

    #[test]
    fn escaped_strings_parse_back() {
        let tricky = "quote\" back\\ nl\n tab\t nul\u{0} del\u{7f} é 😀 </script>";
        let parsed: serde_json::Value = serde_json::from_str(&s(tricky)).unwrap();
        assert_eq!(parsed, serde_json::Value::String(tricky.into()));
    }

    #[test]
    fn integers() {
        let mut out = String::new();
        for n in [0, 7, 10, 1_701_234_567_890, u64::MAX] {
            out.clear();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn objects() {
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        o.str("a", "x");
        o.opt_str("skip", None);
        o.uint("n", 5);
        o.raw_fields(r#","o":{},"p":1"#);
        o.finish();
        assert_eq!(out, r#"{"a":"x","n":5,"o":{},"p":1}"#);
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        o.raw_fields(r#","o":1"#);
        o.finish();
        assert_eq!(out, r#"{"o":1}"#);
    }
}
