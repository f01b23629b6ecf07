//! The tracker copies the collector's limits and rules rather than linking `protocol` (every
//! visitor downloads the tracker, so size comes first). These host tests hold the copies to
//! the originals: a rule the tracker is stricter about loses events the collector would take;
//! one it is looser about costs the whole batch a 400.

use protocol::validate;

use crate::event::{self, PropValue, Props};

#[test]
fn limits_are_the_collectors() {
    assert_eq!(event::MAX_NAME_LEN, validate::MAX_EVENT_NAME_LEN);
    assert_eq!(event::MAX_URL_LEN, validate::MAX_URL_LEN);
    assert_eq!(event::MAX_TEXT_LEN, validate::MAX_TEXT_LEN);
    assert_eq!(event::MAX_USER_ID_LEN, validate::MAX_ID_LEN);
    assert_eq!(event::MAX_PROPS, validate::MAX_PROPS);
    assert_eq!(event::MAX_PROP_KEY_LEN, validate::MAX_PROP_KEY_LEN);
    assert_eq!(event::MAX_PROP_VALUE_LEN, validate::MAX_PROP_VALUE_LEN);
    assert_eq!(
        crate::queue::MAX_BATCH_EVENTS,
        validate::MAX_EVENTS_PER_BATCH
    );
    assert_eq!(event::MAX_TITLE_LEN, validate::MAX_TITLE_LEN);
}

/// Names and ids the rules disagree on most easily: every ASCII character alone, at the
/// start, inside and at the end, some non-ASCII and control characters, and each length cap
/// at the limit and one over.
fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    let specials = [
        'é', 'ß', '€', '\u{80}', '\u{9f}', '\u{a0}', '\u{2028}', '😀',
    ];
    for c in (0u8..=0x7f).map(char::from).chain(specials) {
        out.push(c.to_string());
        out.push(format!("{c}name"));
        out.push(format!("na{c}me"));
        out.push(format!("name{c}"));
    }
    for n in [63, 64, 65, 127, 128, 129] {
        out.push("a".repeat(n));
        out.push("é".repeat(n));
    }
    out.push(String::new());
    out
}

#[test]
fn event_names_agree() {
    for name in corpus() {
        assert_eq!(
            event::valid_name(&name),
            validate::event_name(&name).is_ok(),
            "{name:?}"
        );
    }
}

#[test]
fn user_ids_agree() {
    for id in corpus() {
        assert_eq!(
            event::valid_user_id(&id),
            validate::user_id(&id).is_ok(),
            "{id:?}"
        );
    }
}

#[test]
fn prop_keys_agree() {
    for key in corpus() {
        let mut props = Props::new();
        let kept = props.insert(&key, PropValue::Bool(true));
        let raw = std::collections::BTreeMap::from([(key.clone(), serde_json::Value::Bool(true))]);
        assert_eq!(kept, validate::props(&raw).is_ok(), "{key:?}");
    }
}
