//! Property tests: no input makes the decoders or the normaliser panic, and whatever the
//! normaliser accepts survives the versioned encoding unchanged.
//!
//! Two generators: `wire_event` is mostly garbage (it finds panics on hostile input), and
//! `valid_wire_event` is mostly what real trackers send — so the round-trip property is
//! checked on thousands of accepted events, not on the rare garbage that happens to validate.
//! `the_valid_generator_is_mostly_valid` holds that promise.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use protocol::visitor::Salt;
use protocol::wire::{decode_batch, decode_track};
use protocol::{event, normalize, RequestContext, WireEvent};

const NOW: i64 = 1_800_000_000_000;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,300}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,70}", inner, 0..40)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn wire_event() -> impl Strategy<Value = WireEvent> {
    (
        ".{0,80}",
        proptest::option::of("[A-Za-z0-9_ -]{0,70}"),
        proptest::option::of(".{0,300}"),
        proptest::option::of(".{0,140}"),
        proptest::option::of(".{0,140}"),
        proptest::option::of(".{0,80}"),
        proptest::option::of(any::<i64>()),
        proptest::option::of(prop::collection::btree_map(".{0,70}", json_value(), 0..40)),
        proptest::option::of(".{0,600}"),
    )
        .prop_map(
            |(event, event_id, page, session_id, user_id, timezone, timestamp, props, ua)| {
                WireEvent {
                    event,
                    event_id,
                    page,
                    session_id,
                    user_id,
                    timezone,
                    timestamp,
                    props,
                    user_agent: ua,
                    ..Default::default()
                }
            },
        )
}

const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
];
const ZONES: &[&str] = &[
    "Europe/Berlin",
    "Asia/Kolkata",
    "America/New_York",
    "Australia/Sydney",
    "Africa/Asmera",
    "UTC",
];

/// A prop value as trackers send them: short text, integers, decimals, booleans.
fn prop_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        "[a-z0-9 äöü€-]{0,40}".prop_map(serde_json::Value::from),
        (-1_000_000i64..1_000_000).prop_map(serde_json::Value::from),
        (-1e6f64..1e6).prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
    ]
}

/// What real trackers and plain clients send: known and custom event names, paths or full
/// URLs with queries and fragments (including 4-byte characters), ids, time zones, times
/// within the accepted window, referrers, titles, screens, languages and flat props.
fn valid_wire_event() -> impl Strategy<Value = WireEvent> {
    let name = prop_oneof![
        Just("page_view".to_string()),
        Just("click".to_string()),
        Just("session_start".to_string()),
        Just("session_end".to_string()),
        "[a-z][a-z0-9_ .:/-]{0,40}",
    ];
    let page = prop_oneof![
        "/[a-z0-9/._-]{0,60}",
        "https://example\\.com/[a-z0-9/]{0,30}\\?utm_source=[a-z]{1,10}&x=[0-9]{1,5}#[a-z]{0,5}",
        "/(blog|docs)/[\\u{10000}-\\u{10010}äé]{1,20}",
    ];
    let props = prop::collection::btree_map("[a-z][a-z0-9_]{0,20}", prop_value(), 0..8);
    (
        (
            name,
            proptest::option::of("[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{12}"),
            page,
            proptest::option::of("[A-Za-z0-9]{8,40}"),
            proptest::option::weighted(0.1, "user_[a-z0-9]{1,20}"),
            proptest::sample::select(BROWSERS),
            proptest::option::of(proptest::sample::select(ZONES)),
        ),
        (
            proptest::option::of(
                (NOW - protocol::validate::MAX_EVENT_AGE_MS + 1)
                    ..(NOW + protocol::validate::MAX_EVENT_FUTURE_MS),
            ),
            proptest::option::of(
                "https://(news\\.ycombinator\\.com|www\\.google\\.com|t\\.co)/[a-z]{0,10}",
            ),
            proptest::option::of("[A-Za-z0-9 äöü–]{0,80}"),
            proptest::option::of("[1-9][0-9]{2,3}x[1-9][0-9]{2,3}"),
            proptest::option::of(proptest::sample::select(
                &["en", "de-DE", "pt-BR", "zh-Hans"][..],
            )),
            proptest::option::of(props),
        ),
    )
        .prop_map(
            |(
                (event, event_id, page, session_id, user_id, ua, timezone),
                (timestamp, referrer, title, screen, lang, props),
            )| WireEvent {
                event,
                event_id,
                page: Some(page),
                session_id,
                user_id,
                user_agent: Some(ua.to_string()),
                timezone: timezone.map(str::to_string),
                timestamp,
                referrer,
                title,
                screen,
                lang: lang.map(str::to_string),
                props,
                ..Default::default()
            },
        )
}

