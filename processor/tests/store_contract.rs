//! One behavioural suite, run against every store (SQLite and MongoDB on a real
//! MongoDB-protocol server), so the two cannot drift: idempotent inserts, rollups counted once,
//! and history queries that match numbers computed here from the raw events — over ranges that
//! cross UTC and local day boundaries.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::data::{self, base, close, dataset, DAY, HOUR, MINUTE};
use common::mongo::MongoServer;
use processor::history;
use processor::query::{BreakdownQuery, RangeQuery, TimeseriesQuery};
use processor::store::{MongoConfig, RegisteredSite, SqliteConfig};
use processor::{EventBatch, MongoStore, SqliteStore, Store};
use protocol::stats::{Dimension, Interval};
use protocol::Event;

struct Harness {
    store: Arc<dyn Store>,
    // Dropped after the store: the server (or data folder) outlives every connection.
    _guard: Box<dyn std::any::Any + Send>,
}

impl Harness {
    async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(SqliteConfig::new(dir.path())).expect("open sqlite");
        Harness {
            store: Arc::new(store),
            _guard: Box::new(dir),
        }
    }

    async fn mongo() -> Harness {
        let server = MongoServer::start();
        let store = MongoStore::connect(&server.uri(), MongoConfig::default())
            .await
            .expect("connect to secantusd");
        Harness {
            store: Arc::new(store),
            _guard: Box::new(server),
        }
    }
}

fn range(site: &str, from: i64, to: i64) -> RangeQuery {
    RangeQuery {
        site: site.into(),
        from,
        to,
        ..Default::default()
    }
}

