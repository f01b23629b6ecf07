//! Every transition of [`State::apply`](super::State::apply), on the host.

use super::*;
use protocol::live::{LiveUpdate, Totals};
use protocol::stats::{Goal, GoalKind, GoalResult};

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

const ADMIN: Access = Access {
    role: Role::Admin,
    site: None,
};

fn logged_in(sites: Vec<SiteInfo>) -> State {
    let mut s = State::restoring(Some("t".into()), UrlState::default());
    assert!(s.login.checking);
    s.apply(Action::LoggedIn {
        token: "t".into(),
        access: ADMIN,
        sites,
    });
    assert!(s.is_admin());
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
    s.apply(Action::HistoryRequested {
        request: 1,
        span,
        parts: 3,
    });
    assert_eq!(s.history.summary, Load::Loading);
    s.apply(Action::HistoryRequested {
        request: 2,
        span,
        parts: 3,
    });
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
    // Three answers of request 2 arrived (request 1's does not count): settled.
    assert_eq!(s.history.outstanding, 0);
}

#[test]
fn a_new_request_keeps_what_is_shown_until_its_answers_arrive() {
    let mut s = logged_in(vec![site("a", 1)]);
    let span = Some(Span { from: 0, to: 10 });
    s.apply(Action::HistoryRequested {
        request: 1,
        span,
        parts: 2,
    });
    let shown = Summary {
        pageviews: 4,
        ..Summary::default()
    };
    s.apply(Action::Summary(1, Ok(shown.clone())));
    s.apply(Action::Series(1, Err(ApiError::Network)));
    assert_eq!(s.history.outstanding, 0);
    // A filter click: the old totals stay up (busy) instead of flashing "Loading…".
    s.apply(Action::AddFilter(Filter::is(Dimension::Page, "/a")));
    s.apply(Action::HistoryRequested {
        request: 2,
        span,
        parts: 2,
    });
    assert_eq!(s.history.outstanding, 2);
    assert_eq!(s.history.summary, Load::Ready(shown));
    assert_eq!(s.history.series, Load::Loading);
    // The custom-property panel loads only when a property is chosen.
    assert_eq!(s.history.prop, Load::Idle);
    s.apply(Action::SetProp(Some("  plan ".into())));
    assert_eq!(s.prop.as_deref(), Some("plan"));
    s.apply(Action::HistoryRequested {
        request: 3,
        span,
        parts: 3,
    });
    assert_eq!(s.history.prop, Load::Loading);
    s.apply(Action::SetProp(Some(" ".into())));
    assert_eq!(s.prop, None);
    // An invalid range loads nothing.
    s.apply(Action::HistoryRequested {
        request: 4,
        span: None,
        parts: 3,
    });
    assert_eq!(
        (s.history.summary.clone(), s.history.outstanding),
        (Load::Idle, 0)
    );
}

#[test]
fn filters_one_per_field_invert_remove_and_clear() {
    let mut s = logged_in(vec![site("a", 1)]);
    s.apply(Action::AddFilter(Filter::is(Dimension::Page, "/a")));
    s.apply(Action::AddFilter(Filter::is(Dimension::Country, "DE")));
    // A second row of the same panel replaces the first filter, keeping its place.
    s.apply(Action::AddFilter(Filter::is(Dimension::Page, "/b")));
    assert_eq!(
        s.filters,
        vec![
            Filter::is(Dimension::Page, "/b"),
            Filter::is(Dimension::Country, "DE")
        ]
    );
    s.apply(Action::InvertFilter(Dimension::Country.into()));
    assert_eq!(s.filters[1], Filter::is_not(Dimension::Country, "DE"));
    s.apply(Action::InvertFilter(Dimension::Country.into()));
    assert_eq!(s.filters[1], Filter::is(Dimension::Country, "DE"));
    s.apply(Action::RemoveFilter(Dimension::Page.into()));
    assert_eq!(s.filters, vec![Filter::is(Dimension::Country, "DE")]);
    s.apply(Action::ClearFilters);
    assert!(s.filters.is_empty());
    // No more than the API takes.
    for i in 0..40 {
        s.apply(Action::AddFilter(Filter::is(
            Field::Prop(format!("k{i}")),
            "v",
        )));
    }
    assert_eq!(s.filters.len(), MAX_FILTERS);
    // Another site's filters do not carry over.
    s.apply(Action::SetProp(Some("plan".into())));
    s.apply(Action::SelectSite("b".into()));
    assert!(s.filters.is_empty());
    assert_eq!(s.prop, None);
}

