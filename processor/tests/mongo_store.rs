//! What only the MongoDB store has: connection errors, a server that dies and comes back
//! mid-stream, retention (TTL) settings. Runs against a real MongoDB-protocol server.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::data::{self, base, dataset, DAY};
use common::mongo::MongoServer;
use processor::history;
use processor::live::{deltas_of, DeltaSink, LiveHub, LiveStore};
use processor::query::RangeQuery;
use processor::store::MongoConfig;
use processor::{BoxFuture, MongoStore, Store, StoreError};
use protocol::fixture::EventBuilder;
use protocol::Event;

fn quick() -> MongoConfig {
    MongoConfig {
        server_timeout_ms: 1_000,
        insert_attempts: 2,
        retry_backoff_ms: 100,
        health_interval_ms: 200,
        sweep_interval_ms: 500,
        attempt_timeout_ms: 1_500,
        pending_grace_ms: 3_000,
        ..MongoConfig::default()
    }
}

#[tokio::test]
async fn a_wrong_uri_is_a_clear_error() {
    let err = MongoStore::connect("mongo://127.0.0.1", quick())
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, StoreError::InvalidUri(_)), "{err:?}");
    assert!(err
        .to_string()
        .contains("invalid MongoDB connection string"));

    // Nothing listens there: a clear "unreachable" naming the host, after the short timeout.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let started = Instant::now();
    let err = MongoStore::connect(
        &format!("mongodb://user:secret@127.0.0.1:{port}/?directConnection=true"),
        quick(),
    )
    .await
    .err()
    .expect("unreachable");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(!msg.contains("secret"), "credentials leaked: {msg}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_comes_from_the_uri_and_retention_can_change() {
    let server = MongoServer::start();
    let mut config = quick();
    config.retention_days = Some(30);
    let store = MongoStore::connect(&server.uri_for("analytics"), config.clone())
        .await
        .expect("connect with retention");
    assert_eq!(store.database(), "analytics");
    drop(store);
    config.retention_days = Some(7);
    let store = MongoStore::connect(&server.uri_for("analytics"), config.clone())
        .await
        .expect("change retention");
    drop(store);
    config.retention_days = None;
    let store = MongoStore::connect(&server.uri_for("analytics"), config)
        .await
        .expect("remove retention");
    let events = dataset(20, 9);
    let out = store
        .insert_batch(events.clone().into())
        .await
        .expect("insert");
    assert_eq!(out.inserted, 20);
    let default_db = MongoStore::connect(
        &format!("mongodb://127.0.0.1:{}/?directConnection=true", server.port),
        quick(),
    )
    .await
    .expect("connect");
    assert_eq!(default_db.database(), "footfall");
}

