//! The host, path and query of a plain `http(s)` URL — the form nearly every page and referrer
//! has — without the WHATWG parser, and exactly as it would give them.
//!
//! `url::Url::parse` was a quarter of an event's normalisation on the collector (host mapping,
//! path and query percent-encoding, the serialised copy it builds). [`split`] only answers for
//! the inputs where that work changes nothing: a lower-case `http://` or `https://`, an ASCII
//! domain (no IP address, no punycode, no user info, at most a valid port), and a path and query
//! of characters the parser keeps as they are, without `.` or `..` segments. For anything else
//! it says `None` and the caller parses with `url`; a property test holds the two to the same
//! answer.

/// What [`split`] finds. The host is as written: the parser's is its ASCII lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parts<'a> {
    pub host: &'a str,
    /// Empty when the URL has none; the parser's path is then `/`.
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// Splits `input` if it is a plain URL (see the module's documentation), else `None`.
pub(crate) fn split(input: &str) -> Option<Parts<'_>> {
    let rest = input
        .strip_prefix("https://")
        .or_else(|| input.strip_prefix("http://"))?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(authority_end);
    let host = match authority.split_once(':') {
        Some((host, port)) if is_port(port) => host,
        Some(_) => return None,
        None => authority,
    };
    if !is_plain_domain(host) {
        return None;
    }
    let before_fragment = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (path, query) = match before_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (before_fragment, None),
    };
    let plain_path = path.bytes().all(kept_in_path)
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    let plain_query = query.is_none_or(|q| q.bytes().all(kept_in_query));
    (plain_path && plain_query).then_some(Parts { host, path, query })
}

/// 1 to 5 digits up to 65535 (the parser refuses a larger port and drops an empty one).
fn is_port(port: &str) -> bool {
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| p <= 65_535)
}

/// Labels of ASCII letters, digits and hyphens, none empty and none punycode (`xn--`), the last
/// starting with a letter: a last label that is a number would make the parser read an IPv4
/// address (`0x7f.1` is `127.0.0.1`).
fn is_plain_domain(host: &str) -> bool {
    let mut last = "";
    for label in host.split('.') {
        let plain = !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("xn--"));
        if !plain {
            return false;
        }
        last = label;
    }
    last.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
}

/// Characters the parser keeps as they are in a special URL's path: unreserved, sub-delims,
/// `:` `@` `/`. (No `%`: `%2e` is a dot segment to it.)
fn kept_in_path(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b)
}

/// Characters the parser keeps as they are in a special URL's query: as in a path, plus `?`
/// and `%`, without `'` (which it encodes there).
fn kept_in_query(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&()*+,;=:@/?%".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use url::Url;

    #[test]
    fn common_pages_and_referrers_are_plain() {
        let p = split("https://bench.test/p/1?utm_source=wrk").expect("plain");
        assert_eq!(
            p,
            Parts {
                host: "bench.test",
                path: "/p/1",
                query: Some("utm_source=wrk")
            }
        );
        let p = split("http://Example.COM:8080#top").expect("plain");
        assert_eq!((p.host, p.path, p.query), ("Example.COM", "", None));
        assert!(split("https://www.google.com/").is_some());
    }

    #[test]
    fn what_the_parser_would_change_is_left_to_it() {
        for input in [
            "https://127.0.0.1/",
            "https://example.0x7f/",
            "https://xn--bcher-kva.example/",
            "https://user@example.com/",
            "https://example.com:99999/",
            "https://example.com:/",
            "https://example..com/",
            "https:///example.com/",
            "https://example.com/a/../b",
            "https://example.com/%2e/b",
            "https://example.com/a b",
            "https://example.com/?q='x'",
            "https://example.com\\a",
            "HTTPS://example.com/",
            "ftp://example.com/",
            "/just/a/path",
        ] {
            assert_eq!(split(input), None, "{input}");
        }
    }

    /// Pieces of a host, a path or a query: the common ones, and the ones that make the parser
    /// change something.
    fn pieces(common: &'static [&'static str]) -> impl Strategy<Value = String> {
        const TRICKY: &[&str] = &[
            "%", "%2e", "%41", ":", "@", "'", "\"", " ", "\\", "xn--", "0x", "~", "!", "$", "(",
            ")", "*", "+", ",", ";", "^", "`", "{", "}", "|", "[", "]", "<", ">", "é", "\t", "..",
            ".", "/", "?", "#", "&", "=", "-", "65536", "_",
        ];
        // One piece in thirty is tricky: most candidates keep to the plain form, the rest each
        // try one way out of it.
        let piece = prop_oneof![
            29 => prop::sample::select(common),
            1 => prop::sample::select(TRICKY),
        ];
        prop::collection::vec(piece, 1..4).prop_map(|p| p.concat())
    }

    fn joined(
        parts: impl Strategy<Value = String>,
        between: &'static str,
        count: std::ops::Range<usize>,
    ) -> impl Strategy<Value = String> {
        prop::collection::vec(parts, count).prop_map(move |p| p.join(between))
    }

    fn candidate() -> impl Strategy<Value = String> {
        let label = pieces(&["www", "example", "com", "Ab", "1", "-", "x"]);
        let segment = pieces(&["p", "1", "a-b", "x.html", "~u", "Z"]);
        let pair = pieces(&["utm_source", "=", "x", "a", "1", "+"]);
        (
            prop::sample::select(vec![
                "https://", "http://", "https://", "HTTP://", "https:/",
            ]),
            joined(label, ".", 1..4),
            prop::sample::select(vec!["", "", "", ":8080", ":443", ":", ":99999"]),
            prop::option::weighted(0.8, joined(segment, "/", 0..4)),
            prop::option::weighted(0.5, joined(pair, "&", 0..3)),
            prop::sample::select(vec!["", "", "#top", "#a b"]),
        )
            .prop_map(|(scheme, host, port, path, query, fragment)| {
                let path = path.map(|p| format!("/{p}")).unwrap_or_default();
                let query = query.map(|q| format!("?{q}")).unwrap_or_default();
                format!("{scheme}{host}{port}{path}{query}{fragment}")
            })
    }

    #[test]
    fn the_candidates_are_often_plain() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = candidate();
        let plain = (0..2_000)
            .filter(|_| {
                let input = strategy
                    .new_tree(&mut runner)
                    .expect("a candidate")
                    .current();
                split(&input).is_some()
            })
            .count();
        assert!(plain > 300, "only {plain} of 2,000 candidates are plain");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn a_plain_split_is_what_the_parser_gives(input in candidate()) {
            if let Some(parts) = split(&input) {
                let url = Url::parse(&input).expect("the parser accepts what split accepts");
                let host = parts.host.to_ascii_lowercase();
                prop_assert_eq!(url.host_str(), Some(host.as_str()));
                prop_assert_eq!(url.path(), if parts.path.is_empty() { "/" } else { parts.path });
                prop_assert_eq!(url.query(), parts.query);
            }
        }
    }
}
