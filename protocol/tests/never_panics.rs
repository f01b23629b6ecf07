//! Property tests: no input makes the decoders or the normaliser panic, and whatever the
//! normaliser accepts survives the versioned encoding unchanged.

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_track(&bytes);
        let _ = decode_batch(&bytes);
        let _ = event::decode(&bytes);
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
