//! The embedded store: idempotent inserts, durability across reopen, group commit under
//! concurrency, the folder lock, salt rotation and the summary query.

mod common;

use std::sync::Arc;

use processor::history;
use processor::query::RangeQuery;
use processor::store::SqliteConfig;
use processor::{EventBatch, SqliteStore, Store, StoreError};
use protocol::Event;

const T0: i64 = 1_800_000_000_000;

fn event(id: &str, name: &str, visitor: &str, ts: i64) -> Event {
    Event {
        visitor_id: visitor.into(),
        session_id: Some(format!("s-{visitor}")),
        received_at: ts,
        ..common::data::event(id.to_string(), "example.com", name, ts)
    }
}

fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(dir)).expect("open store")
}

fn range(from: i64, to: i64) -> RangeQuery {
    RangeQuery {
        site: "example.com".into(),
        from,
        to,
        ..Default::default()
    }
}

#[tokio::test]
async fn same_batch_twice_is_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let batch = vec![
        event("evt-00000001", "page_view", "v1", T0),
        event("evt-00000002", "click", "v1", T0 + 1),
    ];
    let first = store
        .insert_batch(batch.clone().into())
        .await
        .expect("insert");
    assert_eq!((first.inserted, first.duplicates), (2, 0));
    let second = store.insert_batch(batch.into()).await.expect("insert");
    assert_eq!((second.inserted, second.duplicates), (0, 2));
    let mixed = store
        .insert_batch(EventBatch::from(vec![
            event("evt-00000002", "click", "v1", T0 + 1),
            event("evt-00000003", "page_view", "v2", T0 + 2),
        ]))
        .await
        .expect("insert");
    assert_eq!((mixed.inserted, mixed.duplicates), (1, 1));

    let s = history::summary(&store, range(T0, T0 + 10))
        .await
        .expect("summary");
    assert_eq!(
        (s.events, s.pageviews, s.visitors, s.sessions),
        (3, 2, 2, 2)
    );
    assert_eq!(s.events_by_name.get("click"), Some(&1));
    let sites = history::sites(&store).await.expect("sites");
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].events, 3, "site counters only count new events");
}

#[tokio::test]
async fn summary_respects_the_half_open_range_and_site() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut other = event("evt-other-site", "page_view", "v9", T0);
    other.site = "other.com".into();
    store
        .insert_batch(EventBatch::from(vec![
            event("evt-before-0", "page_view", "v1", T0 - 1),
            event("evt-inside-0", "page_view", "v1", T0),
            event("evt-inside-1", "page_view", "v2", T0 + 999),
            event("evt-at-end-0", "page_view", "v3", T0 + 1000),
            other,
        ]))
        .await
        .expect("insert");
    let s = history::summary(&store, range(T0, T0 + 1000))
        .await
        .expect("summary");
    assert_eq!((s.pageviews, s.visitors), (2, 2));
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        store
            .insert_batch(EventBatch::from(vec![event(
                "evt-persist-1",
                "page_view",
                "v1",
                T0,
            )]))
            .await
            .expect("insert");
    }
    // The first store's writer thread may still hold the folder lock for a moment.
    let store = loop {
        match SqliteStore::open(SqliteConfig::new(dir.path())) {
            Ok(s) => break s,
            Err(StoreError::Locked { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("reopen: {e}"),
        }
    };
    let s = history::summary(&store, range(T0, T0 + 1))
        .await
        .expect("summary");
    assert_eq!(s.events, 1);
}

#[tokio::test]
async fn a_second_open_of_the_folder_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _store = open(dir.path());
    match SqliteStore::open(SqliteConfig::new(dir.path())) {
        Err(StoreError::Locked { path }) => assert!(path.contains(&*dir.path().to_string_lossy())),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, got a second store"),
    }
}

