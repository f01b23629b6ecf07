//! Every transition of [`State::apply`](super::State::apply), on the host.

use super::*;
use protocol::live::{LiveUpdate, Totals};

fn live(msg: ServerMessage) -> Action {
    Action::Live(Box::new(msg))
}

fn site(name: &str, events: u64) -> SiteInfo {
    SiteInfo {
        site: name.into(),
        events,
        last_seen: String::new(),
    }
}

fn event(seq: u64) -> FeedEvent {
    FeedEvent {
        seq,
        ts: seq as i64,
        event: "page_view".into(),
        path: format!("/{seq}"),
        device: "desktop".into(),
        browser: "Firefox".into(),
        country: None,
        referrer: None,
    }
}

fn update(site: &str, active: u64, feed: Vec<FeedEvent>) -> LiveUpdate {
    LiveUpdate {
        v: LIVE_PROTOCOL_VERSION,
        site: site.into(),
        at: 7,
        metrics: LiveMetrics {
            active_visitors: active,
            today: Totals {
                events: feed.len() as u64,
                ..Totals::default()
            },
            ..LiveMetrics::default()
        },
        feed,
    }
}

fn logged_in(sites: Vec<SiteInfo>) -> State {
    let mut s = State::restoring(Some("t".into()));
    assert!(s.login.checking);
    s.apply(Action::LoggedIn {
        token: "t".into(),
        sites,
    });
    s
}

#[test]
fn login_picks_the_busiest_site_and_logout_forgets_everything() {
    let mut s = logged_in(vec![site("small", 2), site("big", 10)]);
    assert_eq!(s.token.as_deref(), Some("t"));
    assert_eq!(s.site.as_deref(), Some("big"));
    assert_eq!(s.sites[0].site, "big");
    s.apply(Action::LoggedOut(Some("token refused".into())));
    assert_eq!(s.token, None);
    assert_eq!(s.site, None);
    assert_eq!(s.login.message.as_deref(), Some("token refused"));
    assert!(!s.login.checking);
}

#[test]
fn wrong_token_shows_a_message_and_a_retry_clears_it() {
    let mut s = State::default();
    s.apply(Action::LoginStarted);
    assert!(s.login.checking);
    s.apply(Action::LoginFailed("wrong".into()));
    assert_eq!(s.login.message.as_deref(), Some("wrong"));
    assert!(!s.login.checking);
    s.apply(Action::LoginStarted);
    assert_eq!(s.login.message, None);
}

#[test]
fn no_sites_means_default_until_one_appears() {
    let mut s = logged_in(vec![]);
    assert_eq!(s.site.as_deref(), Some(DEFAULT_SITE));
    assert!(s.site_is_empty());
    s.apply(Action::SitesLoaded(vec![site("shop", 1)]));
    assert_eq!(s.site.as_deref(), Some("shop"));
    assert!(!s.site_is_empty());
    // A site the user picked stays picked when the list refreshes.
    s.apply(Action::SitesLoaded(vec![site("shop", 1), site("blog", 50)]));
    assert_eq!(s.site.as_deref(), Some("shop"));
    s.apply(Action::SelectSite("blog".into()));
    assert_eq!(s.site.as_deref(), Some("blog"));
}

#[test]
fn snapshot_replaces_and_ticks_append_only_newer_feed_events() {
    let mut s = logged_in(vec![site("s", 1)]);
    s.apply(Action::Conn(Conn::Connecting));
    s.apply(live(ServerMessage::Snapshot(update(
        "s",
        3,
        vec![event(1), event(2)],
    ))));
    assert_eq!(s.conn, Conn::Live);
    assert_eq!(s.live.as_ref().map(|m| m.active_visitors), Some(3));
    assert_eq!(s.feed.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 1]);
    // A tick repeating event 2 and adding 3.
    s.apply(live(ServerMessage::Tick(update(
        "s",
        4,
        vec![event(2), event(3)],
    ))));
    assert_eq!(s.feed.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(s.live.as_ref().map(|m| m.active_visitors), Some(4));
    // After a reconnect the snapshot is the truth again.
    s.apply(live(ServerMessage::Snapshot(update(
        "s",
        1,
        vec![event(9)],
    ))));
    assert_eq!(s.feed.iter().map(|e| e.seq).collect::<Vec<_>>(), [9]);
}

#[test]
fn feed_is_capped() {
    let mut feed = Vec::new();
    merge_feed(&mut feed, (1..=80).map(event).collect(), true);
    assert_eq!(feed.len(), FEED_LEN);
    assert_eq!(feed[0].seq, 80);
    merge_feed(&mut feed, vec![event(81)], false);
    assert_eq!(feed.len(), FEED_LEN);
    assert_eq!(feed[0].seq, 81);
    assert_eq!(feed[FEED_LEN - 1].seq, 32);
}

#[test]
fn stale_and_incompatible_messages() {
    let mut s = logged_in(vec![site("a", 1), site("b", 0)]);
    s.apply(live(ServerMessage::Snapshot(update("b", 5, vec![]))));
    assert_eq!(s.live, None, "a message for another site is dropped");
    let mut future = update("a", 5, vec![]);
    future.v = LIVE_PROTOCOL_VERSION + 1;
    s.apply(live(ServerMessage::Snapshot(future)));
    assert_eq!(
        s.conn,
        Conn::Incompatible {
            version: LIVE_PROTOCOL_VERSION + 1
        }
    );
    assert_eq!(s.live, None);
}