async fn insert_in_batches(store: &dyn Store, events: &[Event], size: usize) {
    for chunk in events.chunks(size) {
        store
            .insert_batch(chunk.to_vec().into())
            .await
            .expect("insert");
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios: each runs against every store.

async fn same_batch_twice_is_stored_and_counted_once(store: &dyn Store) {
    let events = dataset(60, 1);
    let first = store
        .insert_batch(events.clone().into())
        .await
        .expect("insert");
    assert_eq!((first.inserted, first.duplicates), (60, 0));
    let again = store
        .insert_batch(events.clone().into())
        .await
        .expect("insert");
    assert_eq!((again.inserted, again.duplicates), (0, 60));

    let (from, to) = (base() - DAY, base() + 4 * DAY);
    for site in ["example.com", "other.org"] {
        let want = data::expected(&events, site, from, to);
        let s = history::summary(store, range(site, from, to))
            .await
            .expect("summary");
        assert_eq!(s.events, want.events, "{site}: rollups counted once");
        assert_eq!(s.events_by_name, want.by_name);
        // Whole days: this answer comes from the rollups alone, not from edge events.
        let pages = history::breakdown(
            store,
            BreakdownQuery {
                range: range(site, base(), base() + 3 * DAY),
                dimension: Dimension::Page.into(),
                limit: 100,
            },
        )
        .await
        .expect("breakdown");
        let want_pages = data::expected_breakdown(&events, site, base(), base() + 3 * DAY, "page");
        assert_eq!(pages.total, want_pages.values().sum::<u64>());
    }
    let stored: usize = store
        .read_events("example.com".into(), from, to)
        .await
        .expect("events")
        .len();
    assert_eq!(
        stored,
        events.iter().filter(|e| e.site == "example.com").count()
    );
    let sites = history::sites(store).await.expect("sites");
    let total: u64 = sites.iter().map(|s| s.events).sum();
    assert_eq!(total, 60, "site counters only count new events");
}

async fn mixed_batch_counts_only_new_events(store: &dyn Store) {
    let events = dataset(80, 2);
    let first = store
        .insert_batch(events[..30].to_vec().into())
        .await
        .expect("insert");
    assert_eq!((first.inserted, first.duplicates), (30, 0));
    // 30 redelivered + 50 new, shuffled together.
    let mut mixed: Vec<Event> = events.iter().rev().cloned().collect();
    mixed.rotate_left(17);
    let second = store.insert_batch(mixed.into()).await.expect("insert");
    assert_eq!((second.inserted, second.duplicates), (50, 30));
    // A batch that repeats an id within itself stores it once.
    let mut twice = data::event(
        "evt-dup-in-batch".into(),
        "example.com",
        "click",
        base() + 5,
    );
    twice.visitor_id = "visitor-x".into();
    let third = store
        .insert_batch(EventBatch::from(vec![twice.clone(), twice.clone()]))
        .await
        .expect("insert");
    assert_eq!((third.inserted, third.duplicates), (1, 1));

    let mut all = events.clone();
    all.push(twice);
    let (from, to) = (base() - DAY, base() + 4 * DAY);
    let want = data::expected(&all, "example.com", from, to);
    let s = history::summary(store, range("example.com", from, to))
        .await
        .expect("summary");
    assert_eq!((s.events, s.pageviews), (want.events, want.pageviews));
    assert_eq!(s.events_by_name, want.by_name);
    assert!(
        close(s.visitors, want.visitors),
        "{} vs {}",
        s.visitors,
        want.visitors
    );
}

async fn queries_match_the_raw_events(store: &dyn Store) {
    let events = dataset(400, 3);
    insert_in_batches(store, &events, 50).await;
    // A redelivery in the middle changes nothing.
    store
        .insert_batch(events[40..140].to_vec().into())
        .await
        .expect("redelivery");

    let b = base();
    let ranges = [
        ("everything", b - DAY, b + 4 * DAY),
        (
            "30 minutes across UTC midnight",
            b + DAY - 15 * MINUTE,
            b + DAY + 15 * MINUTE,
        ),
        (
            "local day at +05:30",
            b + DAY - 5 * HOUR - 30 * MINUTE,
            b + 2 * DAY - 5 * HOUR - 30 * MINUTE,
        ),
        ("local day at -08:00", b + 8 * HOUR, b + DAY + 8 * HOUR),
        (
            "ragged custom",
            b + 3 * HOUR + 17 * MINUTE + 123,
            b + 2 * DAY + 7 * MINUTE + 9,
        ),
        ("one millisecond", b + DAY, b + DAY + 1),
        ("7 days", b + 3 * DAY - 7 * DAY, b + 3 * DAY),
    ];
    for site in ["example.com", "other.org"] {
        for (label, from, to) in ranges {
            let want = data::expected(&events, site, from, to);
            let s = history::summary(store, range(site, from, to))
                .await
                .expect("summary");
            let ctx = format!("{site} / {label}");
            assert_eq!(s.events, want.events, "{ctx}");
            assert_eq!(s.pageviews, want.pageviews, "{ctx}");
            assert_eq!(s.events_by_name, want.by_name, "{ctx}");
            assert!(
                close(s.visitors, want.visitors),
                "{ctx}: visitors {} vs {}",
                s.visitors,
                want.visitors
            );
            assert!(
                close(s.sessions, want.sessions),
                "{ctx}: sessions {} vs {}",
                s.sessions,
                want.sessions
            );

            // The dimensions the raw-event reference here knows (the others are held to
            // hand-computed values in `visits_filters_comparison_and_goals`).
            for dim in processor::rollup::ROLLUP_DIMENSIONS {
                let got = history::breakdown(
                    store,
                    BreakdownQuery {
                        range: range(site, from, to),
                        dimension: dim.into(),
                        limit: 1000,
                    },
                )
                .await
                .expect("breakdown");
                let want = data::expected_breakdown(&events, site, from, to, dim.name());
                let got_map: BTreeMap<String, u64> = got
                    .rows
                    .iter()
                    .map(|r| (r.value.clone(), r.count))
                    .collect();
                assert_eq!(got_map, want, "{ctx} / {}", dim.name());
                assert_eq!(got.total, want.values().sum::<u64>());
                assert!(got.rows.windows(2).all(|w| w[0].count >= w[1].count));
            }
        }
    }

    // Top-N: the largest first, cut to the limit.
    let top = history::breakdown(
        store,
        BreakdownQuery {
            range: range("example.com", b, b + 3 * DAY),
            dimension: Dimension::Page.into(),
            limit: 2,
        },
    )
    .await
    .expect("breakdown");
    let want = data::expected_breakdown(&events, "example.com", b, b + 3 * DAY, "page");
    let mut want_rows: Vec<(String, u64)> = want.into_iter().collect();
    want_rows.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    want_rows.truncate(2);
    let got: Vec<(String, u64)> = top
        .rows
        .iter()
        .map(|r| (r.value.clone(), r.count))
        .collect();
    assert_eq!(got, want_rows);
    assert_eq!(top.distinct, 5);

    // Time series: minutes over 30 minutes, hours and local days over several days.
    let series = [
        (
            b + DAY - 15 * MINUTE - 7,
            b + DAY + 15 * MINUTE,
            Interval::Minute,
            0,
        ),
        (b - HOUR, b + 3 * DAY + HOUR, Interval::Hour, 330),
        (b - DAY, b + 4 * DAY, Interval::Day, 330),
        (b - DAY, b + 4 * DAY, Interval::Day, -480),
        (b + 5 * HOUR + 3, b + 2 * DAY + 11 * HOUR, Interval::Day, 0),
    ];
    for (from, to, interval, tz) in series {
        let q = TimeseriesQuery {
            range: range("example.com", from, to),
            interval,
            tz_offset_min: tz,
        };
        let got = history::timeseries(store, q).await.expect("timeseries");
        let want = data::expected_series(
            &events,
            "example.com",
            from,
            to,
            interval.ms(),
            i64::from(tz),
        );
        let got_points: Vec<(i64, u64, u64)> = got
            .points
            .iter()
            .map(|p| (p.ts, p.pageviews, p.events))
            .collect();
        assert_eq!(got_points, want, "{interval:?} at {tz}");
        for p in &got.points {
            let exact = data::expected(
                &events,
                "example.com",
                p.ts.max(from),
                (p.ts + interval.ms()).min(to),
            );
            assert!(close(p.visitors, exact.visitors), "visitors at {}", p.time);
        }
    }
}

/// The site registry: adds are idempotent and keep the first `added_at`, removes say whether
/// there was something to remove, and the list is sorted by name.
async fn site_registry_adds_lists_and_removes(store: &dyn Store) {
    let site = |name: &str, added_at| RegisteredSite {
        site: name.into(),
        added_at,
    };
    let before = store.registered_sites().await.expect("list");
    assert!(store
        .register_site(site("b.example", 1_000))
        .await
        .expect("add"));
    assert!(store
        .register_site(site("a.example", 2_000))
        .await
        .expect("add"));
    assert!(!store
        .register_site(site("b.example", 9_000))
        .await
        .expect("again"));
    let listed = store.registered_sites().await.expect("list");
    let ours: Vec<&RegisteredSite> = listed
        .iter()
        .filter(|s| s.site.ends_with(".example"))
        .collect();
    assert_eq!(ours, [&site("a.example", 2_000), &site("b.example", 1_000)]);
    assert_eq!(listed.len(), before.len() + 2);
    let names: Vec<&str> = listed.iter().map(|s| s.site.as_str()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted: {names:?}");
    assert!(store
        .unregister_site("b.example".into())
        .await
        .expect("remove"));
    assert!(!store
        .unregister_site("b.example".into())
        .await
        .expect("remove"));
    assert_eq!(
        store.registered_sites().await.expect("list").len(),
        before.len() + 1
    );
}

/// The raw-event export's pages: every event of the site and range exactly once, in time
/// order, whatever the page size — including runs of events with the same timestamp split
/// across pages (the dataset has clusters at the same millisecond).
async fn export_pages_every_event_once_in_time_order(store: &dyn Store) {
    let events = dataset(400, 7);
    insert_in_batches(store, &events, 150).await;
    let b = base();
    let (from, to) = (b + DAY - 1, b + 2 * DAY + HOUR);
    let mut expected: Vec<&str> = events
        .iter()
        .filter(|e| e.site == "example.com" && e.ts >= from && e.ts < to)
        .map(|e| e.event_id.as_str())
        .collect();
    expected.sort_unstable();
    assert!(expected.len() > 100, "a range worth paging");
    for page in [1, 3, 1000] {
        let mut seen: Vec<Event> = Vec::new();
        let mut after = None;
        loop {
            let docs = store
                .export_page("example.com".into(), from, to, after.clone(), page)
                .await
                .expect("export page");
            assert!(docs.len() <= page);
            for (cursor, doc) in &docs {
                let e = protocol::event::decode(doc.as_bytes()).expect("an event document");
                assert_eq!(cursor.ts, e.ts);
                seen.push(e);
            }
            match docs.last() {
                Some((cursor, _)) if docs.len() == page => after = Some(cursor.clone()),
                _ => break,
            }
        }
        assert!(
            seen.windows(2).all(|w| w[0].ts <= w[1].ts),
            "time order (page {page})"
        );
        let mut ids: Vec<&str> = seen.iter().map(|e| e.event_id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, expected, "every event once (page {page})");
    }
}

/// Every store's filtered aggregates equal the reference evaluation of `processor::visit`
/// over the same events, filter by filter and grouping by grouping: each dimension "is" and
/// "is not" a value that occurs, wildcards, properties (also on events without them), entry
/// and exit pages, a value never stored, and combinations.
async fn filtered_aggregates_equal_the_reference(store: &dyn Store) {
    use std::collections::HashMap;

    use processor::visit::{event_stats_of, fold, visit_stats_of, Grouping, Scope};
    use protocol::event::PropValue;
    use protocol::stats::{Field, Filter, Goal, GoalKind};

    let mut events = dataset(300, 11);
    for (i, e) in events.iter_mut().enumerate() {
        if i % 4 == 0 {
            let plan = ["pro", "free", "team"][i % 3];
            e.props
                .insert("plan".into(), PropValue::String(plan.into()));
        }
        if i % 6 == 0 {
            e.props.insert("seats".into(), PropValue::Number(3.into()));
        }
    }
    insert_in_batches(store, &events, 70).await;
    let visits: HashMap<String, _> = fold(events.iter(), str::to_string)
        .into_iter()
        .filter(|((site, _), _)| *site == "example.com")
        .map(|((_, session), v)| (session.to_string(), v))
        .collect();
    let b = base();
    let (from, to) = (b + 3 * HOUR, b + 2 * DAY + 5 * HOUR);
    let parse = |f: &str| Filter::parse(f).expect("a filter");
    let mut filters: Vec<Vec<Filter>> = vec![vec![]];
    for f in [
        "page:/pricing",
        "page!:/pricing",
        "page:/docs/*",
        "page!:/blog/*",
        "event:signup",
        "event!:page_view",
        "entry:/",
        "entry!:/",
        "entry_page:/pricing",
        "entry_page!:/pricing",
        "exit_page:/*",
        "exit_page!:/docs/a.html",
        "referrer:google.com",
        "referrer!:(direct)",
        "referrer:(direct)",
        "utm_source:hn",
        "utm_source!:hn",
        "country:DE",
        "country!:IN",
        "country:(unknown)",
        "device:mobile",
        "browser!:Safari",
        "os:iOS",
        "prop.plan:pro",
        "prop.plan!:pro",
        "prop.colour:red",
        "city:Berlin",
        "city!:Berlin",
        "page:/never-stored",
        "page!:/never-stored",
    ] {
        filters.push(vec![parse(f)]);
    }
    filters.push(vec![parse("country:DE"), parse("page:/docs/*")]);
    filters.push(vec![
        parse("device!:mobile"),
        parse("prop.plan!:free"),
        parse("entry_page!:/"),
    ]);
    let goals = vec![
        Goal {
            id: "g1".into(),
            site: "example.com".into(),
            kind: GoalKind::Event,
            value: "signup".into(),
            created_at: String::new(),
        },
        Goal {
            id: "g2".into(),
            site: "example.com".into(),
            kind: GoalKind::Page,
            value: "/docs/*".into(),
            created_at: String::new(),
        },
    ];
    let groupings = [
        Grouping::Total,
        Grouping::Step {
            origin: from - 7,
            step: 5 * HOUR,
        },
        Grouping::Field(Field::Dim(Dimension::Page)),
        Grouping::Field(Field::Dim(Dimension::Entry)),
        Grouping::Field(Field::Dim(Dimension::EntryPage)),
        Grouping::Field(Field::Dim(Dimension::ExitPage)),
        Grouping::Field(Field::Dim(Dimension::Referrer)),
        Grouping::Field(Field::Dim(Dimension::Country)),
        Grouping::Field(Field::Prop("plan".into())),
        Grouping::Goals(goals),
        Grouping::PropNames,
    ];
    for fs in &filters {
        let scope = Scope {
            site: "example.com".into(),
            from,
            to,
            filters: fs.clone(),
        };
        for g in &groupings {
            let got = store
                .event_stats(scope.clone(), g.clone())
                .await
                .expect("event stats");
            assert_eq!(
                got,
                event_stats_of(&events, &visits, &scope, g),
                "event stats, filters {fs:?}, grouping {g:?}"
            );
            let got = store
                .visit_stats(scope.clone(), g.clone())
                .await
                .expect("visit stats");
            assert_eq!(
                got,
                visit_stats_of(&events, &visits, &scope, g),
                "visit stats, filters {fs:?}, grouping {g:?}"
            );
        }
    }
}

/// An edge's counts, which the store makes as it reads the events (a burst can put a great
/// many in one minute), are those of the same events counted one by one.
async fn edge_counts_are_the_events_counted_one_by_one(store: &dyn Store) {
    let events = dataset(300, 11);
    insert_in_batches(store, &events, 50).await;
    for (site, from, to) in [
        ("example.com", base() - DAY, base() + 4 * DAY),
        (
            "example.com",
            base() + DAY - 30 * MINUTE,
            base() + DAY + 20 * MINUTE,
        ),
        ("other.org", base(), base() + 2 * DAY),
        ("nobody.test", base(), base() + DAY),
    ] {
        let mut want = processor::rollup::Rollup::default();
        for e in events
            .iter()
            .filter(|e| e.site == site && e.ts >= from && e.ts < to)
        {
            want.add_event(e);
        }
        let got = store
            .edge_rollup(site.into(), from, to)
            .await
            .expect("edge rollup");
        assert_eq!(got, want, "{site} {from}..{to}");
    }
}

macro_rules! contract {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let h = super::Harness::sqlite().await;
                    super::$scenario(&*h.store).await;
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let h = super::Harness::mongo().await;
                    super::$scenario(&*h.store).await;
                }
            )*
        }
    };
}

