//! Byte-level string helpers for splitting on one ASCII byte.
//!
//! core's generic pattern searchers (`split`, `split_once`, `find`, `trim_end_matches`)
//! carry bounds-check panics whose messages pull `core::fmt` into the wasm, several KB of a
//! download budget of 12. Splitting at an ASCII byte always lands on a character boundary,
//! so these use `get` and never panic.

/// `("a", "b=c")` for `split_once("a=b=c", b'=')`.
pub fn split_once(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Like `str::split` with one ASCII byte.
pub fn split(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    core::iter::from_fn(move || {
        let r = rest?;
        match split_once(r, sep) {
            Some((head, tail)) => {
                rest = Some(tail);
                Some(head)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `s` without trailing `b` bytes.
pub fn trim_end(s: &str, b: u8) -> &str {
    let n = s.bytes().rev().take_while(|&x| x == b).count();
    s.get(..s.len() - n).unwrap_or(s)
}

/// The byte offset of `needle` in `hay`.
pub fn find(hay: &str, needle: &str) -> Option<usize> {
    hay.as_bytes()
        .windows(needle.len().max(1))
        .position(|w| w == needle.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        assert_eq!(split_once("a=b=c", b'='), Some(("a", "b=c")));
        assert_eq!(split_once("abc", b'='), None);
        assert_eq!(split_once("é=ü", b'='), Some(("é", "ü")));
        let parts: Vec<&str> = split("a|b||c|", b'|').collect();
        assert_eq!(parts, ["a", "b", "", "c", ""]);
        assert_eq!(split("", b'|').collect::<Vec<_>>(), [""]);
        assert_eq!(trim_end("https://x.org//", b'/'), "https://x.org");
        assert_eq!(trim_end("///", b'/'), "");
        assert_eq!(find("abc\"ts\":1", "\"ts\":"), Some(3));
        assert_eq!(find("abc", "x"), None);
    }
}
