//! Wire event + request context → [`Event`]: validation, URL splitting, UTM fields, referrer
//! host, country from time zone, device/browser/OS, bot filtering and the visitor id.

use std::cell::OnceCell;
use std::net::IpAddr;

use url::{form_urlencoded, Url};

use crate::event::{Event, Target};
use crate::ua::UserAgentInfo;
use crate::validate::{self, ValidationError};
use crate::visitor::{self, Salt};
use crate::wire::WireEvent;
use crate::{geo, plain_url, ua};

/// What the collector knows about the request an event came in.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The site the event belongs to, before validation (the batch's `site`, the event's own
    /// `site`, the `Origin` host, or `default`: the collector decides).
    pub site: &'a str,
    /// Server receive time, ms since the epoch.
    pub received_at: i64,
    /// The batch's `sentAt`, for clock-skew correction.
    pub sent_at: Option<i64>,
    /// The client's address (already resolved through trusted proxies). Used for the visitor
    /// hash only; it is not part of the returned event.
    pub client_ip: IpAddr,
    /// The `User-Agent` request header.
    pub user_agent: Option<&'a str>,
    /// Today's salt.
    pub salt: &'a Salt,
}

/// Validates and enriches one event. `Ok(None)` means the event came from a bot and is
/// deliberately not counted. For many events of one request use [`Normalizer`], which parses
/// the request's user agent and hashes its visitor once.
pub fn normalize(
    wire: WireEvent,
    ctx: &RequestContext<'_>,
) -> Result<Option<Event>, ValidationError> {
    Normalizer::new(*ctx).normalize(wire)
}

/// Normalises the events of one request, sharing the work that depends only on the request
/// (user-agent parsing and the anonymous visitor hash) between them.
pub struct Normalizer<'a> {
    ctx: RequestContext<'a>,
    /// The request's site, validated (and lower-cased) once for all its events.
    site: Result<String, ValidationError>,
    header_agent: OnceCell<UserAgentInfo>,
    header_visitor: OnceCell<String>,
}

impl<'a> Normalizer<'a> {
    pub fn new(ctx: RequestContext<'a>) -> Self {
        Normalizer {
            ctx,
            site: validate::site(ctx.site),
            header_agent: OnceCell::new(),
            header_visitor: OnceCell::new(),
        }
    }

    /// See [`normalize`].
    pub fn normalize(&self, mut wire: WireEvent) -> Result<Option<Event>, ValidationError> {
        let ctx = &self.ctx;
        validate::event_name(&wire.event)?;
        let site = self.site.clone()?;
        let event_id = match wire.event_id.take() {
            Some(id) => {
                validate::event_id(&id)?;
                id
            }
            None => uuid::Uuid::now_v7().to_string(),
        };
        let ts = validate::timestamp(wire.timestamp, ctx.sent_at, ctx.received_at)?;

        // Classic clients put the user agent in the body; trackers leave it to the header,
        // which is the same for every event of the request.
        let (user_agent, agent) = match wire.user_agent.as_deref() {
            Some(own) => {
                validate::user_agent(own)?;
                (own, ua::parse_cached(own))
            }
            None => {
                let header = ctx.user_agent.unwrap_or("");
                validate::user_agent(header)?;
                (
                    header,
                    self.header_agent
                        .get_or_init(|| ua::parse_cached(header))
                        .clone(),
                )
            }
        };
        if agent.is_bot {
            return Ok(None);
        }
        let visitor_id = match (&wire.user_id, &wire.user_agent) {
            (Some(user), _) => {
                validate::user_id(user)?;
                visitor::identified_visitor_id(&site, user)
            }
            (None, Some(_)) => visitor::visitor_id(ctx.salt, &site, ctx.client_ip, user_agent),
            (None, None) => self
                .header_visitor
                .get_or_init(|| visitor::visitor_id(ctx.salt, &site, ctx.client_ip, user_agent))
                .clone(),
        };
        let who = Identity {
            site,
            event_id,
            ts,
            agent,
            visitor_id,
        };
        describe(wire, ctx, who)
    }
}

/// What [`Normalizer::normalize`] settled before looking at the descriptive fields.
struct Identity {
    site: String,
    event_id: String,
    ts: i64,
    agent: UserAgentInfo,
    visitor_id: String,
}

