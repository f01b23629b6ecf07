//! Browser tests of the edge, in headless Chromium:
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p footfall-sdk-wasm --target wasm32-unknown-unknown`.
//!
//! They check what only a real browser can: the storage imports (and that a refusing
//! storage does not throw), `Date.now`/`Math.random`, and the export end to end. All tests
//! share one wasm instance, so only `whole_flow_in_the_page` touches the global tracker.

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

use super::*;
use crate::config::flags;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = location, js_name = toString)]
    fn location_href() -> String;
    #[wasm_bindgen(js_namespace = localStorage, js_name = getItem)]
    fn local_get(key: &str) -> Option<String>;
    #[wasm_bindgen(js_namespace = sessionStorage, js_name = getItem)]
    fn session_get(key: &str) -> Option<String>;
}

/// What the browser has stored (`None` when absent).
fn stored(area: Area, key: &str) -> Option<String> {
    match area {
        Area::Local => local_get(key),
        Area::Session => session_get(key),
    }
}

#[wasm_bindgen_test]
fn storage_round_trip() {
    for (area, key) in [
        (Area::Local, "footfall:queue:rt-test"),
        (Area::Session, "footfall:session:rt-test"),
    ] {
        assert!(storage::set(area, "rt-test", "v\nw"));
        assert_eq!(stored(area, key).as_deref(), Some("v\nw"));
        assert!(storage::set(area, "rt-test", ""), "empty removes");
        assert_eq!(stored(area, key), None);
    }
}

#[wasm_bindgen_test]
fn clock_and_random_come_from_the_browser() {
    let t = DateClock.now_ms();
    assert!(t > 1_700_000_000_000, "{t}");
    let (a, b) = (random(), random());
    assert!((0.0..1.0).contains(&a) && a != b);
}

#[wasm_bindgen_test]
fn code_points_decode_to_utf8() {
    let bytes: Vec<u8> = [0x61, 0xe9, 0x1f600, 0xd800, 0x11_0000, 0x1f]
        .iter()
        .flat_map(|c: &u32| c.to_le_bytes())
        .chain([1, 2]) // a cut-off code point is left out
        .collect();
    assert_eq!(abi::decode(&bytes), "aé😀\u{fffd}\u{fffd}\u{1f}");
    assert_eq!(abi::decode(&[]), "");
}

#[wasm_bindgen_test]
fn messages_split_into_fields_and_props() {
    assert_eq!(fields::<3>("a\u{1f}b\u{1f}c"), (["a", "b", "c"], ""));
    assert_eq!(fields::<3>("a"), (["a", "", ""], ""));
    assert_eq!(
        fields::<2>("a\u{1f}b\u{1f}x\u{1f}y"),
        (["a", "b"], "x\u{1f}y")
    );
    let p = props("plan\u{1f}0\u{1f}pro\u{1f}n\u{1f}1\u{1f}2.5\u{1f}ok\u{1f}2\u{1f}true\u{1f}bad\u{1f}9\u{1f}x");
    assert_eq!(p.len(), 3);
    assert!(props("").is_empty());
    assert_eq!(props("cut\u{1f}0").len(), 1, "a missing value is empty");
}

#[wasm_bindgen_test]
fn whole_flow_in_the_page() {
    // Any order of calls before `start` is harmless (the shell may be racing the page).
    for op in [
        op::WAIT,
        op::DRAIN,
        op::DRAINED,
        op::DONE,
        op::PAGE,
        op::TRACK,
        op::STATS,
    ] {
        assert_eq!(call(op, "x\u{1f}y", 1, 2), "", "{op}");
    }
    assert_eq!(call(99, "unknown", 1, 2), "");

    let href = location_href();
    let setup = "wasm-test\u{1f}0\u{1f}\u{1f}\u{1f}1280x720\u{1f}en-US\u{1f}Europe/Berlin\u{1f}127.0.0.1\u{1f}http:";
    assert_eq!(call(op::START, setup, flags::DEFAULT, 0), "1");
    assert_eq!(
        call(op::START, setup, flags::DEFAULT, 0),
        "",
        "second start is refused"
    );

    let page = [href.as_str(), "Test page", ""].join("\u{1f}");
    call(op::PAGE, &page, 0, 0);
    call(op::PAGE, &page, 0, 0); // same URL: no second page view
    let signup = ["signup", "plan", PROP_STR, "pro", "price", PROP_NUM, "19.5"].join("\u{1f}")
        + "\u{1f}trial\u{1f}2\u{1f}true\u{1f}nan\u{1f}1\u{1f}NaN";
    assert_eq!(call(op::TRACK, &signup, 0, 0), "1");
    assert_eq!(call(op::TRACK, "<bad name>", 0, 0), "");
    let click =
        "a\u{1f}out\u{1f}\u{1f}\u{1f}https://elsewhere.example/\u{1f}elsewhere.example\u{1f}https:";
    call(op::CLICK, click, 0, 0);
    assert_eq!(call(op::IDENTIFY, "user-1", 0, 0), "1");
    call(op::LEAVE, "", 0, 0);

    let queue = stored(Area::Local, "footfall:queue:wasm-test").expect("persisted");
    assert_eq!(queue.lines().count(), 5);
    assert!(stored(Area::Session, "footfall:session:wasm-test").is_some());
    assert_ne!(call(op::WAIT, "", 0, 0), "", "a flush is scheduled");

    let body = call(op::DRAIN, "", 0, 0);
    call(op::DRAINED, "", 1, 0);
    assert_eq!(call(op::DRAIN, "", 0, 0), "");
    for name in [
        "session_start",
        "page_view",
        "signup",
        "outbound",
        "session_end",
    ] {
        let needle = ["\"event\":\"", name, "\""].concat();
        assert!(body.contains(&needle), "{name}: {body}");
    }
    assert!(
        body.contains(r#""props":{"plan":"pro","price":19.5,"trial":true}"#),
        "{body}"
    );
    assert!(body.contains(r#""screen":"1280x720","lang":"en-US","timezone":"Europe/Berlin""#));
    assert!(
        body.contains("\"userId\":\"user-1\""),
        "session_end after identify: {body}"
    );
    assert_eq!(call(op::STATS, "", 0, 0), "0,5,5,0,0,0,1,0,,granted");
    assert_eq!(stored(Area::Local, "footfall:queue:wasm-test"), None);
}