/// Two visits today and one the day before, hand-made, so every figure below is computed by
/// hand (see the comments), not by the code under test.
///
/// - A (google.com, utm news, DE, desktop): `/` at 10:00:00, `/pricing` at :30, `signup`
///   (plan=pro) at :40, `/thanks/pro` at 10:01:00, `session_end` at 10:01:30 — 3 page views,
///   90 s, entry `/`, exit `/thanks/pro`. Stored out of order, with its `session_end` resent.
/// - B (direct, FR, mobile): `/blog/x` at 11:00, `session_end` at 11:00:30 — a bounce, 30 s.
/// - D: a `download` (plan=free) at 12:00 and nothing else — no page view, so no visit.
/// - C, the day before: `/` and `/pricing` 20 s apart — 2 page views, 20 s.
fn visits_dataset() -> (Vec<Vec<Event>>, Event) {
    use protocol::event::PropValue;
    use protocol::fixture::EventBuilder;
    let b = base();
    let s = 1_000;
    let ev = |id: &str, session: &str, visitor: &str, name: &str, ts: i64, path: &str| {
        EventBuilder::new("shop.test", name, ts)
            .id(format!("0190a5d2-0000-7000-8000-{id:0>12}"))
            .session(session)
            .visitor(visitor)
            .path(path)
    };
    let a = |id: &str, name: &str, ts: i64, path: &str| {
        ev(id, "sess-a", "aaaa000000000001", name, ts, path)
            .country("DE")
            .browser("Firefox")
    };
    let a_start = a("a1", "session_start", b + 10 * HOUR, "/")
        .referrer("google.com")
        .utm_source("news")
        .build();
    let a_landing = a("a2", "page_view", b + 10 * HOUR, "/")
        .referrer("google.com")
        .utm_source("news")
        .build();
    let a_pricing = a("a3", "page_view", b + 10 * HOUR + 30 * s, "/pricing").build();
    let a_signup = a("a4", "signup", b + 10 * HOUR + 40 * s, "/pricing")
        .prop("plan", PropValue::String("pro".into()))
        .build();
    let a_thanks = a("a5", "page_view", b + 10 * HOUR + 60 * s, "/thanks/pro").build();
    let a_end = a("a6", "session_end", b + 10 * HOUR + 90 * s, "/thanks/pro").build();
    let bv = |id: &str, name: &str, ts: i64| {
        ev(id, "sess-b", "bbbb000000000002", name, ts, "/blog/x")
            .country("FR")
            .device(protocol::Device::Mobile)
            .browser("Safari")
            .build()
    };
    let d = ev(
        "d1",
        "sess-d",
        "dddd000000000004",
        "download",
        b + 12 * HOUR,
        "/files",
    )
    .prop("plan", PropValue::String("free".into()))
    .build();
    let c = |id: &str, ts: i64, path: &str| {
        ev(id, "sess-c", "cccc000000000003", "page_view", ts, path).build()
    };
    let batches = vec![
        // A's last page view and its session end arrive first, its landing last.
        vec![
            a_thanks,
            a_end.clone(),
            bv("b3", "session_end", b + 11 * HOUR + 30 * s),
        ],
        vec![
            a_signup,
            a_pricing,
            bv("b1", "session_start", b + 11 * HOUR),
        ],
        vec![bv("b2", "page_view", b + 11 * HOUR), d],
        vec![a_landing, a_start],
        vec![
            c("c1", b - 14 * HOUR, "/"),
            c("c2", b - 14 * HOUR + 20 * s, "/pricing"),
        ],
    ];
    (batches, a_end)
}