/// Validates and derives the descriptive fields (page, referrer, props, ...).
fn describe(
    wire: WireEvent,
    ctx: &RequestContext<'_>,
    who: Identity,
) -> Result<Option<Event>, ValidationError> {
    let Identity {
        site,
        event_id,
        ts,
        agent,
        visitor_id,
    } = who;
    if let Some(id) = &wire.session_id {
        validate::session_id(id)?;
    }
    if let Some(tz) = &wire.timezone {
        validate::timezone(tz)?;
    }
    if let Some(screen) = &wire.screen {
        validate::screen(screen)?;
    }
    if let Some(lang) = &wire.lang {
        validate::lang(lang)?;
    }
    let props = match &wire.props {
        Some(raw) => validate::props(raw)?,
        None => Default::default(),
    };

    let page = match &wire.page {
        Some(page) => {
            validate::url("page", page)?;
            split_page(page)
        }
        None => PageParts::default(),
    };
    let referrer_host = match &wire.referrer {
        Some(r) if !r.is_empty() => {
            validate::url("referrer", r)?;
            external_host(r, page.host.as_deref())
        }
        _ => None,
    };

    let country = wire
        .timezone
        .as_deref()
        .and_then(geo::country_for_timezone)
        .map(str::to_string);

    let event = Event {
        event_id,
        site,
        name: wire.event,
        ts,
        received_at: ctx.received_at,
        visitor_id,
        session_id: wire.session_id,
        user_id: wire.user_id,
        host: page.host,
        path: page.path,
        title: wire
            .title
            .as_deref()
            .and_then(|t| validate::text_in(t, validate::MAX_TITLE_LEN, validate::MAX_TITLE_BYTES)),
        referrer_host,
        utm_source: page.utm_source,
        utm_medium: page.utm_medium,
        utm_campaign: page.utm_campaign,
        utm_term: page.utm_term,
        utm_content: page.utm_content,
        screen: wire.screen,
        lang: wire.lang,
        timezone: wire.timezone,
        country,
        region: None,
        city: None,
        device: agent.device,
        browser: agent.browser,
        os: agent.os,
        props,
        target: wire.target.map(clean_target),
    };
    // Every field is capped in bytes already; this bounds the sum, whatever is added later.
    // Encoding costs a tenth of a request, so only an event that might be too large is.
    if json_size_bound(&event).is_some_and(|bound| bound <= validate::MAX_EVENT_BYTES) {
        return Ok(Some(event));
    }
    let encoded = crate::event::encode(&event).map_or(usize::MAX, |v| v.len());
    if encoded > validate::MAX_EVENT_BYTES {
        return Err(ValidationError::new(
            "too_large",
            "event",
            format!(
                "is {encoded} bytes once normalised; at most {} are stored",
                validate::MAX_EVENT_BYTES
            ),
        ));
    }
    Ok(Some(event))
}

/// At least the size of `event`'s JSON document, from its strings' lengths alone: escaping
/// makes a byte at most six (`\u001f`), and the field names, quotes, separators, numbers and
/// the device take less than [`NAMES_AND_PUNCTUATION`]. `None` for an event with properties,
/// whose numbers' text is not at hand.
fn json_size_bound(event: &Event) -> Option<usize> {
    if !event.props.is_empty() {
        return None;
    }
    let target = event.target.as_ref().map_or([None; 4], |t| {
        [&t.tag, &t.text, &t.href, &t.id].map(Option::as_ref)
    });
    let strings = event
        .required_texts()
        .into_iter()
        .chain(event.optional_texts().into_iter().flatten())
        .chain(target.into_iter().flatten())
        .map(String::len)
        .sum::<usize>();
    Some(strings * 6 + NAMES_AND_PUNCTUATION)
}

/// More than an event's JSON document holds besides its strings' contents: 31 names with
/// their quotes, colons and commas, two 20-digit numbers, the device, braces, and `"v":1`.
const NAMES_AND_PUNCTUATION: usize = 1024;

#[derive(Debug, Default, PartialEq)]
struct PageParts {
    host: Option<String>,
    path: String,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_term: Option<String>,
    utm_content: Option<String>,
}