/// The server is killed (kill -9) while batches are being inserted: the store reports errors
/// and never panics, the writer keeps retrying like the processor does (it commits nothing
/// until a batch is `Ok`), and once the server is back every batch is stored exactly once —
/// events and rollups alike. (SecantusDB may drop its last acknowledged transaction commits
/// on kill -9; the store's pending-rollup sweep finishes those rollups after the restart.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_stream_loses_nothing_and_counts_nothing_twice() {
    let mut server = MongoServer::start();
    let store = Arc::new(
        MongoStore::connect(&server.uri(), quick())
            .await
            .expect("connect"),
    );
    assert!(
        store.uses_transactions(),
        "SecantusDB runs as a replica set"
    );
    let events = dataset(400, 11);
    let batches: Vec<_> = events.chunks(20).map(<[_]>::to_vec).collect();
    let errors = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));

    let writer = {
        let (store, errors, acked) = (store.clone(), errors.clone(), acked.clone());
        tokio::spawn(async move {
            for batch in batches {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match store.insert_batch(batch.clone().into()).await {
                        Ok(_) => break,
                        Err(_) => {
                            errors.fetch_add(1, Ordering::SeqCst);
                            assert!(Instant::now() < deadline, "store never came back");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                acked.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    // Let a few batches through, then kill the server in the middle of the stream.
    while acked.load(Ordering::SeqCst) < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::task::block_in_place(|| server.kill());
    let down = Instant::now();
    while errors.load(Ordering::SeqCst) == 0 || store.is_ready() {
        assert!(
            down.elapsed() < Duration::from_secs(20),
            "no error while down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let acked_while_down = acked.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(acked.load(Ordering::SeqCst) <= acked_while_down + 1);
    tokio::task::block_in_place(|| server.restart());
    writer.await.expect("writer finished");
    assert_eq!(acked.load(Ordering::SeqCst), 20);
    let up = Instant::now();
    while !store.is_ready() {
        assert!(
            up.elapsed() < Duration::from_secs(10),
            "readiness never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (from, to) = (base() - DAY, base() + 4 * DAY);
    let total_of = |store: Arc<MongoStore>| async move {
        let s = history::summary(
            &*store,
            RangeQuery {
                site: "example.com".into(),
                from,
                to,
                ..Default::default()
            },
        )
        .await;
        s.map(|s| s.events).unwrap_or(0)
    };
    let want = data::expected(&events, "example.com", from, to).events;
    let settle = Instant::now();
    while total_of(store.clone()).await != want && settle.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for site in ["example.com", "other.org"] {
        let stored = store
            .read_events(site.into(), from, to)
            .await
            .expect("events");
        let want = data::expected(&events, site, from, to);
        assert_eq!(
            stored.len() as u64,
            want.events,
            "{site}: each event stored once"
        );
        let s = history::summary(
            &*store,
            RangeQuery {
                site: site.into(),
                from,
                to,
                ..Default::default()
            },
        )
        .await
        .expect("summary");
        assert_eq!(s.events, want.events, "{site}: rollups counted once");
        assert_eq!(s.events_by_name, want.by_name);
    }
    let total: u64 = history::sites(&*store)
        .await
        .expect("sites")
        .iter()
        .map(|s| s.events)
        .sum();
    assert_eq!(total, 400);
    assert!(errors.load(Ordering::SeqCst) > 0);
}

/// Two processors on one database write concurrently while their compactors fold the deltas
/// (one at a time, by lease): nothing is lost or counted twice, and every answer is the same
/// before and after the last deltas are folded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_moves_counts_without_changing_an_answer() {
    let server = MongoServer::start();
    let config = MongoConfig {
        compact_interval_ms: 100,
        compact_lease_ms: 1_000,
        ..MongoConfig::default()
    };
    let a = Arc::new(
        MongoStore::connect(&server.uri(), config.clone())
            .await
            .expect("connect a"),
    );
    let b = Arc::new(
        MongoStore::connect(&server.uri(), config)
            .await
            .expect("connect b"),
    );
    let events = dataset(600, 21);
    let writers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(w, store)| {
            let mine: Vec<_> = events
                .chunks(25)
                .enumerate()
                .filter(|(i, _)| i % 2 == w)
                .map(|(_, c)| c.to_vec())
                .collect();
            tokio::spawn(async move {
                for batch in mine {
                    store.insert_batch(batch.into()).await.expect("insert");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    // Redelivered to the other processor: duplicates only.
    b.insert_batch(events[..100].into())
        .await
        .expect("redelivery");

    let (from, to) = (base() - DAY, base() + 4 * DAY);
    let answers = |store: Arc<MongoStore>| async move {
        let mut out = Vec::new();
        for site in ["example.com", "other.org"] {
            let r = RangeQuery {
                site: site.into(),
                from,
                to,
                ..Default::default()
            };
            let s = history::summary(&*store, r.clone()).await.expect("summary");
            out.push(serde_json::to_string(&s).expect("json"));
            for dimension in [
                protocol::stats::Dimension::Page,
                protocol::stats::Dimension::Referrer,
            ] {
                let q = processor::query::BreakdownQuery {
                    range: r.clone(),
                    dimension: protocol::stats::Field::Dim(dimension),
                    limit: 100,
                };
                let b = history::breakdown(&*store, q).await.expect("breakdown");
                out.push(serde_json::to_string(&b).expect("json"));
            }
        }
        out
    };
    let before = answers(a.clone()).await;
    a.compact_now().await.expect("compact");
    assert_eq!(a.pending_deltas().await.expect("count"), 0);
    assert_eq!(
        answers(b.clone()).await,
        before,
        "compaction changed an answer"
    );
    for site in ["example.com", "other.org"] {
        let want = data::expected(&events, site, from, to);
        let s = history::summary(
            &*a,
            RangeQuery {
                site: site.into(),
                from,
                to,
                ..Default::default()
            },
        )
        .await
        .expect("summary");
        assert_eq!(s.events, want.events, "{site}");
        assert_eq!(s.events_by_name, want.by_name, "{site}");
    }
}

/// A WebSocket ticket issued by one processor opens one socket at any processor of the
/// deployment: two stores on one database share the record of spent tickets, so the second
/// redemption — at either processor, or both at once — is refused, and a ticket signed with
/// another admin token never reaches the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_spent_once_across_processors() {
    use processor::auth::Credential;
    use processor::live::{SpentTickets, TicketError, TicketStore};
    use processor::AdminToken;

    let server = MongoServer::start();
    let a = Arc::new(
        MongoStore::connect(&server.uri(), quick())
            .await
            .expect("connect a"),
    );
    let b = Arc::new(
        MongoStore::connect(&server.uri(), quick())
            .await
            .expect("connect b"),
    );
    let token = AdminToken::new("scale-out token");
    let (spent_a, spent_b): (Arc<dyn SpentTickets>, Arc<dyn SpentTickets>) = (a, b);
    let (at_a, at_b) = (
        TicketStore::new(&token, spent_a),
        TicketStore::new(&token, spent_b.clone()),
    );

    let ticket = at_a.issue(&Credential::Admin);
    assert_eq!(at_b.redeem(&ticket).await, Ok(Credential::Admin));
    assert_eq!(at_a.redeem(&ticket).await, Err(TicketError::Invalid));
    assert_eq!(at_b.redeem(&ticket).await, Err(TicketError::Invalid));

    // Raced at both processors: exactly one wins.
    for _ in 0..10 {
        let ticket = at_b.issue(&Credential::Share {
            site: "example.com".into(),
        });
        let (x, y) = tokio::join!(at_a.redeem(&ticket), at_b.redeem(&ticket));
        let wins = [x, y].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "a raced ticket opened {wins} sockets");
    }

    let foreign = TicketStore::new(&AdminToken::new("another deployment"), spent_b);
    assert_eq!(
        at_a.redeem(&foreign.issue(&Credential::Admin)).await,
        Err(TicketError::Invalid)
    );
}

/// A batch's events, rollups and visit merges are one transaction, so a writer cut off at any
/// point (here: its insert dropped after a growing delay, as a killed processor stops) leaves
/// all of the batch or none of it. Redelivering every batch afterwards (what Kafka does for
/// offsets never committed) must then store each event once and give every figure — events,
/// rollups, visits, bounce rate, durations — exactly as a clean run on another database does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cut_off_anywhere_then_redelivered_counts_everything_once() {
    let server = MongoServer::start();
    let cut = MongoStore::connect(&server.uri_for("cut"), quick())
        .await
        .expect("connect");
    let clean = MongoStore::connect(&server.uri_for("clean"), quick())
        .await
        .expect("connect");
    assert!(cut.uses_transactions(), "SecantusDB runs as a replica set");
    let events = dataset(600, 29);
    let batches: Vec<Vec<_>> = events.chunks(40).map(<[_]>::to_vec).collect();
    let cut = Arc::new(cut);
    for (i, batch) in batches.iter().enumerate() {
        let (store, batch) = (cut.clone(), batch.clone());
        let write = tokio::spawn(async move { store.insert_batch(batch.into()).await });
        // From before the first write to after the commit, in steps.
        tokio::time::sleep(Duration::from_millis(i as u64 * 9)).await;
        write.abort();
        let _ = write.await;
    }
    for batch in &batches {
        // As the pipeline does: an attempt that meets a cut-off transaction still holding
        // its events (until the server reaps it) is retried.
        let deadline = Instant::now() + Duration::from_secs(90);
        while let Err(e) = cut.insert_batch(batch.clone().into()).await {
            assert!(
                Instant::now() < deadline,
                "redelivery never went through: {e}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        clean
            .insert_batch(batch.clone().into())
            .await
            .expect("clean");
    }
    let (from, to) = (base() - DAY, base() + 4 * DAY);
    for site in ["example.com", "other.org"] {
        let want = data::expected(&events, site, from, to);
        let stored = cut
            .read_events(site.into(), from, to)
            .await
            .expect("events");
        assert_eq!(stored.len() as u64, want.events, "{site}: each event once");
        let q = RangeQuery {
            site: site.into(),
            from,
            to,
            ..Default::default()
        };
        let got = history::summary(&*cut, q.clone()).await.expect("summary");
        let reference = history::summary(&clean, q).await.expect("summary");
        assert_eq!(got.events, want.events, "{site}: rollups once");
        assert_eq!(got.sessions, want.sessions, "{site}: sessions");
        assert!(reference.visits > 0, "{site}: the data set has visits");
        assert_eq!(
            serde_json::to_value(&got).expect("json"),
            serde_json::to_value(&reference).expect("json"),
            "{site}: every figure, visits included, as in a clean run"
        );
    }
}

/// A visit is merged from partials that share documents with other sessions' partials; with
/// more sessions than one read asks for at a time, a document matches several reads, and
/// each partial must still count once: 1,500 visits of exactly two page views each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sessions_each_merge_their_partials_once() {
    let server = MongoServer::start();
    let store = MongoStore::connect(&server.uri(), quick())
        .await
        .expect("connect");
    let t0 = base();
    let mut events = Vec::new();
    // Each visit's two page views a minute apart, visits interleaved, so a batch holds the
    // partials of many sessions and every session has partials in two batches.
    for round in 0..2i64 {
        for v in 0..1_500i64 {
            let mut e = data::event(
                format!("v{v}-{round}"),
                "example.com",
                "page_view",
                t0 + v * 10 + round * 60_000,
            );
            e.session_id = Some(format!("visit-{v}"));
            events.push(e);
        }
    }
    for batch in events.chunks(200) {
        store
            .insert_batch(batch.to_vec().into())
            .await
            .expect("insert");
    }
    let s = history::summary(
        &store,
        RangeQuery {
            site: "example.com".into(),
            from: t0 - DAY,
            to: t0 + DAY,
            ..Default::default()
        },
    )
    .await
    .expect("summary");
    assert_eq!(s.pageviews, 3_000);
    assert_eq!(s.visits, 1_500);
    assert_eq!(s.views_per_visit, 2.0, "each partial merged once");
    assert_eq!(s.bounce_rate, 0.0);
    assert_eq!(s.visit_duration, 60);
}

/// Stands for a processor cut off between storing a batch and publishing its live deltas
/// (killed, or its broker gone): the publication never happens.
struct CutOff;

impl DeltaSink for CutOff {
    fn publish<'a>(
        &'a self,
        _write: Option<&'a str>,
        _fresh: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("the processor is gone".to_string()) })
    }
}

/// Issue 14: a processor stores a batch and dies before its live deltas go out; Kafka
/// redelivers the batch — cut into other batches — to another processor, where its events
/// are duplicates. The store hands back the unpublished write, the other processor
/// publishes it (once: the marker is gone after that), and the gateway's live view equals
/// that of one process that saw every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stored_but_not_published_is_published_once_on_redelivery() {
    let server = MongoServer::start();
    let store: Arc<dyn Store> = Arc::new(
        MongoStore::connect(&server.uri(), quick())
            .await
            .expect("connect"),
    );
    let site = "live.example";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let events: Vec<Event> = (0..450)
        .map(|i| {
            EventBuilder::new(site, if i % 3 == 0 { "click" } else { "page_view" }, now)
                .id(format!("cut-{i}"))
                .visitor(format!("v{}", i % 97))
                .path(format!("/p{}", i % 7))
                .build()
        })
        .collect();
    let gateway = LiveHub::default();
    let dead = LiveStore::new(store.clone(), Arc::new(CutOff));
    let alive = LiveStore::new(store.clone(), Arc::new(gateway.clone()));

    let first = dead
        .insert_batch(events[..300].to_vec().into())
        .await
        .expect("stored; the publication is lost");
    assert_eq!(first.inserted, 300);
    let write = first.write.expect("a transaction names its write");

    // The redelivery, in other batches: half of the lost write with new events...
    let again = alive
        .insert_batch(events[150..].to_vec().into())
        .await
        .expect("redelivered");
    assert_eq!((again.inserted, again.duplicates), (150, 150));
    assert_eq!(again.republish.len(), 1, "{:?}", again.republish);
    assert_eq!(again.republish[0].write, write);
    let mut ids: Vec<&str> = again.republish[0]
        .events
        .iter()
        .map(|e| e.event_id.as_str())
        .collect();
    ids.sort_unstable();
    let mut lost: Vec<&str> = events[..300].iter().map(|e| e.event_id.as_str()).collect();
    lost.sort_unstable();
    assert_eq!(ids, lost, "the whole write, read back from the store");
    // ... then the rest of it: published already, so not again.
    let rest = alive
        .insert_batch(events[..150].to_vec().into())
        .await
        .expect("redelivered");
    assert_eq!((rest.inserted, rest.duplicates), (0, 150));
    assert!(rest.republish.is_empty(), "{:?}", rest.republish);

    let standalone = LiveHub::default();
    standalone.apply(&deltas_of(&events));
    let (live, expected) = (gateway.view(site), standalone.view(site));
    assert_eq!(expected.metrics.today.pageviews, 300);
    assert_eq!(live.metrics.today, expected.metrics.today);
    assert_eq!(live.metrics.recent, expected.metrics.recent);
}

/// The unique key is `{site, eventId}`, the shard key of docs/scaling.md (a sharded
/// collection's unique index must start with it): the same id on two sites is two events, a
/// redelivery on its own site is a duplicate, and a database made with the older `{eventId}`
/// index loses that index on start-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_unique_per_site_and_the_old_global_index_is_dropped() {
    use mongodb::bson::{doc, Document};
    use mongodb::options::IndexOptions;
    use mongodb::IndexModel;

    let server = MongoServer::start();
    let uri = server.uri_for("shardkey");
    let client = mongodb::Client::with_uri_str(&uri).await.expect("client");
    let events = client.database("shardkey").collection::<Document>("events");
    // A database from before the change.
    events
        .create_index(
            IndexModel::builder()
                .keys(doc! { "eventId": 1 })
                .options(
                    IndexOptions::builder()
                        .name("eventId_unique".to_string())
                        .unique(true)
                        .build(),
                )
                .build(),
        )
        .await
        .expect("old index");
    let store = MongoStore::connect(&uri, quick()).await.expect("connect");
    let names = events.list_index_names().await.expect("index names");
    assert!(
        names.iter().any(|n| n == "site_eventId_unique"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == "eventId_unique"), "{names:?}");

    let batch = vec![
        data::event("same-id-0001".into(), "a.example", "page_view", base()),
        data::event("same-id-0001".into(), "b.example", "page_view", base()),
    ];
    let out = store
        .insert_batch(batch.clone().into())
        .await
        .expect("insert");
    assert_eq!((out.inserted, out.duplicates), (2, 0), "one event per site");
    let again = store.insert_batch(batch.into()).await.expect("redeliver");
    assert_eq!((again.inserted, again.duplicates), (0, 2), "redelivery");
    for site in ["a.example", "b.example"] {
        let stored = store
            .read_events(site.into(), base() - DAY, base() + DAY)
            .await
            .expect("events");
        assert_eq!(stored.len(), 1, "{site}");
    }
}