#[test]
fn a_live_row_opens_todays_history_filtered() {
    let mut s = logged_in(vec![site("a", 1)]);
    s.apply(Action::SetRange(Range::Last30Days));
    s.apply(Action::FilterFromLive(Filter::is(
        Dimension::Browser,
        "Firefox",
    )));
    assert_eq!(s.view, View::History);
    assert_eq!(s.range, Range::Today);
    assert_eq!(s.filters, vec![Filter::is(Dimension::Browser, "Firefox")]);
}

#[test]
fn a_bookmarked_url_restores_the_view_and_survives_login() {
    let url = UrlState::parse(
        "?site=shop&view=history&range=7d&filter=page:/pricing&compare=previous&metric=visits&prop=plan",
    );
    let mut s = State::restoring(Some("t".into()), url.clone());
    // The busiest site does not replace the bookmarked one.
    s.apply(Action::LoggedIn {
        token: "t".into(),
        access: ADMIN,
        sites: vec![site("big", 100), site("shop", 1)],
    });
    assert_eq!(s.site.as_deref(), Some("shop"));
    assert_eq!(s.url_state(), url);
    assert_eq!(s.view, View::History);
    assert_eq!(s.compare, Some(Compare::Previous));
    assert_eq!(s.metric, Metric::Visits);
    // Without a site in the URL, the filters still survive the pick of the busiest site.
    let mut s = State::restoring(Some("t".into()), UrlState::parse("?filter=page:/x"));
    s.apply(Action::LoggedIn {
        token: "t".into(),
        access: ADMIN,
        sites: vec![site("big", 100)],
    });
    assert_eq!(s.site.as_deref(), Some("big"));
    assert_eq!(s.filters, vec![Filter::is(Dimension::Page, "/x")]);
}

#[test]
fn a_share_link_shows_its_one_site_read_only() {
    let mut s = State::restoring(Some("share-token".into()), UrlState::parse("?site=other"));
    s.apply(Action::LoggedIn {
        token: "share-token".into(),
        access: Access {
            role: Role::Share,
            site: Some("shop".into()),
        },
        sites: vec![],
    });
    assert!(s.is_shared() && !s.is_admin());
    assert_eq!(s.site.as_deref(), Some("shop"));
    assert!(!s.site_is_empty());
    // It cannot switch sites, and a site list (it never gets one) changes nothing.
    s.apply(Action::SelectSite("other".into()));
    s.apply(Action::SitesLoaded(vec![site("other", 9)]));
    assert_eq!(s.site.as_deref(), Some("shop"));
    assert!(s.sites.is_empty());
    s.apply(Action::LoggedOut(Some(
        "This share link is no longer valid.".into(),
    )));
    assert_eq!((s.role, s.token), (None, None));
}