/// Splits a full URL or a bare path. Query and fragment are dropped after the UTM fields are
/// read from the query: they often carry tokens and e-mail addresses.
fn split_page(page: &str) -> PageParts {
    if let Some(plain) = plain_url::split(page) {
        return page_parts(Some(plain.host), plain.path, plain.query);
    }
    // A bare path is resolved against a placeholder origin just to reuse the URL parser.
    let (url, has_host) = match Url::parse(page) {
        Ok(url) => (url, true),
        Err(_) => match Url::parse("http://placeholder.invalid").and_then(|b| b.join(page)) {
            Ok(url) => (url, false),
            Err(_) => {
                return PageParts {
                    path: "/".into(),
                    ..Default::default()
                }
            }
        },
    };
    page_parts(url.host_str().filter(|_| has_host), url.path(), url.query())
}

/// A page's parts from its host (as written), path (percent-encoded) and query.
fn page_parts(host: Option<&str>, path: &str, query: Option<&str>) -> PageParts {
    let mut parts = PageParts {
        host: host.and_then(stored_host),
        // Percent-encoded, so cut in bytes without splitting an escape or a character.
        path: if path.is_empty() {
            "/".into()
        } else {
            validate::cut_escaped(path, validate::MAX_PATH_BYTES).to_string()
        },
        ..Default::default()
    };
    // What `Url::query_pairs` reads.
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = validate::text_in(&value, validate::MAX_TEXT_LEN, validate::MAX_TEXT_BYTES);
        let slot = match key.as_ref() {
            "utm_source" => &mut parts.utm_source,
            // `ref` and `source` are common short forms of utm_source.
            "ref" | "source" if parts.utm_source.is_none() => &mut parts.utm_source,
            "utm_medium" => &mut parts.utm_medium,
            "utm_campaign" => &mut parts.utm_campaign,
            "utm_term" => &mut parts.utm_term,
            "utm_content" => &mut parts.utm_content,
            _ => continue,
        };
        if slot.is_none() {
            *slot = value;
        }
    }
    parts
}

/// A host as events keep it: lower case, and only if it fits.
fn stored_host(host: &str) -> Option<String> {
    (host.len() <= validate::MAX_HOST_BYTES).then(|| host.to_ascii_lowercase())
}

/// The referrer's host, without `www.`, unless it is the page's own host (internal
/// navigation is not a referral).
fn external_host(referrer: &str, page_host: Option<&str>) -> Option<String> {
    let parsed;
    let host = match plain_url::split(referrer) {
        Some(plain) => plain.host,
        None => {
            parsed = Url::parse(referrer).ok()?;
            parsed.host_str()?
        }
    };
    let host = stored_host(host)?;
    let strip = |h: &str| h.strip_prefix("www.").unwrap_or(h).to_string();
    let host = strip(&host);
    match page_host {
        Some(own) if strip(own) == host => None,
        _ => Some(host),
    }
}

fn clean_target(t: Target) -> Target {
    let cap = |s: Option<String>, max| {
        s.as_deref()
            .and_then(|s| validate::text_in(s, max, validate::MAX_TEXT_BYTES))
    };
    Target {
        tag: cap(t.tag, 32).map(|s| s.to_ascii_lowercase()),
        text: cap(t.text, validate::MAX_TEXT_LEN),
        href: t.href.as_deref().and_then(clean_href),
        id: cap(t.id, validate::MAX_TEXT_LEN),
    }
}

