//! The pipeline's contract, with an in-memory source and store so each failure can be
//! staged exactly: commit only after the store has the batch, dead-letter and move on, pause
//! (not crash, not commit) while the store is down, and commit what was stored on shutdown.
//! The same pipeline runs against the real Kafka source in `footfall/tests/distributed.rs`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::source::ScriptedSource;
use processor::pipeline::{self, PipelineConfig, PipelineMetrics};
use processor::rollup::Run;
use processor::source::{Checkpoint, Position, Rejected, SourceBatch};
use processor::store::{Bucket, ExportCursor, Record, RecordKind, RegisteredSite, SiteActivity};
use processor::visit::{EventAgg, GroupKey, Grouping, Scope, VisitAgg};
use processor::{BoxFuture, EventBatch, InsertOutcome, Store, StoreError};
use protocol::Event;

fn event(id: &str) -> Event {
    common::data::event(id.to_string(), "example.com", "page_view", 1)
}

/// Fails the first `failures` inserts (a store outage), then stores — except batches holding
/// an id of `poison`, which it refuses for good (or, with `poison_as_backend`, fails with an
/// ordinary error every time).
#[derive(Default)]
struct FlakyStore {
    failures: AtomicUsize,
    poison: Vec<&'static str>,
    poison_as_backend: bool,
    attempts: AtomicUsize,
    stored: Mutex<Vec<String>>,
}

impl Store for FlakyStore {
    fn insert_batch(&self, events: EventBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        Box::pin(async move {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                .is_ok()
            {
                return Err(StoreError::Backend("database down".into()));
            }
            if let Some(bad) = events
                .iter()
                .find(|e| self.poison.contains(&e.event_id.as_str()))
            {
                let why = format!("{} is too large", bad.event_id);
                return Err(if self.poison_as_backend {
                    StoreError::Backend(why)
                } else {
                    StoreError::Refused(why)
                });
            }
            let mut stored = self.stored.lock().expect("lock");
            let n = events.len();
            stored.extend(events.iter().map(|e| e.event_id.clone()));
            Ok(InsertOutcome {
                inserted: n,
                duplicates: 0,
                fresh: (0..n).collect(),
                ..InsertOutcome::default()
            })
        })
    }

    fn read_rollups(
        &self,
        _site: String,
        _runs: Vec<Run>,
        _sketches: bool,
    ) -> BoxFuture<'_, Result<Vec<Bucket>, StoreError>> {
        Box::pin(async { Err(StoreError::Backend("not used".into())) })
    }

    fn read_events(
        &self,
        _site: String,
        _from: i64,
        _to: i64,
    ) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        Box::pin(async { Err(StoreError::Backend("not used".into())) })
    }

    fn sites(&self) -> BoxFuture<'_, Result<Vec<SiteActivity>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn registered_sites(&self) -> BoxFuture<'_, Result<Vec<RegisteredSite>, StoreError>> {
        Box::pin(async { Err(StoreError::Backend("not used".into())) })
    }

    fn register_site(&self, _site: RegisteredSite) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async { Err(StoreError::Backend("not used".into())) })
    }

    fn unregister_site(&self, _site: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async { Err(StoreError::Backend("not used".into())) })
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn event_stats(
        &self,
        _scope: Scope,
        _grouping: Grouping,
    ) -> BoxFuture<'_, Result<Vec<(GroupKey, EventAgg)>, StoreError>> {
        Box::pin(async { Err(StoreError::Backend("not used".into())) })
    }

    fn visit_stats(
        &self,
        _scope: Scope,
        _grouping: Grouping,
    ) -> BoxFuture<'_, Result<Vec<(GroupKey, VisitAgg)>, StoreError>> {
        Box::pin(async { Err(StoreError::Backend("not used".into())) })
    }

    fn export_page(
        &self,
        _site: String,
        _from: i64,
        _to: i64,
        _after: Option<ExportCursor>,
        _limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(ExportCursor, String)>, StoreError>> {
        Box::pin(async { Err(StoreError::Backend("not used".into())) })
    }

    fn records(
        &self,
        _kind: RecordKind,
        _site: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn record(
        &self,
        _kind: RecordKind,
        _id: String,
    ) -> BoxFuture<'_, Result<Option<Record>, StoreError>> {
        Box::pin(async { Ok(None) })
    }

    fn put_record(&self, _record: Record) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Err(StoreError::Backend("not used".into())) })
    }

    fn delete_record(
        &self,
        _kind: RecordKind,
        _site: String,
        _id: String,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async { Ok(false) })
    }
}

