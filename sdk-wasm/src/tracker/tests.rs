//! The tracker state machine on the host, with a [`ManualClock`](crate::ManualClock).

use super::*;
use crate::clock::ManualClock;
use crate::config::flags;
use crate::event::PropValue;
use crate::session::SESSION_TIMEOUT_MS;
use serde_json::Value;

const T0: u64 = 1_701_234_567_890;
const URL: &str = "https://example.com/";

fn tracker(clock: &ManualClock, bits: u32) -> Tracker<&ManualClock> {
    let cfg = Config::from_flags("example.com", bits, 3, 5_000, 10);
    let ctx = Context::new("800x600", "en", "");
    Tracker::new(cfg, ctx, clock, 7)
}

fn events(body: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["site"], "example.com");
    v["events"].as_array().unwrap().clone()
}

fn names(evs: &[Value]) -> Vec<&str> {
    evs.iter().map(|e| e["event"].as_str().unwrap()).collect()
}

fn stat(t: &Tracker<&ManualClock>, name: &str) -> String {
    let i = STATS_FIELDS.iter().position(|f| *f == name).unwrap();
    t.stats_csv(0).split(',').nth(i).unwrap().to_string()
}

fn view(t: &mut Tracker<&ManualClock>, url: &str) -> bool {
    t.set_url(url);
    t.page_view("", "")
}

#[test]
fn host_of_urls() {
    assert_eq!(
        host_of("https://example.com:8080/p?q#h"),
        "example.com:8080"
    );
    assert_eq!(host_of("https://example.com"), "example.com");
    assert_eq!(host_of("http://a.b?x"), "a.b");
    assert_eq!(host_of(""), "");
}

/// Everything queued, via the beacon path (which ignores timers).
fn drain_all(t: &mut Tracker<&ManualClock>) -> Vec<Value> {
    let mut all = vec![];
    while let Some(body) = t.drain() {
        all.extend(events(&body));
        t.beaconed(true);
    }
    all
}

#[test]
fn first_page_view_starts_a_session_and_carries_the_referrer() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    assert!({
        t.set_url(URL);
        t.page_view("Home", "https://search.example/")
    });
    assert!(
        !{
            t.set_url(URL);
            t.page_view("Home", "https://search.example/")
        },
        "same URL twice"
    );
    assert!({
        t.set_url("https://example.com/b");
        t.page_view("B", "https://search.example/")
    });
    let evs = drain_all(&mut t);
    assert_eq!(names(&evs), ["session_start", "page_view", "page_view"]);
    assert_eq!(evs[1]["referrer"], "https://search.example/");
    assert_eq!(evs[1]["title"], "Home");
    assert_eq!(evs[1]["screen"], "800x600");
    assert!(
        evs[2].get("referrer").is_none(),
        "SPA views carry no document referrer"
    );
    let sid = &evs[0]["sessionId"];
    assert!(evs
        .iter()
        .all(|e| &e["sessionId"] == sid && e["timestamp"] == T0));
    let mut ids: Vec<_> = evs.iter().map(|e| e["eventId"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}

#[test]
fn bfcache_restore_counts_the_same_url_again() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    view(&mut t, URL);
    t.restored();
    assert!(view(&mut t, URL));
}

#[test]
fn batches_by_count_and_by_time() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    assert_eq!(t.wake_in(), None, "nothing queued, no timer");
    t.track("a", &Props::default()); // session_start + a
    assert_eq!(t.next_batch(), None);
    assert_eq!(t.wake_in(), Some(5_000));
    clock.advance(4_999);
    assert_eq!(t.next_batch(), None);
    clock.advance(1);
    let body = t.next_batch().expect("flush interval reached");
    assert_eq!(names(&events(&body)), ["session_start", "a"]);
    t.delivered(202, 0);
    assert_eq!(t.queued(), 0);
    assert_eq!(t.wake_in(), None);

    t.track("b", &Props::default());
    t.track("c", &Props::default());
    assert_eq!(t.next_batch(), None, "2 of 3");
    t.track("d", &Props::default());
    assert_eq!(t.wake_in(), Some(0));
    let body = t.next_batch().expect("batch size reached");
    assert_eq!(names(&events(&body)), ["b", "c", "d"]);
    assert_eq!(t.next_batch(), None, "one request at a time");
    assert_eq!(t.wake_in(), None);
    t.delivered(202, 0);
    assert_eq!(t.stats.sent, 5);
}