#[test]
fn connection_indicator_goes_offline_after_repeated_failures() {
    assert_eq!(Conn::after_failure(1, 500).key(), "reconnecting");
    assert_eq!(
        Conn::after_failure(OFFLINE_AFTER_ATTEMPTS - 1, 4000).key(),
        "reconnecting"
    );
    assert_eq!(
        Conn::after_failure(OFFLINE_AFTER_ATTEMPTS, 8000).key(),
        "offline"
    );
}

#[test]
fn ranges() {
    let now = protocol::time::parse_rfc3339("2026-11-26T15:30:00Z").expect("date");
    let midnight = protocol::time::parse_rfc3339("2026-11-26T00:00:00Z").expect("date");
    assert_eq!(
        Range::Today.span(now, 0),
        Some(Span {
            from: midnight,
            to: now
        })
    );
    // East of UTC is positive: at +05:30 today began at 18:30 UTC the day before.
    assert_eq!(
        Range::Today.span(now, 330).map(|s| s.from),
        protocol::time::parse_rfc3339("2026-11-25T18:30:00Z")
    );
    assert_eq!(
        Range::Last7Days.span(now, 0).map(|s| s.to - s.from),
        Some(7 * DAY_MS)
    );
    let custom = Range::Custom {
        from: "2026-11-01".into(),
        to: "2026-11-02".into(),
    };
    let span = custom.span(now, 0).expect("span");
    assert_eq!(span.to - span.from, 2 * DAY_MS);
    // A range reaching into the future stops now.
    let open = Range::Custom {
        from: "2026-11-26".into(),
        to: "2026-12-31".into(),
    };
    assert_eq!(open.span(now, 0).map(|s| s.to), Some(now));
    let reversed = Range::Custom {
        from: "2026-11-05".into(),
        to: "2026-11-01".into(),
    };
    assert_eq!(reversed.span(now, 0), None);
    let garbage = Range::Custom {
        from: "".into(),
        to: "x".into(),
    };
    assert_eq!(garbage.span(now, 0), None);
}

#[test]
fn history_answers_for_an_old_request_are_dropped() {
    let mut s = logged_in(vec![site("a", 1)]);
    let span = Some(Span { from: 0, to: 10 });
    s.apply(Action::HistoryRequested { request: 1, span });
    assert_eq!(s.history.summary, Load::Loading);
    s.apply(Action::HistoryRequested { request: 2, span });
    s.apply(Action::Summary(1, Ok(Summary::default())));
    assert_eq!(s.history.summary, Load::Loading);
    s.apply(Action::Summary(
        2,
        Ok(Summary {
            pageviews: 4,
            ..Summary::default()
        }),
    ));
    assert_eq!(s.history.summary.ready().map(|x| x.pageviews), Some(4));
    s.apply(Action::Series(2, Err(ApiError::NotFound)));
    assert_eq!(s.history.series, Load::Unavailable);
    s.apply(Action::Breakdown(
        2,
        Dimension::Page,
        Err(ApiError::Network),
    ));
    assert!(matches!(
        s.history.breakdowns.get(&Dimension::Page),
        Some(Load::Failed(_))
    ));
}

fn registered(name: &str) -> api::RegisteredSite {
    api::RegisteredSite {
        site: name.into(),
        added_at: "2026-11-27T10:00:00.000Z".into(),
    }
}

#[test]
fn the_registry_is_listed_changed_and_read_again() {
    let mut s = State::default();
    assert!(
        s.can_manage_sites(),
        "offered until the server says otherwise"
    );
    s.apply(Action::RegistryLoaded(Ok(vec![registered("default")])));
    assert_eq!(
        s.registry.sites.ready().map(Vec::len),
        Some(1),
        "{:?}",
        s.registry
    );
    s.apply(Action::ShowView(View::Sites));
    s.apply(Action::RegistryChangeStarted);
    assert!(s.registry.busy);
    let version = s.registry.version;
    s.apply(Action::RegistryChanged(Ok(())));
    assert!(!s.registry.busy);
    assert_eq!(
        s.registry.version,
        version + 1,
        "a change reads the list again"
    );
    // A refused change says why, in the server's words, and reads nothing again.
    s.apply(Action::RegistryChangeStarted);
    s.apply(Action::RegistryChanged(Err(ApiError::Status(
        400,
        "may only contain letters, digits and - . _ :".into(),
    ))));
    assert_eq!(
        s.registry.error.as_deref(),
        Some("may only contain letters, digits and - . _ :")
    );
    assert_eq!(s.registry.version, version + 1);
    s.apply(Action::RegistryChangeStarted);
    assert_eq!(s.registry.error, None, "a new attempt clears the message");
    // Removing a site someone else removed meanwhile: no error, the list is read again.
    s.apply(Action::RegistryChanged(Err(ApiError::NotFound)));
    assert_eq!(s.registry.error, None);
    assert_eq!(s.registry.version, version + 2);
}

#[test]
fn a_credential_that_cannot_manage_sites_gets_no_sites_view() {
    let mut s = State {
        view: View::Sites,
        ..State::default()
    };
    s.apply(Action::RegistryLoaded(Err(ApiError::Unauthorized)));
    assert!(!s.can_manage_sites());
    assert_eq!(s.view, View::Live);
    // A server without a registry: the same.
    let mut s = State::default();
    s.apply(Action::RegistryLoaded(Err(ApiError::NotFound)));
    assert!(!s.can_manage_sites());
}