fn filtered(q: RangeQuery, filters: &[&str]) -> RangeQuery {
    RangeQuery {
        filters: filters
            .iter()
            .map(|f| protocol::stats::Filter::parse(f).expect("filter"))
            .collect(),
        ..q
    }
}

fn visit_figures(s: &protocol::stats::Summary) -> (u64, f64, u64, f64) {
    (s.visits, s.bounce_rate, s.visit_duration, s.views_per_visit)
}

async fn rows(store: &dyn Store, q: RangeQuery, dimension: &str) -> Vec<(String, u64)> {
    let b = history::breakdown(
        store,
        BreakdownQuery {
            range: q,
            dimension: protocol::stats::Field::parse(dimension).expect("dimension"),
            limit: 100,
        },
    )
    .await
    .expect("breakdown");
    b.rows.into_iter().map(|r| (r.value, r.count)).collect()
}

async fn visits_filters_comparison_and_goals(store: &dyn Store) {
    use protocol::stats::{Compare, Goal, GoalKind};
    let (batches, a_end) = visits_dataset();
    for batch in batches {
        store.insert_batch(batch.into()).await.expect("insert");
    }
    let b = base();
    let today = || range("shop.test", b, b + DAY);
    let summary = |q: RangeQuery| async move { history::summary(store, q).await.expect("summary") };

    // Visits A and B: one bounce; (90 + 30) / 2 = 60 s; 4 page views / 2 visits.
    let s = summary(today()).await;
    assert_eq!(visit_figures(&s), (2, 50.0, 60, 2.0));
    assert_eq!((s.pageviews, s.events, s.visitors), (4, 10, 3));

    // A resent session_end (same id) and a second one at the same moment change nothing.
    let mut again = a_end.clone();
    again.event_id = "0190a5d2-0000-7000-8000-0000000000a7".into();
    store
        .insert_batch(vec![a_end, again].into())
        .await
        .expect("insert");
    let s = summary(today()).await;
    assert_eq!(visit_figures(&s), (2, 50.0, 60, 2.0));

    // Compared with the day before: visit C alone (20 s, 2 page views).
    let s = summary(RangeQuery {
        compare: Some(Compare::Previous),
        ..today()
    })
    .await;
    let p = s.previous.as_deref().expect("previous");
    assert_eq!(visit_figures(p), (1, 0.0, 20, 2.0));
    assert_eq!(
        (p.pageviews, p.from.as_str()),
        (2, "2026-02-28T00:00:00.000Z")
    );

    // Event-level filters keep matching events and the visits that have one.
    let s = summary(filtered(today(), &["page:/pricing"])).await;
    assert_eq!((s.events, s.pageviews, s.visitors), (2, 1, 1));
    assert_eq!(visit_figures(&s), (1, 0.0, 90, 3.0));
    let s = summary(filtered(today(), &["page:/blog/*"])).await;
    assert_eq!((s.events, s.pageviews), (3, 1));
    assert_eq!(visit_figures(&s), (1, 100.0, 30, 1.0));
    let s = summary(filtered(today(), &["prop.plan:pro"])).await;
    assert_eq!((s.events, s.visits), (1, 1));
    let s = summary(filtered(today(), &["prop.plan!:pro"])).await;
    assert_eq!(
        s.events, 10,
        "11 events today (second end included) minus the pro signup"
    );
    let s = summary(filtered(today(), &["event:signup"])).await;
    assert_eq!((s.events, s.visitors), (1, 1));
    // Visit-level filters keep whole visits: A's source is google.com for all its events,
    // though only its landing page view carried the referrer (and arrived last).
    let s = summary(filtered(today(), &["referrer:google.com"])).await;
    assert_eq!((s.events, s.pageviews), (7, 3));
    assert_eq!(visit_figures(&s), (1, 0.0, 90, 3.0));
    let s = summary(filtered(today(), &["country!:DE"])).await;
    assert_eq!((s.events, s.visits), (4, 1));
    let s = summary(filtered(today(), &["entry_page:/"])).await;
    assert_eq!((s.events, s.visits), (7, 1));
    let s = summary(filtered(today(), &["exit_page:/thanks/*"])).await;
    assert_eq!(visit_figures(&s), (1, 0.0, 90, 3.0));
    let s = summary(filtered(today(), &["exit_page!:/thanks/*"])).await;
    assert_eq!(visit_figures(&s), (1, 100.0, 30, 1.0));
    // AND-ed.
    let s = summary(filtered(today(), &["country:DE", "page:/pricing"])).await;
    assert_eq!((s.events, s.visits), (2, 1));
    let s = summary(filtered(today(), &["country:FR", "page:/pricing"])).await;
    assert_eq!((s.events, s.visits), (0, 0));

    // Breakdowns the rollups do not keep, and filtered ones.
    let sorted = |mut v: Vec<(String, u64)>| {
        v.sort();
        v
    };
    let pair = |v: &str, n: u64| (v.to_string(), n);
    assert_eq!(
        sorted(rows(store, today(), "entry_page").await),
        [pair("/", 1), pair("/blog/x", 1)]
    );
    assert_eq!(
        sorted(rows(store, today(), "exit_page").await),
        [pair("/blog/x", 1), pair("/thanks/pro", 1)]
    );
    assert_eq!(
        sorted(rows(store, today(), "prop.plan").await),
        [pair("free", 1), pair("pro", 1)]
    );
    assert_eq!(
        sorted(rows(store, filtered(today(), &["country:DE"]), "page").await),
        [pair("/", 1), pair("/pricing", 1), pair("/thanks/pro", 1)]
    );
    assert_eq!(
        rows(store, filtered(today(), &["page:/pricing"]), "referrer").await,
        [pair("google.com", 1)]
    );
    assert_eq!(
        rows(store, filtered(today(), &["page!:/pricing"]), "browser").await,
        [pair("Firefox", 2), pair("Safari", 1)]
    );

    // Time series: visits by the hour they started in.
    let series = history::timeseries(
        store,
        TimeseriesQuery {
            range: range("shop.test", b + 10 * HOUR, b + 12 * HOUR),
            interval: Interval::Hour,
            tz_offset_min: 0,
        },
    )
    .await
    .expect("series");
    let got: Vec<(u64, f64, u64, f64)> = series
        .points
        .iter()
        .map(|p| (p.visits, p.bounce_rate, p.visit_duration, p.views_per_visit))
        .collect();
    assert_eq!(got, [(1, 0.0, 90, 3.0), (1, 100.0, 30, 1.0)]);

    // Goals: 3 visitors today (A, B, D); A converts on both.
    let goal = |kind, value: &str| Goal {
        id: value.into(),
        site: "shop.test".into(),
        kind,
        value: value.into(),
        created_at: String::new(),
    };
    let goals = vec![
        goal(GoalKind::Event, "signup"),
        goal(GoalKind::Page, "/thanks/*"),
        goal(GoalKind::Event, "nope"),
    ];
    let g = history::goals(store, today(), goals.clone())
        .await
        .expect("goals");
    let figures: Vec<(u64, u64, f64)> = g
        .goals
        .iter()
        .map(|r| (r.visitors, r.conversions, r.conversion_rate))
        .collect();
    assert_eq!(g.visitors, 3);
    assert_eq!(figures, [(1, 1, 33.3), (1, 1, 33.3), (0, 0, 0.0)]);
    let g = history::goals(store, filtered(today(), &["country:FR"]), goals)
        .await
        .expect("goals");
    assert_eq!(g.visitors, 1);
    assert_eq!(g.goals[0].conversions, 0);
}