#[test]
fn retry_after_503_resends_the_same_events() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    for n in ["a", "b"] {
        t.track(n, &Props::default());
    }
    let first = t.next_batch().unwrap();
    t.delivered(503, 10);
    assert_eq!(t.queued(), 3);
    t.track("c", &Props::default());
    clock.advance(9_999);
    assert_eq!(t.next_batch(), None, "Retry-After not over");
    assert!(t.wake_in().unwrap() >= 1);
    clock.advance(30_001);
    let second = t.next_batch().unwrap();
    let (a, b) = (events(&first), events(&second));
    assert_eq!(&b[..3], &a[..], "same bytes, same eventIds");
    assert_eq!(names(&b), ["session_start", "a", "b", "c"]);
    t.delivered(202, 0);
    assert_eq!((t.queued(), t.stats.sent, t.stats.retries), (0, 4, 1));
}

#[test]
fn network_errors_back_off_exponentially() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    for n in ["a", "b", "c"] {
        t.track(n, &Props::default());
    }
    let mut waits = vec![];
    for _ in 0..4 {
        assert!(t.next_batch().is_some());
        t.delivered(0, 0);
        let w = t.wake_in().unwrap();
        waits.push(w);
        clock.advance(w);
    }
    for (i, w) in waits.iter().enumerate() {
        let base = 1_000u64 << i;
        assert!((base..=base + base / 2).contains(w), "{i}: {w}");
    }
    assert!(t.next_batch().is_some());
    t.delivered(202, 0);
    t.track("d", &Props::default());
    clock.advance(5_000);
    assert!(t.next_batch().is_some(), "success reset the backoff");
}

#[test]
fn rejected_batches_are_dropped_and_counted() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    for n in ["a", "b", "c"] {
        t.track(n, &Props::default());
    }
    t.next_batch().unwrap();
    t.delivered(400, 0);
    assert_eq!((t.queued(), t.stats.rejected), (0, 4));
    assert_eq!(stat(&t, "rejected"), "4");
}

#[test]
fn thirty_idle_minutes_end_the_session() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    view(&mut t, URL);
    clock.advance(SESSION_TIMEOUT_MS);
    t.track("still", &Props::default());
    clock.advance(SESSION_TIMEOUT_MS + 1);
    t.track("later", &Props::default());
    let evs = drain_all(&mut t);
    assert_eq!(
        names(&evs),
        [
            "session_start",
            "page_view",
            "still",
            "session_end",
            "session_start",
            "later"
        ]
    );
    assert_eq!(evs[3]["sessionId"], evs[0]["sessionId"]);
    assert_eq!(
        evs[3]["timestamp"],
        T0 + SESSION_TIMEOUT_MS,
        "ends at last activity"
    );
    assert_ne!(evs[4]["sessionId"], evs[0]["sessionId"]);
    assert_eq!(evs[5]["sessionId"], evs[4]["sessionId"]);
}

#[test]
fn leaving_ends_the_session_once() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    view(&mut t, URL);
    t.leave();
    t.leave();
    let evs = drain_all(&mut t);
    assert_eq!(names(&evs), ["session_start", "page_view", "session_end"]);
    // Back from the bfcache 10 minutes later: same session, no new start, and the
    // next departure ends it again.
    clock.advance(600_000);
    t.restored();
    view(&mut t, URL);
    t.leave();
    let evs2 = drain_all(&mut t);
    assert_eq!(names(&evs2), ["page_view", "session_end"]);
    assert_eq!(evs2[0]["sessionId"], evs[0]["sessionId"]);
}

