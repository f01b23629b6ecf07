//! [`LiveStore`]: a store that also reports the events it newly stored to live metrics.
//!
//! Wrapping the store (rather than calling live metrics from each writer) gives standalone and
//! the distributed pipeline one path: whatever inserts through a `LiveStore` feeds live
//! metrics with exactly the events that were new, so redelivery never double counts there.
//! Where the deltas go is a [`DeltaSink`]: the in-process hub (standalone) or the
//! `footfall.metrics` topic (processors).

use std::sync::Arc;

use protocol::Event;

use super::hub::LiveHub;
use crate::rollup::Run;
use crate::store::{
    Bucket, EventBatch, ExportCursor, InsertOutcome, Record, RecordKind, RegisteredSite,
    SiteActivity, Store, StoreError,
};
use crate::visit::{EventAgg, GroupKey, Grouping, Scope, VisitAgg};
use crate::BoxFuture;

/// Receives the events a store has just stored for the first time.
pub trait DeltaSink: Send + Sync + 'static {
    fn record(&self, fresh: &[&Event]);
}

impl DeltaSink for LiveHub {
    fn record(&self, fresh: &[&Event]) {
        LiveHub::record(self, fresh);
    }
}

/// See the module docs.
pub struct LiveStore {
    inner: Arc<dyn Store>,
    sink: Arc<dyn DeltaSink>,
}

impl LiveStore {
    pub fn new(inner: Arc<dyn Store>, sink: Arc<dyn DeltaSink>) -> Self {
        LiveStore { inner, sink }
    }
}

impl Store for LiveStore {
    fn insert_batch(&self, events: EventBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        Box::pin(async move {
            // The batch is shared, not copied: the store reads it, then live metrics do.
            let outcome = self.inner.insert_batch(events.clone()).await?;
            let fresh: Vec<&Event> = outcome
                .fresh
                .iter()
                .filter_map(|&i| events.get(i))
                .collect();
            if !fresh.is_empty() {
                self.sink.record(&fresh);
            }
            Ok(outcome)
        })
    }

    fn read_rollups(
        &self,
        site: String,
        runs: Vec<Run>,
        sketches: bool,
    ) -> BoxFuture<'_, Result<Vec<Bucket>, StoreError>> {
        self.inner.read_rollups(site, runs, sketches)
    }

    fn read_events(
        &self,
        site: String,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        self.inner.read_events(site, from, to)
    }

    fn sites(&self) -> BoxFuture<'_, Result<Vec<SiteActivity>, StoreError>> {
        self.inner.sites()
    }

    fn registered_sites(&self) -> BoxFuture<'_, Result<Vec<RegisteredSite>, StoreError>> {
        self.inner.registered_sites()
    }

    fn register_site(&self, site: RegisteredSite) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.register_site(site)
    }

    fn unregister_site(&self, site: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.unregister_site(site)
    }

    fn event_stats(
        &self,
        scope: Scope,
        grouping: Grouping,
    ) -> BoxFuture<'_, Result<Vec<(GroupKey, EventAgg)>, StoreError>> {
        self.inner.event_stats(scope, grouping)
    }

    fn visit_stats(
        &self,
        scope: Scope,
        grouping: Grouping,
    ) -> BoxFuture<'_, Result<Vec<(GroupKey, VisitAgg)>, StoreError>> {
        self.inner.visit_stats(scope, grouping)
    }

    fn export_page(
        &self,
        site: String,
        from: i64,
        to: i64,
        after: Option<ExportCursor>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(ExportCursor, String)>, StoreError>> {
        self.inner.export_page(site, from, to, after, limit)
    }

    fn records(
        &self,
        kind: RecordKind,
        site: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        self.inner.records(kind, site)
    }

    fn record(
        &self,
        kind: RecordKind,
        id: String,
    ) -> BoxFuture<'_, Result<Option<Record>, StoreError>> {
        self.inner.record(kind, id)
    }

    fn put_record(&self, record: Record) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.put_record(record)
    }

    fn delete_record(
        &self,
        kind: RecordKind,
        site: String,
        id: String,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.delete_record(kind, site, id)
    }

    fn is_ready(&self) -> bool {
        self.inner.is_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::test_event;
    use crate::store::SqliteConfig;
    use crate::SqliteStore;

    #[tokio::test]
    async fn only_fresh_events_reach_live_metrics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = SqliteStore::open(SqliteConfig::new(dir.path())).expect("store");
        let hub = LiveHub::default();
        let store = LiveStore::new(Arc::new(sqlite), Arc::new(hub.clone()));
        let now = super::super::hub::now_ms();
        let batch = vec![
            test_event("s", "page_view", "/a", "v1", now),
            test_event("s", "page_view", "/b", "v2", now + 1),
        ];
        store
            .insert_batch(batch.clone().into())
            .await
            .expect("insert");
        store.insert_batch(batch.into()).await.expect("redelivery");
        assert!(hub.publish_due());
        let view = hub.view("s");
        assert_eq!(
            view.metrics.today.pageviews, 2,
            "the redelivered batch counted once"
        );
        assert_eq!(view.feed.len(), 2);
    }
}
