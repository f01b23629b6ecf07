//! A hand-written JSON writer for the one shape the tracker sends.
//!
//! serde_json plus `core::fmt` would more than double the wasm a visitor downloads (measured:
//! 32.6 KB gzip against 15 KB), and the tracker only ever *writes* flat objects of strings,
//! integers and the odd float. So this module appends to a `String` directly and never
//! formats through `core::fmt`.

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
    pub(crate) fn key(&mut self, key: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        write_str(self.out, key);
        self.out.push(':');
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

    /// A value that is already JSON (a nested object written earlier).
    pub(crate) fn raw(&mut self, key: &str, json: &str) {
        self.key(key).push_str(json);
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
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
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
        out.push(d as char);
    }
}

/// Significant digits kept for non-integer numbers: enough for any analytics value
/// (prices, durations, scores) and few enough that decimal scaling by powers of ten stays
/// exact in the digits we keep.
const SIGNIFICANT: u32 = 15;

/// Writes a finite `f64` as a JSON number; non-finite values become `null` (callers drop
/// them before this point: the collector rejects `null` props).
///
/// Integers below 2^53 are written exactly; other values are rounded to 15 significant
/// digits, in plain notation between 1e-5 and 1e15 and in exponent notation outside.
pub(crate) fn write_f64(out: &mut String, x: f64) {
    if !x.is_finite() {
        out.push_str("null");
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    let x = if x < 0.0 { -x } else { x };
    if x < 9_007_199_254_740_992.0 && x == (x as u64) as f64 {
        write_u64(out, x as u64);
        return;
    }
    if (1e-5..1e15).contains(&x) {
        write_plain(out, x);
    } else {
        write_exponent(out, x);
    }
}

fn pow10(n: u32) -> u64 {
    10u64.pow(n)
}

fn digits(n: u64) -> u32 {
    let mut d = 1;
    let mut n = n / 10;
    while n > 0 {
        d += 1;
        n /= 10;
    }
    d
}

/// `x` in [1e-5, 1e15) and not an integer.
fn write_plain(out: &mut String, x: f64) {
    let mut int = x as u64;
    // Decimals so that integer + fraction digits make SIGNIFICANT; for x < 1 the leading
    // zeros of the fraction do not count as significant.
    let decimals = if int > 0 {
        SIGNIFICANT.saturating_sub(digits(int))
    } else {
        let mut zeros = 0;
        let mut y = x * 10.0;
        while y < 1.0 {
            zeros += 1;
            y *= 10.0;
        }
        zeros + SIGNIFICANT
    }
    .min(19); // 10^19 is the largest power of ten in a u64
    let scale = pow10(decimals);
    let mut frac = ((x - int as f64) * scale as f64 + 0.5) as u64;
    if frac >= scale {
        int += 1;
        frac -= scale;
    }
    write_u64(out, int);
    write_fraction(out, frac, decimals);
}

/// Writes `.ddd` for `frac` with `decimals` digits, without trailing zeros.
fn write_fraction(out: &mut String, mut frac: u64, mut decimals: u32) {
    while decimals > 0 && frac % 10 == 0 {
        frac /= 10;
        decimals -= 1;
    }
    if decimals == 0 {
        return;
    }
    out.push('.');
    for _ in digits(frac)..decimals {
        out.push('0');
    }
    write_u64(out, frac);
}

/// `x` > 0, outside [1e-5, 1e15), or an integer too large to be exact.
fn write_exponent(out: &mut String, x: f64) {
    let mut exp: i32 = 0;
    let mut m = x;
    while m >= 10.0 {
        m /= 10.0;
        exp += 1;
    }
    while m < 1.0 {
        m *= 10.0;
        exp -= 1;
    }
    let scale = pow10(SIGNIFICANT - 1);
    let mut mantissa = (m * scale as f64 + 0.5) as u64;
    if mantissa >= 10 * scale {
        mantissa /= 10;
        exp += 1;
    }
    write_u64(out, mantissa / scale);
    write_fraction(out, mantissa % scale, SIGNIFICANT - 1);
    out.push('e');
    if exp < 0 {
        out.push('-');
    }
    write_u64(out, exp.unsigned_abs() as u64);
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

    fn f(x: f64) -> String {
        let mut out = String::new();
        write_f64(&mut out, x);
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
        assert_eq!(f(0.0), "0");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(42.0), "42");
        assert_eq!(f(-42.0), "-42");
        assert_eq!(f(9_007_199_254_740_991.0), "9007199254740991");
    }

    #[test]
    fn floats_round_trip_through_a_json_parser() {
        for x in [
            0.1,
            0.5,
            3.14159,
            -2.75,
            19.99,
            1234.5678,
            0.000123,
            0.00001,
            1e-7,
            6.02e23,
            1e15,
            1.5e300,
            2.5e-300,
            123456789.123,
            0.3333333333333333,
        ] {
            let text = f(x);
            let back: f64 = text.parse().unwrap();
            let rel = ((back - x) / x).abs();
            assert!(rel < 1e-14, "{x} -> {text} -> {back}");
            let _: serde_json::Value = serde_json::from_str(&text).unwrap();
        }
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(19.99), "19.99");
        assert_eq!(f(-2.75), "-2.75");
        assert_eq!(f(0.000123), "0.000123");
        assert_eq!(f(6.02e23), "6.02e23");
        assert_eq!(f(2.5e-300), "2.5e-300");
        assert_eq!(f(0.99999999999999999), "1");
    }

    #[test]
    fn parse_integers() {
        assert_eq!(parse_u64(b"1701234567890,"), Some(1_701_234_567_890));
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"x1"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"99999999999999999999999"), None, "overflow");
    }

    #[test]
    fn non_finite_is_null() {
        assert_eq!(f(f64::NAN), "null");
        assert_eq!(f(f64::INFINITY), "null");
    }

    #[test]
    fn objects() {
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        o.str("a", "x");
        o.opt_str("skip", None);
        o.uint("n", 5);
        o.raw("o", "{}");
        o.finish();
        assert_eq!(out, r#"{"a":"x","n":5,"o":{}}"#);
    }
}