#[test]
fn goal_and_share_edits_reload_on_success_and_explain_failures() {
    let mut s = logged_in(vec![site("a", 1)]);
    s.apply(Action::GoalEditStarted);
    assert!(s.goal_edit.busy);
    s.apply(Action::GoalEdited(Err(ApiError::Status(
        400,
        "value is empty".into(),
    ))));
    assert!(!s.goal_edit.busy);
    assert_eq!(
        s.goal_edit.error.as_deref(),
        Some("server answered 400: value is empty")
    );
    assert_eq!(s.history_rev, 0);
    s.apply(Action::GoalEditStarted);
    s.apply(Action::GoalEdited(Ok(())));
    assert_eq!((s.history_rev, s.goal_edit.error.clone()), (1, None));
    s.apply(Action::Refresh);
    assert_eq!(s.history_rev, 2);

    s.apply(Action::OpenShares(true));
    s.apply(Action::ShareEditStarted);
    s.apply(Action::ShareEdited(Ok(())));
    assert_eq!(s.shares.rev, 1);
    s.apply(Action::Copied(Some("id1".into())));
    assert_eq!(s.shares.copied.as_deref(), Some("id1"));
    s.apply(Action::OpenShares(false));
    assert_eq!(s.shares.copied, None);

    // Goal figures belong to the request like every other answer.
    s.apply(Action::HistoryRequested {
        request: 7,
        span: Some(Span { from: 0, to: 1 }),
        parts: 1,
    });
    let stats = GoalStats {
        site: "a".into(),
        from: String::new(),
        to: String::new(),
        visitors: 4,
        goals: vec![GoalResult {
            goal: Goal {
                id: "1".into(),
                site: "a".into(),
                kind: GoalKind::Event,
                value: "signup".into(),
                created_at: String::new(),
            },
            visitors: 1,
            conversions: 2,
            conversion_rate: 25.0,
        }],
        filters: vec![],
    };
    s.apply(Action::Goals(6, Ok(stats.clone())));
    assert_eq!(s.history.goals, Load::Loading);
    s.apply(Action::Goals(7, Ok(stats.clone())));
    assert_eq!(s.history.goals, Load::Ready(stats));
}

fn registered(name: &str) -> api::RegisteredSite {
    api::RegisteredSite {
        site: name.into(),
        added_at: "2026-11-27T10:00:00.000Z".into(),
    }
}

#[test]
fn the_registry_is_listed_changed_and_read_again() {
    let mut s = logged_in(vec![site("shop", 1)]);
    assert!(
        s.can_manage_sites(),
        "offered to the admin until the server says otherwise"
    );
    s.apply(Action::RegistryLoaded(Ok(vec![registered("default")])));
    assert_eq!(
        s.registry.sites.ready().map(Vec::len),
        Some(1),
        "{:?}",
        s.registry
    );
    s.apply(Action::ShowView(View::Sites));
    s.apply(Action::RegistryEditStarted);
    assert!(s.registry.edit.busy);
    let rev = s.registry.rev;
    s.apply(Action::RegistryEdited(Ok(())));
    assert!(!s.registry.edit.busy);
    assert_eq!(s.registry.rev, rev + 1, "a change reads the list again");
    // A refused change says why, in the server's words, and reads nothing again.
    s.apply(Action::RegistryEditStarted);
    s.apply(Action::RegistryEdited(Err(ApiError::Status(
        400,
        "may only contain letters, digits and - . _ :".into(),
    ))));
    assert!(s
        .registry
        .edit
        .error
        .as_deref()
        .is_some_and(|e| e.ends_with("may only contain letters, digits and - . _ :")));
    assert_eq!(s.registry.rev, rev + 1);
    // Removing a site someone else removed meanwhile: no error, the list is read again.
    s.apply(Action::RegistryEditStarted);
    s.apply(Action::RegistryEdited(Err(ApiError::NotFound)));
    assert_eq!(s.registry.edit.error, None);
    assert_eq!(s.registry.rev, rev + 2);
}

#[test]
fn only_the_admin_of_a_server_with_a_registry_gets_the_sites_view() {
    // A share link: never, whatever the URL or the registry says.
    let mut s = State::restoring(Some("share-token".into()), UrlState::default());
    s.apply(Action::LoggedIn {
        token: "share-token".into(),
        access: Access {
            role: Role::Share,
            site: Some("shop".into()),
        },
        sites: vec![],
    });
    assert!(!s.can_manage_sites());
    // The admin token refused by the registry (rotated meanwhile): the view closes.
    let mut s = logged_in(vec![site("shop", 1)]);
    s.apply(Action::ShowView(View::Sites));
    s.apply(Action::RegistryLoaded(Err(ApiError::Unauthorized)));
    assert!(!s.can_manage_sites());
    assert_eq!(s.view, View::Live);
    // A server without a registry: the same.
    let mut s = logged_in(vec![site("shop", 1)]);
    s.apply(Action::RegistryLoaded(Err(ApiError::NotFound)));
    assert!(!s.can_manage_sites());
}