fn batch(ids: &[&str], partition: i32, last_offset: i64) -> SourceBatch {
    let mut checkpoint = Checkpoint::default();
    checkpoint.advance("footfall.events", partition, last_offset);
    SourceBatch {
        events: ids.iter().map(|id| event(id)).collect(),
        checkpoint,
        ..SourceBatch::default()
    }
}

fn config() -> PipelineConfig {
    PipelineConfig {
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..PipelineConfig::default()
    }
}

async fn run_until(
    source: &ScriptedSource,
    store: Arc<FlakyStore>,
    metrics: &PipelineMetrics,
    commits: usize,
) {
    let stop = async {
        while source.commits.lock().expect("lock").len() < commits {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(
        Duration::from_secs(10),
        pipeline::run(source, store, &config(), metrics, stop),
    )
    .await
    .expect("pipeline finished in time");
}

#[tokio::test]
async fn a_store_outage_pauses_without_committing_then_resumes() {
    let source = ScriptedSource::default();
    source.batches.lock().expect("lock").extend([
        batch(&["event-0001", "event-0002"], 0, 1),
        batch(&["event-0003"], 1, 0),
    ]);
    let store = Arc::new(FlakyStore {
        failures: AtomicUsize::new(3),
        ..FlakyStore::default()
    });
    let metrics = PipelineMetrics::new();
    run_until(&source, store.clone(), &metrics, 2).await;

    assert_eq!(
        *store.stored.lock().expect("lock"),
        vec!["event-0001", "event-0002", "event-0003"]
    );
    let commits = source.commits.lock().expect("lock").clone();
    assert_eq!(
        commits.len(),
        2,
        "one commit per stored batch, none during the outage"
    );
    assert_eq!(
        commits[0].0,
        vec![Position {
            topic: "footfall.events".into(),
            partition: 0,
            offset: 1
        }]
    );
    assert_eq!(metrics.stored(), 3);
}

#[tokio::test]
async fn shutdown_during_an_outage_commits_nothing() {
    let source = ScriptedSource::default();
    source
        .batches
        .lock()
        .expect("lock")
        .push_back(batch(&["event-0001"], 0, 7));
    let store = Arc::new(FlakyStore {
        failures: AtomicUsize::new(usize::MAX),
        ..FlakyStore::default()
    });
    let metrics = PipelineMetrics::new();
    let stop = tokio::time::sleep(Duration::from_millis(200));
    pipeline::run(&source, store.clone(), &config(), &metrics, stop).await;
    assert!(source.commits.lock().expect("lock").is_empty());
    assert!(store.stored.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn rejected_messages_are_dead_lettered_and_the_batch_still_commits() {
    let source = ScriptedSource::default();
    let mut b = batch(&["event-0002"], 0, 1);
    b.rejected.push(Rejected {
        reason: "not an event document".into(),
        key: None,
        payload: Some(b"garbage".to_vec()),
        origin: Position {
            topic: "footfall.events".into(),
            partition: 0,
            offset: 0,
        },
    });
    source.batches.lock().expect("lock").push_back(b);
    let store = Arc::new(FlakyStore::default());
    let metrics = PipelineMetrics::new();
    run_until(&source, store.clone(), &metrics, 1).await;
    assert_eq!(source.dead.lock().expect("lock").len(), 1);
    assert_eq!(metrics.dead_lettered(), 1);
    assert_eq!(*store.stored.lock().expect("lock"), vec!["event-0002"]);
    assert_eq!(source.commits.lock().expect("lock")[0].0[0].offset, 1);
}

fn batch_with_origins(ids: &[&str], partition: i32, first_offset: i64) -> SourceBatch {
    let mut b = batch(ids, partition, first_offset + ids.len() as i64 - 1);
    b.origins = (0..ids.len())
        .map(|i| Position {
            topic: "footfall.events".into(),
            partition,
            offset: first_offset + i as i64,
        })
        .collect();
    b
}

#[tokio::test]
async fn events_the_store_refuses_are_found_and_dead_lettered_the_rest_stored() {
    let source = ScriptedSource::default();
    let ids = [
        "event-0001",
        "poison-001",
        "event-0003",
        "event-0004",
        "event-0005",
        "poison-006",
        "event-0007",
    ];
    source.push(batch_with_origins(&ids, 2, 40));
    source.push(batch(&["event-0008"], 2, 47));
    let store = Arc::new(FlakyStore {
        poison: vec!["poison-001", "poison-006"],
        ..FlakyStore::default()
    });
    let metrics = PipelineMetrics::new();
    run_until(&source, store.clone(), &metrics, 2).await;

    let dead = source.dead_letters();
    let offsets: Vec<i64> = dead.iter().map(|r| r.origin.offset).collect();
    assert_eq!(offsets, vec![41, 45]);
    assert!(
        dead[0].reason.contains("poison-001 is too large"),
        "{}",
        dead[0].reason
    );
    let payload = dead[1].payload.as_deref().expect("payload");
    assert_eq!(
        protocol::event::decode(payload).expect("event").event_id,
        "poison-006"
    );
    let mut stored = store.stored.lock().expect("lock").clone();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            "event-0001",
            "event-0003",
            "event-0004",
            "event-0005",
            "event-0007",
            "event-0008"
        ]
    );
    assert_eq!(metrics.dead_lettered(), 2);
    // Each batch committed once, whole: its checkpoint covers the dead letters too.
    let commits = source.commits.lock().expect("lock").clone();
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0].0[0].offset, 46);
}