contract!(
    same_batch_twice_is_stored_and_counted_once,
    mixed_batch_counts_only_new_events,
    queries_match_the_raw_events,
    site_registry_adds_lists_and_removes,
    visits_filters_comparison_and_goals,
    export_pages_every_event_once_in_time_order,
    filtered_aggregates_equal_the_reference,
    edge_counts_are_the_events_counted_one_by_one,
);

/// The same data in both stores gives byte-identical JSON answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_answer_with_identical_json() {
    let (sqlite, mongo) = (Harness::sqlite().await, Harness::mongo().await);
    let events = dataset(300, 4);
    insert_in_batches(&*sqlite.store, &events, 100).await;
    insert_in_batches(&*mongo.store, &events, 100).await;
    let b = base();
    let r = || range("example.com", b + 2 * HOUR + 5, b + 2 * DAY + 3 * HOUR);
    for store in [&sqlite.store, &mongo.store] {
        assert!(store.is_ready());
    }
    let mut answers: Vec<Vec<String>> = Vec::new();
    for store in [&sqlite.store, &mongo.store] {
        let mut out =
            vec![
                serde_json::to_string(&history::summary(&**store, r()).await.expect("summary"))
                    .expect("json"),
            ];
        for dim in Dimension::ALL {
            let q = BreakdownQuery {
                range: r(),
                dimension: dim.into(),
                limit: 3,
            };
            out.push(
                serde_json::to_string(&history::breakdown(&**store, q).await.expect("breakdown"))
                    .expect("json"),
            );
        }
        for (interval, tz) in [(Interval::Hour, 0), (Interval::Day, 330)] {
            let q = TimeseriesQuery {
                range: r(),
                interval,
                tz_offset_min: tz,
            };
            out.push(
                serde_json::to_string(&history::timeseries(&**store, q).await.expect("series"))
                    .expect("json"),
            );
        }
        let mut sites = history::sites(&**store).await.expect("sites");
        sites.sort_by(|a, b| a.site.cmp(&b.site));
        out.push(format!(
            "{:?}",
            sites
                .iter()
                .map(|s| (&s.site, s.events))
                .collect::<Vec<_>>()
        ));
        answers.push(out);
    }
    assert_eq!(answers[0], answers[1]);
}