#[tokio::test]
async fn unopenable_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("write");
    match SqliteStore::open(SqliteConfig::new(&file)) {
        Err(StoreError::Open { path, .. }) => assert!(path.ends_with("not-a-dir")),
        Err(e) => panic!("expected Open, got {e}"),
        Ok(_) => panic!("opened a store inside a file"),
    }
    let garbage = tempfile::tempdir().expect("tempdir");
    std::fs::write(garbage.path().join("footfall.db"), vec![0x42; 8192]).expect("write");
    assert!(matches!(
        SqliteStore::open(SqliteConfig::new(garbage.path())),
        Err(StoreError::Open { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_group_commits_and_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(dir.path()));
    let mut tasks = Vec::new();
    for w in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..20 {
                let batch: Vec<_> = (0..5)
                    .map(|i| {
                        event(
                            &format!("evt-{w:03}-{b:03}-{i}"),
                            "page_view",
                            &format!("v{w}"),
                            T0 + i,
                        )
                    })
                    .collect();
                store.insert_batch(batch.into()).await.expect("insert");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let s = history::summary(&*store, range(T0, T0 + 10))
        .await
        .expect("summary");
    assert_eq!(s.events, 32 * 20 * 5);
    assert_eq!(s.visitors, 32);
}

#[tokio::test]
async fn full_queue_is_overloaded_not_unbounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = SqliteConfig::new(dir.path());
    config.queue_capacity = 1;
    let store = Arc::new(SqliteStore::open(config).expect("open"));
    // Fire many inserts at once without awaiting: with a one-slot queue some must be refused.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<_> = (0..50)
                .map(|j| event(&format!("evt-q-{i:04}-{j:03}"), "page_view", "v", T0))
                .collect();
            store.insert_batch(batch.into()).await
        }));
    }
    let mut overloaded = 0;
    let mut stored = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(o) => stored += o.inserted,
            Err(StoreError::Overloaded) => overloaded += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        overloaded > 0,
        "a one-slot queue must refuse some of 200 concurrent inserts"
    );
    let s = history::summary(&*store, range(T0, T0 + 1))
        .await
        .expect("summary");
    assert_eq!(
        s.events as usize, stored,
        "what was acknowledged is exactly what is stored"
    );
}

#[tokio::test]
async fn salts_are_stable_per_day_and_old_ones_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let d100 = store.daily_salt(100).await.expect("salt");
    assert_eq!(d100, store.daily_salt(100).await.expect("salt"));
    let d101 = store.daily_salt(101).await.expect("salt");
    assert_ne!(d100, d101);
    // Day 100's salt is gone: asking again makes a new, different one.
    let conn = rusqlite_count(store.path(), "SELECT COUNT(*) FROM salts WHERE day = 100");
    assert_eq!(conn, 0);
}

fn rusqlite_count(path: &std::path::Path, sql: &str) -> i64 {
    // Read through the sqlite3 file format with a fresh connection of our own.
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row(sql, [], |r| r.get(0)).expect("query")
}

