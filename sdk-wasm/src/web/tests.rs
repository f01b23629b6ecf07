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
    assert_eq!(wait(), -1);
    assert_eq!(drain(), None);
    drained(true);
    done(503, 1);
    restored();
}

#[wasm_bindgen_test]
fn whole_flow_in_the_page() {
    let href = location_href();
    configure("wasm-test", "/", flags::DEFAULT, 0, 0, 0);
    assert!(start(
        Some("1280x720".into()),
        Some("en-US".into()),
        Some("Europe/Berlin".into()),
        "127.0.0.1",
        "http:",
        0
    ));
    assert!(
        !start(None, None, None, "", "", 0),
        "second start is refused"
    );
    assert_eq!(endpoint(), "/api/batch");

    page(&href, "Test page", "");
    page(&href, "Test page", ""); // same URL: no second page view
    prop_str("plan", "pro");
    prop_num("price", 19.5);
    prop_bool("trial", true);
    prop_num("nan", f64::NAN);
    assert!(track("signup"));
    assert!(!track("bad name"));
    click(
        "a",
        " out ",
        "",
        None,
        Some("https://elsewhere.example/".into()),
        "elsewhere.example",
        "https:",
    );
    assert!(identify(Some("user-1".into())));
    leave();

    let stored = storage::get(Area::Local, "footfall:queue:wasm-test").expect("persisted");
    assert_eq!(stored.lines().count(), 5);
    assert!(storage::get(Area::Session, "footfall:session:wasm-test").is_some());
    assert!(wait() >= 0, "a flush is scheduled");

    let body = drain().expect("everything is drainable");
    drained(true);
    assert_eq!(drain(), None);
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