#[tokio::test]
async fn an_event_that_keeps_failing_while_the_store_takes_others_is_dead_lettered() {
    let source = ScriptedSource::default();
    source.push(batch_with_origins(
        &["event-0001", "event-0002", "broken-003", "event-0004"],
        0,
        0,
    ));
    let store = Arc::new(FlakyStore {
        poison: vec!["broken-003"],
        poison_as_backend: true,
        ..FlakyStore::default()
    });
    let metrics = PipelineMetrics::new();
    run_until(&source, store.clone(), &metrics, 1).await;
    let dead = source.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].origin.offset, 2);
    assert_eq!(store.stored.lock().expect("lock").len(), 3);
}

/// When the store takes nothing at all it is down, not picky: nothing is dead-lettered and
/// nothing committed, however long it lasts.
#[tokio::test]
async fn a_store_that_takes_nothing_dead_letters_nothing() {
    let source = ScriptedSource::default();
    source.push(batch_with_origins(
        &["event-0001", "event-0002", "event-0003"],
        0,
        0,
    ));
    let store = Arc::new(FlakyStore {
        failures: AtomicUsize::new(usize::MAX),
        ..FlakyStore::default()
    });
    let metrics = PipelineMetrics::new();
    let stop = tokio::time::sleep(Duration::from_millis(500));
    pipeline::run(&source, store.clone(), &config(), &metrics, stop).await;
    assert!(store.attempts.load(Ordering::SeqCst) > 5);
    assert!(source.dead_letters().is_empty());
    assert_eq!(source.commit_count(), 0);
}