#[test]
fn following_an_internal_link_does_not_end_the_session() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    view(&mut t, URL);
    let link = Clicked {
        tag: "a",
        href: Some("https://example.com/next"),
        link_host: "example.com",
        link_protocol: "https:",
        ..Default::default()
    };
    t.click(&link, &Props::default());
    clock.advance(300);
    t.leave();
    assert_eq!(
        names(&drain_all(&mut t)),
        ["session_start", "page_view", "click"]
    );
    // The next page of the tab picks the session up from sessionStorage.
    let stored = t.take_session_write().unwrap();
    let mut next = tracker(&clock, flags::DEFAULT);
    next.restore(Some(&stored), None);
    view(&mut next, "https://example.com/next");
    assert_eq!(next.session_id(), t.session_id());
    assert_eq!(names(&drain_all(&mut next)), ["page_view"]);
}

#[test]
fn fragment_links_are_not_navigation() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    view(&mut t, "https://example.com/app#top");
    let hash = Clicked {
        tag: "a",
        href: Some("https://example.com/app#details"),
        link_host: "example.com",
        link_protocol: "https:",
        ..Default::default()
    };
    t.click(&hash, &Props::default());
    t.leave();
    assert_eq!(names(&drain_all(&mut t)).last(), Some(&"session_end"));
}

#[test]
fn clicks_are_captured_only_when_enabled() {
    let clock = ManualClock::new(T0);
    let out = Clicked {
        tag: "a",
        text: "Other site",
        href: Some("https://other.org/"),
        link_host: "other.org",
        link_protocol: "https:",
        ..Default::default()
    };
    let mut t = tracker(&clock, flags::DEFAULT);
    t.click(&out, &Props::default());
    let evs = drain_all(&mut t);
    assert_eq!(names(&evs), ["session_start", "outbound"]);
    assert_eq!(evs[1]["target"]["href"], "https://other.org/");
    assert_eq!(evs[1]["target"]["text"], "Other site");
    assert_eq!(evs[1]["target"]["tag"], "a");
    let mut t = tracker(&clock, flags::AUTO_PAGEVIEWS);
    t.click(&out, &Props::default());
    assert_eq!(t.queued(), 0);
}

#[test]
fn full_queue_drops_oldest() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    for i in 0..15 {
        t.track(&format!("e{i}"), &Props::default());
    }
    assert_eq!(t.queued(), 10);
    assert_eq!(stat(&t, "dropped"), "6");
    assert_eq!(names(&drain_all(&mut t))[0], "e5");
}

#[test]
fn overflow_while_a_request_is_in_flight_keeps_positions_right() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT); // capacity 10
    for n in ["a", "b", "c"] {
        t.track(n, &Props::default());
    }
    let first = t.next_batch().unwrap();
    assert_eq!(names(&events(&first)).len(), 4);
    for i in 0..8 {
        t.track(&format!("n{i}"), &Props::default());
    }
    // 12 events for 10 places: the two oldest (in flight) went.
    assert_eq!((t.queued(), stat(&t, "dropped").as_str()), (10, "2"));
    t.delivered(202, 0);
    let rest = drain_all(&mut t);
    let want: Vec<String> = (0..8).map(|i| format!("n{i}")).collect();
    assert_eq!(names(&rest), want);
}

#[test]
fn drain_skips_the_request_in_flight_and_keeps_refused_beacons() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    for n in ["a", "b"] {
        t.track(n, &Props::default());
    }
    assert!(t.next_batch().is_some()); // session_start, a, b in flight
    t.track("c", &Props::default());
    let body = t.drain().unwrap();
    assert_eq!(names(&events(&body)), ["c"]);
    t.beaconed(false);
    assert_eq!(t.queued(), 4, "refused beacon keeps the events");
    let q = t.take_queue_write().unwrap();
    assert_eq!(
        q.lines().count(),
        4,
        "and they are persisted for the next page"
    );
    assert!(t.drain().is_some());
    t.beaconed(true);
    assert_eq!(t.drain(), None);
    t.delivered(202, 0);
    assert_eq!(t.queued(), 0);
}