/// A click target's link without its query and fragment — like a page's, since they carry
/// the same tokens and e-mail addresses (the security review found a password-reset link
/// with its token stored) — and without user info; capped in bytes.
fn clean_href(href: &str) -> Option<String> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let cleaned = match Url::parse(href) {
        Ok(url) if url.cannot_be_a_base() => url.scheme().to_string() + ":",
        Ok(url) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}{}",
                url.scheme(),
                url.host_str().unwrap_or(""),
                url.path()
            )
        }
        // Relative: its path only, resolved the way a page's is.
        Err(_) => Url::parse("http://placeholder.invalid")
            .and_then(|base| base.join(href))
            .ok()?
            .path()
            .to_string(),
    };
    Some(validate::cut_escaped(&cleaned, validate::MAX_TEXT_BYTES).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Device;

    const NOW: i64 = 1_701_234_600_000;
    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

    fn ctx(salt: &Salt) -> RequestContext<'_> {
        RequestContext {
            site: "Example.com",
            received_at: NOW,
            sent_at: None,
            client_ip: "198.51.100.7".parse().expect("ip"),
            user_agent: Some(CHROME),
            salt,
        }
    }

    fn wire(json: &str) -> WireEvent {
        serde_json::from_str(json).expect("wire json")
    }

    #[test]
    fn classic_seed_event() {
        let salt = Salt::from_bytes([1; 32]);
        let e = normalize(
            wire(r#"{"event":"page_view","page":"/home","sessionId":"abc","userId":"u1",
                "userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
                "timezone":"Asia/Kolkata","timestamp":1701234567890}"#),
            &ctx(&salt),
        )
        .expect("valid")
        .expect("not a bot");
        assert_eq!(e.site, "example.com");
        assert_eq!(e.path, "/home");
        assert_eq!(e.ts, 1_701_234_567_890);
        assert_eq!(e.country.as_deref(), Some("IN"));
        assert_eq!(e.device, Device::Mobile);
        assert_eq!(
            e.visitor_id,
            visitor::identified_visitor_id("example.com", "u1")
        );
        assert_eq!(e.event_id.len(), 36, "a UUID was generated");
    }

    #[test]
    fn full_url_utm_and_referrer() {
        let salt = Salt::from_bytes([1; 32]);
        let e = normalize(
            wire(r#"{"event":"page_view","page":"https://WWW.Example.com/pricing?utm_source=hn&utm_campaign=launch&email=a@b.c#top",
                "referrer":"https://www.google.com/search?q=x"}"#),
            &ctx(&salt),
        )
        .expect("valid")
        .expect("not a bot");
        assert_eq!(e.host.as_deref(), Some("www.example.com"));
        assert_eq!(e.path, "/pricing");
        assert_eq!(e.utm_source.as_deref(), Some("hn"));
        assert_eq!(e.utm_campaign.as_deref(), Some("launch"));
        assert_eq!(e.referrer_host.as_deref(), Some("google.com"));
        let json = String::from_utf8(crate::event::encode(&e).expect("encode")).expect("utf8");
        assert!(!json.contains("a@b.c"), "query strings are not stored");
    }

    #[test]
    fn internal_referrer_is_not_a_referral() {
        assert_eq!(
            external_host("https://www.example.com/a", Some("example.com")),
            None
        );
        assert_eq!(
            external_host("https://t.co/x", Some("example.com")).as_deref(),
            Some("t.co")
        );
        assert_eq!(external_host("not a url", None), None);
    }

    #[test]
    fn anonymous_visitor_uses_the_salt_and_never_the_ip() {
        let salt = Salt::from_bytes([1; 32]);
        let e = normalize(wire(r#"{"event":"click"}"#), &ctx(&salt))
            .expect("valid")
            .expect("not a bot");
        let expected = visitor::visitor_id(
            &salt,
            "example.com",
            "198.51.100.7".parse().expect("ip"),
            CHROME,
        );
        assert_eq!(e.visitor_id, expected);
        let json = String::from_utf8(crate::event::encode(&e).expect("encode")).expect("utf8");
        assert!(!json.contains("198.51.100.7"));
        assert!(
            !json.contains("Windows NT 10.0"),
            "raw user agent is not stored"
        );
    }

    #[test]
    fn the_size_bound_is_never_below_the_document() {
        let mut e = crate::event::sample();
        e.props.clear();
        assert_eq!(json_size_bound(&crate::event::sample()), None, "props");
        // Empty strings in every field: the names and punctuation alone; control characters:
        // the most escaping.
        for text in ["", "plain", "\u{1}\u{1f}\"\\", "ü🦀"] {
            let s = text.repeat(40);
            for field in [
                &mut e.event_id,
                &mut e.site,
                &mut e.name,
                &mut e.visitor_id,
                &mut e.path,
                &mut e.browser,
                &mut e.os,
            ] {
                field.clone_from(&s);
            }
            for field in e.optional_texts_mut() {
                *field = Some(s.clone());
            }
            e.target = Some(crate::event::Target {
                tag: Some(s.clone()),
                text: Some(s.clone()),
                href: Some(s.clone()),
                id: Some(s.clone()),
            });
            e.ts = i64::MIN;
            e.received_at = i64::MIN;
            let document = crate::event::encode(&e).expect("encode").len();
            let bound = json_size_bound(&e).expect("no props");
            assert!(bound >= document, "{bound} < {document} for {text:?}");
        }
    }

    #[test]
    fn bots_are_filtered() {
        let salt = Salt::from_bytes([1; 32]);
        let got = normalize(
            wire(r#"{"event":"page_view","userAgent":"Googlebot/2.1"}"#),
            &ctx(&salt),
        );
        assert_eq!(got, Ok(None));
    }

    #[test]
    fn field_errors_name_the_field() {
        let salt = Salt::from_bytes([1; 32]);
        let err = |json: &str| {
            normalize(wire(json), &ctx(&salt))
                .expect_err("invalid")
                .field
        };
        assert_eq!(err(r#"{"event":""}"#), "event");
        assert_eq!(err(r#"{"event":"x","eventId":"short"}"#), "eventId");
        assert_eq!(err(r#"{"event":"x","sessionId":"a b"}"#), "sessionId");
        assert_eq!(err(r#"{"event":"x","timezone":"../etc"}"#), "timezone");
        assert_eq!(err(r#"{"event":"x","timestamp":1}"#), "timestamp");
        assert_eq!(err(r#"{"event":"x","screen":"big"}"#), "screen");
        assert_eq!(err(r#"{"event":"x","props":{"a":[1]}}"#), "props.a");
    }

    #[test]
    fn client_event_id_is_kept() {
        let salt = Salt::from_bytes([1; 32]);
        let e = normalize(
            wire(r#"{"event":"x","eventId":"evt_0123456789"}"#),
            &ctx(&salt),
        )
        .expect("valid")
        .expect("not a bot");
        assert_eq!(e.event_id, "evt_0123456789");
    }

    #[test]
    fn stored_strings_are_capped_in_bytes() {
        let salt = Salt::from_bytes([1; 32]);
        // The review's path: 2,047 characters of U+10000, 24 KB once percent-encoded.
        let path = format!("/{}", "\u{10000}".repeat(2046));
        let e = normalize(
            wire(&format!(
                r#"{{"event":"page_view","page":"{path}","title":"{}","referrer":"https://{}.example/"}}"#,
                "\u{10000}".repeat(500),
                "a".repeat(300)
            )),
            &ctx(&salt),
        )
        .expect("valid")
        .expect("not a bot");
        assert!(e.path.len() <= validate::MAX_PATH_BYTES, "{}", e.path.len());
        assert!(e.path.ends_with("%80"), "whole characters only: {}", e.path);
        assert!(e
            .title
            .as_ref()
            .is_some_and(|t| t.len() <= validate::MAX_TITLE_BYTES));
        assert_eq!(
            e.referrer_host, None,
            "a host longer than DNS allows is dropped"
        );
        assert!(crate::event::encode(&e).expect("encode").len() <= validate::MAX_EVENT_BYTES);
    }

    #[test]
    fn click_targets_lose_query_and_fragment() {
        let salt = Salt::from_bytes([1; 32]);
        let href = |h: &str| {
            normalize(
                wire(&format!(r#"{{"event":"click","target":{{"href":"{h}"}}}}"#)),
                &ctx(&salt),
            )
            .expect("valid")
            .expect("not a bot")
            .target
            .and_then(|t| t.href)
        };
        assert_eq!(
            href("https://bank.example/reset?token=SECRET&email=alice@example.com#x").as_deref(),
            Some("https://bank.example/reset")
        );
        assert_eq!(
            href("https://user:pw@shop.example:8443/a/b?x=1").as_deref(),
            Some("https://shop.example:8443/a/b")
        );
        assert_eq!(
            href("/docs/start?ref=nav#top").as_deref(),
            Some("/docs/start")
        );
        assert_eq!(href("mailto:alice@example.com").as_deref(), Some("mailto:"));
    }

    #[test]
    fn click_targets_are_capped() {
        let salt = Salt::from_bytes([1; 32]);
        let long = "x".repeat(1000);
        let e = normalize(
            wire(&format!(
                r#"{{"event":"click","target":{{"tag":"BUTTON","text":"{long}"}}}}"#
            )),
            &ctx(&salt),
        )
        .expect("valid")
        .expect("not a bot");
        let t = e.target.expect("target");
        assert_eq!(t.tag.as_deref(), Some("button"));
        assert_eq!(t.text.map(|s| s.len()), Some(validate::MAX_TEXT_LEN));
    }
}
