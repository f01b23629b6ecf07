//! Issue 12, finding 3: a partition must never stall on what one site sends. On the old
//! MongoDB schema (one rollup document per site and bucket with a field per distinct value),
//! distinct values pushed a site's hour and day documents past MongoDB's 16 MiB limit: every
//! later upsert failed and the pipeline retried that batch forever, so the events of every
//! other site on the partition waited behind it. The first test below, run on that schema
//! with 24 KB paths (before rollup keys were cut to 128 bytes), stalled after 4 of its 9
//! batches (114 failed store attempts); with 128-byte keys the same takes ~120,000 distinct
//! values in a day, which one client sends in minutes. Here the real pipeline runs over a real
//! MongoDB-protocol server with such traffic — against a bucket budget made small, so a few
//! hundred values stand for a hundred thousand — followed by another site's batch.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::data::{base, MINUTE};
use common::mongo::MongoServer;
use common::source::ScriptedSource;
use processor::history;
use processor::pipeline::{self, PipelineConfig, PipelineMetrics};
use processor::query::{BreakdownQuery, RangeQuery};
use processor::source::{Checkpoint, SourceBatch};
use processor::store::MongoConfig;
use processor::{MongoStore, Store};
use protocol::fixture::EventBuilder;
use protocol::stats::Dimension;
use protocol::Event;

/// The longest path the collector stores: 2,047 four-byte characters, percent-encoded
/// (issue 12, finding 2), made distinct by a number in front.
fn long_path(i: usize) -> String {
    format!("/{i:04}/{}", "%F0%90%80%80".repeat(2040))
}

fn page_view(site: &str, id: String, path: String, ts: i64) -> Event {
    EventBuilder::new(site, "page_view", ts)
        .id(id)
        .received_at(ts + 20)
        .visitor(format!("visitor-{}", ts % 97))
        .session(format!("session-{}", ts % 89))
        .path(path)
        .build()
}

fn batch(events: Vec<Event>, partition: i32, first_offset: i64) -> SourceBatch {
    let mut checkpoint = Checkpoint::default();
    let origins = (0..events.len())
        .map(|i| {
            let offset = first_offset + i as i64;
            checkpoint.advance("footfall.events", partition, offset);
            processor::source::Position {
                topic: "footfall.events".into(),
                partition,
                offset,
            }
        })
        .collect();
    SourceBatch {
        events,
        origins,
        checkpoint,
        ..SourceBatch::default()
    }
}

fn config() -> PipelineConfig {
    PipelineConfig {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..PipelineConfig::default()
    }
}