#[test]
fn beacons_during_an_outage_keep_the_events_for_the_next_page() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    for n in ["a", "b", "c"] {
        t.track(n, &Props::default());
    }
    t.next_batch().unwrap();
    t.delivered(503, 30);
    t.track("d", &Props::default());
    t.leave();
    let body = t.drain().unwrap();
    assert_eq!(
        names(&events(&body)),
        ["session_start", "a", "b", "c", "d", "session_end"]
    );
    t.beaconed(true);
    assert_eq!(t.drain(), None, "draining moves on");
    let stored = t.take_queue_write().unwrap();
    assert_eq!(stored.lines().count(), 6, "all kept for the next page");
}

#[test]
fn consent_gates_everything() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT | flags::REQUIRE_CONSENT);
    assert!(!view(&mut t, URL));
    t.track("x", &Props::default());
    assert_eq!(t.queued(), 0);
    assert!(t.consent(true));
    assert!(view(&mut t, URL));
    assert!(!t.consent(false));
    assert_eq!(t.queued(), 0);
    assert_eq!(
        t.take_queue_write().as_deref(),
        Some(""),
        "storage is cleared"
    );
    assert_eq!(t.drain(), None);
}

#[test]
fn ignored_pages_record_nothing() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    t.ignore(Reason::DoNotTrack);
    view(&mut t, URL);
    t.track("x", &Props::default());
    t.leave();
    assert_eq!((t.queued(), t.next_batch(), t.drain()), (0, None, None));
    assert_eq!(stat(&t, "ignored"), "dnt");
    assert_eq!(t.stats_csv(7), "0,0,0,0,0,0,0,7,dnt,granted");
}

#[test]
fn identify_attaches_the_user_for_the_tab() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    view(&mut t, URL);
    assert!(t.identify(Some("user-42")));
    assert!(!t.identify(Some("bad\u{0}id")));
    assert_eq!(t.stats.invalid, 1);
    let mut props = Props::default();
    props.insert("plan", PropValue::Str("pro"));
    t.track("upgrade", &props);
    let evs = drain_all(&mut t);
    assert!(evs[1].get("userId").is_none(), "not before identify");
    assert_eq!(evs[2]["userId"], "user-42");
    assert_eq!(evs[2]["props"]["plan"], "pro");
    let stored = t.take_session_write().unwrap();
    let mut next = tracker(&clock, flags::DEFAULT);
    next.restore(Some(&stored), None);
    next.track("x", &Props::default());
    assert_eq!(drain_all(&mut next)[0]["userId"], "user-42");
    next.identify(None);
    next.track("y", &Props::default());
    assert!(drain_all(&mut next)[0].get("userId").is_none());
}

#[test]
fn invalid_names_are_refused_and_counted() {
    let clock = ManualClock::new(T0);
    let mut t = tracker(&clock, flags::DEFAULT);
    assert!(!t.track("<no markup>", &Props::default()));
    assert!(!t.track("", &Props::default()));
    assert_eq!((t.queued(), t.stats.invalid), (0, 2));
}

#[test]
fn restored_queue_is_sent_first() {
    let clock = ManualClock::new(T0);
    let mut old = tracker(&clock, flags::DEFAULT);
    old.track("old", &Props::default());
    let stored = old.take_queue_write().unwrap();

    clock.advance(60_000);
    let mut t = tracker(&clock, flags::DEFAULT);
    t.restore(None, Some(&format!("{stored}\ngarbage")));
    t.track("new", &Props::default());
    let body = t.next_batch().expect("restored events are due at once");
    assert_eq!(
        names(&events(&body)),
        ["session_start", "old", "session_start", "new"]
    );
    assert_eq!(stat(&t, "queued"), "4");
}