#[tokio::test]
async fn full_disk_is_a_clear_error_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = SqliteConfig::new(dir.path());
    config.max_size_bytes = Some(256 * 1024);
    let store = SqliteStore::open(config).expect("open");
    let mut acknowledged = 0usize;
    let mut full = None;
    for b in 0..200 {
        let batch: Vec<_> = (0..50)
            .map(|i| event(&format!("evt-full-{b:04}-{i:03}"), "page_view", "v", T0))
            .collect();
        match store.insert_batch(batch.into()).await {
            Ok(o) => acknowledged += o.inserted,
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    match full {
        Some(StoreError::DiskFull(msg)) => assert!(msg.contains("full"), "{msg}"),
        other => panic!("expected DiskFull, got {other:?}"),
    }
    assert!(!store.is_ready(), "a full store reports not ready");
    let s = history::summary(&store, range(T0, T0 + 1))
        .await
        .expect("reads still work");
    assert_eq!(s.events as usize, acknowledged);
}

/// A database written before rollups existed (schema 1: events only) gets its rollups built
/// from the stored events when it is opened, so history queries see the old data.
#[tokio::test]
async fn a_schema_1_database_gets_its_rollups_built_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = common::data::dataset(120, 21);
    let (from, to) = (
        common::data::base(),
        common::data::base() + 3 * common::data::DAY,
    );
    let before = {
        let store = open(dir.path());
        store.insert_batch(events.into()).await.expect("insert");
        let s = history::summary(
            &store,
            RangeQuery {
                site: "example.com".into(),
                from,
                to,
                ..Default::default()
            },
        )
        .await
        .expect("summary");
        (s.events, s.pageviews, s.events_by_name)
    };
    // Turn the file into what an older footfall left behind.
    let db = dir.path().join("footfall.db");
    let conn = rusqlite::Connection::open(&db).expect("open file");
    conn.execute_batch(
        "DELETE FROM rollup_counts; DELETE FROM rollup_hll; PRAGMA user_version = 1;",
    )
    .expect("downgrade");
    drop(conn);
    let store = loop {
        match SqliteStore::open(SqliteConfig::new(dir.path())) {
            Ok(s) => break s,
            Err(StoreError::Locked { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("reopen: {e}"),
        }
    };
    let s = history::summary(
        &store,
        RangeQuery {
            site: "example.com".into(),
            from,
            to,
            ..Default::default()
        },
    )
    .await
    .expect("summary");
    assert!(before.0 > 0);
    assert_eq!((s.events, s.pageviews, s.events_by_name), before);
}

/// A database from before the site registry (schema 2) keeps accepting the sites it has data
/// for: its registry starts with them and the built-in ones. A new file has only the built-in
/// ones. (`SqliteSites`, what `footfall sites` uses, reads the same registry.)
#[tokio::test]
async fn the_site_registry_starts_with_the_sites_that_have_data() {
    let fresh = tempfile::tempdir().expect("tempdir");
    let names = |sites: Vec<processor::store::RegisteredSite>| -> Vec<String> {
        sites.into_iter().map(|s| s.site).collect()
    };
    assert_eq!(
        names(open(fresh.path()).registered_sites().await.expect("list")),
        ["default", "demo"]
    );

    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        store
            .insert_batch(common::data::dataset(20, 3).into())
            .await
            .expect("insert");
    }
    let conn = rusqlite::Connection::open(dir.path().join("footfall.db")).expect("open file");
    conn.execute_batch("DROP TABLE known_sites; PRAGMA user_version = 2;")
        .expect("downgrade");
    drop(conn);
    let sites = processor::store::SqliteSites::open(dir.path()).expect("open registry");
    let listed: Vec<String> = sites
        .list()
        .expect("list")
        .into_iter()
        .map(|s| s.site)
        .collect();
    assert_eq!(listed, ["default", "demo", "example.com", "other.org"]);
    assert!(sites.add("new.example").expect("add"));
    assert!(!sites.add("new.example").expect("add"));
    assert!(sites.remove("new.example").expect("remove"));
}

/// A file from schema 4 holds JSON documents; from schema 5 on, new events are stored in the
/// compact form. After the upgrade both kinds of row are read back alike — as events, and
/// as the JSON documents of the export — and an older footfall refuses the file.
#[tokio::test]
async fn json_documents_of_a_schema_4_file_are_read_beside_compact_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old: Vec<Event> = (0..4)
        .map(|i| event(&format!("old-{i}"), "page_view", "v1", T0 + i))
        .collect();
    {
        let store = open(dir.path());
        store
            .insert_batch(old.clone().into())
            .await
            .expect("insert");
    }
    // Turn the file into what footfall wrote before schema 5: JSON text documents.
    let db = dir.path().join("footfall.db");
    processor::store::rewrite_as_schema_4(&db, &old).expect("rewrite as schema 4");
    assert_eq!(
        rusqlite_count(
            &db,
            "SELECT count(*) FROM events WHERE typeof(doc) = 'text'"
        ),
        4
    );

    let new: Vec<Event> = (0..3)
        .map(|i| event(&format!("new-{i}"), "click", "v2", T0 + 10 + i))
        .collect();
    let store = open(dir.path());
    store
        .insert_batch(new.clone().into())
        .await
        .expect("insert");
    assert_eq!(
        rusqlite_count(
            &db,
            "SELECT count(*) FROM events WHERE typeof(doc) = 'blob'"
        ),
        3,
        "new events are stored compact"
    );
    let all: Vec<Event> = old.iter().chain(&new).cloned().collect();

    let mut read = store
        .read_events("example.com".into(), T0, T0 + 100)
        .await
        .expect("read");
    read.sort_by_key(|e| e.ts);
    assert_eq!(read, all);

    let page = store
        .export_page("example.com".into(), T0, T0 + 100, None, 100)
        .await
        .expect("export");
    let exported: Vec<Event> = page
        .iter()
        .map(|(_, doc)| protocol::event::decode(doc.as_bytes()).expect("a JSON document"))
        .collect();
    assert_eq!(exported, all);
    drop(store);

    let conn = rusqlite::Connection::open(&db).expect("open file");
    assert_eq!(
        conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .expect("version"),
        5
    );
    conn.execute_batch("PRAGMA user_version = 6;")
        .expect("from the future");
    drop(conn);
    let refused = loop {
        match SqliteStore::open(SqliteConfig::new(dir.path())) {
            Err(StoreError::Locked { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            other => break other,
        }
    };
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("newer than this footfall")),
        "{:?}",
        refused.err()
    );
}

/// A stored event that no longer decodes is skipped by the export, and does not make its page
/// short: the export takes a short page for the last, and would end there.
#[tokio::test]
async fn an_unreadable_document_does_not_cut_the_export_short() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events: Vec<Event> = (0..6)
        .map(|i| event(&format!("e-{i}"), "page_view", "v1", T0 + i))
        .collect();
    let store = open(dir.path());
    store.insert_batch(events.into()).await.expect("insert");
    let db = dir.path().join("footfall.db");
    {
        let conn = rusqlite::Connection::open(&db).expect("open file");
        conn.execute("UPDATE events SET doc = X'F1' WHERE event_id = 'e-1'", [])
            .expect("damage");
    }
    let page = store
        .export_page("example.com".into(), T0, T0 + 100, None, 3)
        .await
        .expect("export");
    let ids: Vec<String> = page
        .iter()
        .map(|(_, doc)| {
            protocol::event::decode(doc.as_bytes())
                .expect("json")
                .event_id
        })
        .collect();
    assert_eq!(ids, ["e-0", "e-2", "e-3"]);
    let rest = store
        .export_page(
            "example.com".into(),
            T0,
            T0 + 100,
            page.last().map(|(c, _)| c.clone()),
            3,
        )
        .await
        .expect("export");
    assert_eq!(rest.len(), 2);
}
