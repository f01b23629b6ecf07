//! Browser tests of the edge, in headless Chromium:
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p footfall-sdk-wasm --target wasm32-unknown-unknown`.
//!
//! They check what only a real browser can: the storage imports (and that a refusing
//! storage does not throw), `Date.now`/`Math.random`, and the exports end to end. All tests
//! share one wasm instance, so only `whole_flow_in_the_page` calls `start`.

use wasm_bindgen_test::*;

use super::*;
use crate::config::flags;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = location, js_name = toString)]
    fn location_href() -> String;
}

#[wasm_bindgen_test]
fn storage_round_trip() {
    for area in [Area::Local, Area::Session] {
        assert!(storage::set(area, "footfall:test", "v\nw"));
        assert_eq!(storage::get(area, "footfall:test").as_deref(), Some("v\nw"));
        assert!(storage::set(area, "footfall:test", ""), "empty removes");
        assert_eq!(storage::get(area, "footfall:test"), None);
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
fn calls_before_start_do_nothing() {
    // Any order of calls before `start` is harmless (the shell may be racing the page).
    assert_eq!(wait(), None);
    assert_eq!(drain(), "");
    drained(true);
    done(503, 1);
    page("x\u{1f}\u{1f}", true);
}

#[wasm_bindgen_test]
fn the_one_export_dispatches_and_answers_in_strings() {
    assert_eq!(
        call(op::WAIT, "", 0, 0),
        "",
        "nothing to wait for before start"
    );
    assert_eq!(call(op::TRACK, "x", 0, 0), "", "false before start");
    assert_eq!(call(99, "unknown", 1, 2), "");
}

#[wasm_bindgen_test]
fn messages_split_into_fields() {
    assert_eq!(fields::<3>("a\u{1f}b\u{1f}c"), ["a", "b", "c"]);
    assert_eq!(fields::<3>("a"), ["a", "", ""]);
    assert_eq!(fields::<2>("a\u{1f}b\u{1f}extra"), ["a", "b"]);
}

#[wasm_bindgen_test]
fn whole_flow_in_the_page() {
    let href = location_href();
    assert_eq!(
        configure("wasm-test\u{1f}/\u{1f}0\u{1f}\u{1f}", flags::DEFAULT),
        "/api/batch"
    );
    assert!(start(
        "1280x720\u{1f}en-US\u{1f}Europe/Berlin\u{1f}127.0.0.1\u{1f}http:",
        0
    ));
    assert!(!start("", 0), "second start is refused");

    let page_msg = [href.as_str(), "Test page", ""].join("\u{1f}");
    page(&page_msg, false);
    page(&page_msg, false); // same URL: no second page view
    prop("plan\u{1f}pro", PROP_STR);
    prop("price\u{1f}19.5", PROP_NUM);
    prop("trial\u{1f}true", PROP_BOOL);
    prop("nan\u{1f}NaN", PROP_NUM);
    assert!(track("signup"));
    assert!(!track("bad name"));
    click(
        "a\u{1f}out\u{1f}\u{1f}\u{1f}https://elsewhere.example/\u{1f}elsewhere.example\u{1f}https:",
    );
    assert!(identify("user-1"));
    leave();

    let stored = storage::get(Area::Local, "footfall:queue:wasm-test").expect("persisted");
    assert_eq!(stored.lines().count(), 5);
    assert!(storage::get(Area::Session, "footfall:session:wasm-test").is_some());
    assert!(wait().is_some(), "a flush is scheduled");

    let body = drain();
    drained(true);
    assert_eq!(drain(), "");
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
    let s = stats();
    assert!(
        s.contains("\"sent\":5") && s.contains("\"invalid\":1"),
        "{s}"
    );
    assert_eq!(storage::get(Area::Local, "footfall:queue:wasm-test"), None);
}