/// Runs the pipeline until `commits` batches are committed or `within` passes; returns how
/// many were committed.
async fn run_for(
    source: &ScriptedSource,
    store: Arc<dyn Store>,
    metrics: &PipelineMetrics,
    commits: usize,
    within: Duration,
) -> usize {
    let deadline = Instant::now() + within;
    let stop = async {
        while source.commit_count() < commits && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    pipeline::run(source, store, &config(), metrics, stop).await;
    source.commit_count()
}

fn range(site: &str) -> RangeQuery {
    RangeQuery {
        site: site.into(),
        from: base(),
        to: base() + 86_400_000,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_long_paths_do_not_stall_the_partition() {
    let server = MongoServer::start();
    let config = MongoConfig {
        bucket_max_counter_bytes: 16 * 1024,
        ..MongoConfig::default()
    };
    let mongo = Arc::new(
        MongoStore::connect(&server.uri(), config)
            .await
            .expect("connect"),
    );
    let store: Arc<dyn Store> = mongo.clone();
    // 800 page views of distinct long paths on one site within one hour: 110 KB of distinct
    // 128-byte keys for that hour's and that day's rollups, against a 16 KiB bucket budget
    // (1 MiB in production: the same ratio as ~7,000 keys). Then another site's batch.
    let t0 = base() + 10 * MINUTE;
    let source = ScriptedSource::default();
    let mut offset = 0;
    for b in 0..8 {
        let events: Vec<Event> = (0..100)
            .map(|j| {
                let i = b * 100 + j;
                page_view(
                    "big.example",
                    format!("big-{i:06}"),
                    long_path(i),
                    t0 + i as i64 * 1000,
                )
            })
            .collect();
        source.push(batch(events, 0, offset));
        offset += 100;
    }
    let small: Vec<Event> = (0..10)
        .map(|i| page_view("small.example", format!("small-{i:04}"), "/".into(), t0 + i))
        .collect();
    source.push(batch(small, 0, offset));

    let metrics = PipelineMetrics::new();
    let committed = run_for(
        &source,
        store.clone(),
        &metrics,
        9,
        Duration::from_secs(240),
    )
    .await;
    assert_eq!(
        committed,
        9,
        "the partition stalled after {committed} of 9 batches ({} failed store attempts)",
        metrics.store_errors()
    );

    // Nothing was lost to make room: every page view is stored and counted, each page once —
    // before and after the compactor folded the deltas into bucket documents.
    assert!(source.dead_letters().is_empty());
    check_big_site(&*store).await;
    mongo.compact_now().await.expect("compact");
    assert_eq!(mongo.pending_deltas().await.expect("count"), 0);
    check_big_site(&*store).await;
    let s = history::summary(&*store, range("small.example"))
        .await
        .expect("summary");
    assert_eq!(s.pageviews, 10);

    // And no rollup document outgrew its budget: the hour and day of big.example are a bounded
    // bucket document plus small overflow documents.
    let client = mongodb::Client::with_uri_str(server.uri())
        .await
        .expect("client");
    let rollups = client
        .database("footfall")
        .collection::<mongodb::bson::RawDocumentBuf>("rollups");
    let mut cursor = rollups.find(mongodb::bson::doc! {}).await.expect("find");
    let (mut docs, mut largest) = (0, 0);
    while cursor.advance().await.expect("cursor") {
        let raw: mongodb::bson::RawDocumentBuf = cursor.deserialize_current().expect("document");
        docs += 1;
        largest = largest.max(raw.as_bytes().len());
    }
    assert!(
        docs > 800,
        "counters beyond a full bucket overflow into documents of their own"
    );
    assert!(
        largest < 2 << 20,
        "largest rollup document: {largest} bytes"
    );
}

async fn check_big_site(store: &dyn Store) {
    let s = history::summary(store, range("big.example"))
        .await
        .expect("summary");
    assert_eq!(s.pageviews, 800);
    let pages = history::breakdown(
        store,
        BreakdownQuery {
            range: range("big.example"),
            dimension: protocol::stats::Field::Dim(Dimension::Page),
            limit: 1000,
        },
    )
    .await
    .expect("breakdown");
    assert_eq!(pages.rows.len(), 800);
    assert!(pages.rows.iter().all(|r| r.count == 1));
    let first = long_path(0);
    let key = protocol::validate::cut_escaped(&first, processor::rollup::MAX_PATH_KEY_BYTES);
    assert_eq!(pages.rows[0].value, key);
}

/// An event no MongoDB can hold (a document over 16 MiB: no collector sends one, but anything
/// that can write to the topic can) is dead-lettered with the reason; the rest of its batch
/// is stored and the partition moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_store_refuses_is_dead_lettered_and_its_batch_stored() {
    let server = MongoServer::start();
    let store: Arc<dyn Store> = Arc::new(
        MongoStore::connect(&server.uri(), MongoConfig::default())
            .await
            .expect("connect"),
    );
    let t0 = base() + 10 * MINUTE;
    let mut events: Vec<Event> = (0..20)
        .map(|i| page_view("a.example", format!("ok-{i:06}"), "/".into(), t0 + i))
        .collect();
    events[7] = page_view(
        "a.example",
        "poison-0001".into(),
        format!("/{}", "x".repeat(17 * 1024 * 1024)),
        t0 + 7,
    );
    let source = ScriptedSource::default();
    source.push(batch(events, 3, 100));
    let after: Vec<Event> = (0..5)
        .map(|i| page_view("b.example", format!("next-{i:04}"), "/".into(), t0 + i))
        .collect();
    source.push(batch(after, 3, 120));

    let metrics = PipelineMetrics::new();
    let committed = run_for(&source, store.clone(), &metrics, 2, Duration::from_secs(60)).await;
    assert_eq!(committed, 2, "the partition stalled");
    let dead = source.dead_letters();
    assert_eq!(dead.len(), 1, "only the poison event is dead-lettered");
    assert_eq!(dead[0].origin.offset, 107);
    assert_eq!(dead[0].origin.partition, 3);
    assert!(!dead[0].reason.is_empty());
    let payload = dead[0].payload.as_deref().expect("the event itself");
    let decoded = protocol::event::decode(payload).expect("a readable event");
    assert_eq!(decoded.event_id, "poison-0001");
    assert_eq!(metrics.dead_lettered(), 1);
    let s = history::summary(&*store, range("a.example"))
        .await
        .expect("summary");
    assert_eq!(s.pageviews, 19);
    let s = history::summary(&*store, range("b.example"))
        .await
        .expect("summary");
    assert_eq!(s.pageviews, 5);
}
