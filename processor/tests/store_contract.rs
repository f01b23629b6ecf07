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
use processor::{MongoStore, SqliteStore, Store};
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
    }
}

async fn insert_in_batches(store: &dyn Store, events: &[Event], size: usize) {
    for chunk in events.chunks(size) {
        store.insert_batch(chunk.to_vec()).await.expect("insert");
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios: each runs against every store.

async fn same_batch_twice_is_stored_and_counted_once(store: &dyn Store) {
    let events = dataset(60, 1);
    let first = store.insert_batch(events.clone()).await.expect("insert");
    assert_eq!((first.inserted, first.duplicates), (60, 0));
    let again = store.insert_batch(events.clone()).await.expect("insert");
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
                dimension: Dimension::Page,
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
        .insert_batch(events[..30].to_vec())
        .await
        .expect("insert");
    assert_eq!((first.inserted, first.duplicates), (30, 0));
    // 30 redelivered + 50 new, shuffled together.
    let mut mixed: Vec<Event> = events.iter().rev().cloned().collect();
    mixed.rotate_left(17);
    let second = store.insert_batch(mixed).await.expect("insert");
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
        .insert_batch(vec![twice.clone(), twice.clone()])
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
        .insert_batch(events[40..140].to_vec())
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

            for dim in Dimension::ALL {
                let got = history::breakdown(
                    store,
                    BreakdownQuery {
                        range: range(site, from, to),
                        dimension: dim,
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
            dimension: Dimension::Page,
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

contract!(
    same_batch_twice_is_stored_and_counted_once,
    mixed_batch_counts_only_new_events,
    queries_match_the_raw_events,
    site_registry_adds_lists_and_removes,
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
                dimension: dim,
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