fn context(salt: &Salt, sent_at: Option<i64>) -> RequestContext<'_> {
    RequestContext {
        site: "example.com",
        received_at: NOW,
        sent_at,
        client_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        user_agent: None,
        salt,
    }
}

/// The round-trip property below is only worth something if it sees accepted events.
#[test]
fn the_valid_generator_is_mostly_valid() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let salt = Salt::from_bytes([3; 32]);
    let mut runner = TestRunner::deterministic();
    let strategy = valid_wire_event();
    let samples = 1000;
    let mut accepted = 0;
    let mut refused = Vec::new();
    for _ in 0..samples {
        let wire = strategy.new_tree(&mut runner).expect("generate").current();
        match normalize(wire.clone(), &context(&salt, None)) {
            Ok(Some(_)) => accepted += 1,
            Ok(None) => {}
            Err(e) => refused.push((e, wire)),
        }
    }
    assert!(
        accepted * 100 >= samples * 95,
        "only {accepted} of {samples} generated events were accepted; first refusals: {:#?}",
        &refused[..refused.len().min(3)]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn accepted_events_roundtrip_and_keep_their_promises(
        wire in valid_wire_event(),
        sent_at in proptest::option::of((NOW - 60_000)..(NOW + 60_000)),
    ) {
        let salt = Salt::from_bytes([3; 32]);
        let e = match normalize(wire, &context(&salt, sent_at)) {
            Ok(Some(e)) => e,
            _ => return Ok(()),
        };
        prop_assert_eq!(event::decode(&event::encode(&e).expect("encode")), Ok(e.clone()));
        let mut compact = Vec::new();
        protocol::compact::encode_into(&mut compact, &e);
        prop_assert_eq!(protocol::compact::decode(&mut &compact[..]), Ok(e.clone()));
        prop_assert!(e.ts >= NOW - protocol::validate::MAX_EVENT_AGE_MS);
        prop_assert!(e.ts <= NOW + protocol::validate::MAX_EVENT_FUTURE_MS);
        // What the privacy promise says is never stored: query strings and fragments.
        prop_assert!(!e.path.contains('?') && !e.path.contains('#'), "{}", e.path);
        prop_assert!(e.path.starts_with('/'));
        prop_assert!(!e.visitor_id.is_empty());
    }

    #[test]
    fn decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_track(&bytes);
        let _ = decode_batch(&bytes);
        let _ = event::decode(&bytes);
        let _ = protocol::compact::decode(&mut &bytes[..]);
        // Past the marker, where the compact decoder's length and field checks are.
        let marked = [&[protocol::compact::MARKER][..], &bytes].concat();
        let _ = protocol::compact::decode(&mut &marked[..]);
    }

    #[test]
    fn decoders_never_panic_on_json(value in json_value()) {
        let bytes = serde_json::to_vec(&value).expect("serialises");
        let _ = decode_track(&bytes);
        let _ = decode_batch(&bytes);
        let _ = event::decode(&bytes);
    }

    #[test]
    fn normalise_never_panics_and_roundtrips(
        wire in wire_event(),
        site in ".{0,300}",
        sent_at in proptest::option::of(any::<i64>()),
    ) {
        let salt = Salt::from_bytes([3; 32]);
        let ctx = RequestContext {
            site: &site,
            received_at: NOW,
            sent_at,
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            user_agent: None,
            salt: &salt,
        };
        if let Ok(Some(e)) = normalize(wire, &ctx) {
            prop_assert_eq!(event::decode(&event::encode(&e).expect("encode")), Ok(e.clone()));
            prop_assert!(e.ts >= NOW - protocol::validate::MAX_EVENT_AGE_MS);
            prop_assert!(e.ts <= NOW + protocol::validate::MAX_EVENT_FUTURE_MS);
        }
    }
}
