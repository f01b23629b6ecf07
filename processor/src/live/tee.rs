//! [`LiveStore`]: a store that also reports the events it newly stored to live metrics.
//!
//! Wrapping the store (rather than calling live metrics from each writer) gives standalone and
//! the distributed pipeline one path: whatever inserts through a `LiveStore` feeds live
//! metrics with exactly the events that were new, so redelivery never double counts there.
//! Where the deltas go is a [`DeltaSink`]: the in-process hub (standalone) or the
//! `footfall.metrics` topic (processors).
//!
//! **At least once, applied once.** A store that keeps live-pending markers (MongoDB) names
//! the write of the fresh events ([`InsertOutcome::write`]); their deltas are published
//! tagged with it and *awaited* before `insert_batch` returns — so before the pipeline
//! commits the batch's offsets — and only then is the marker deleted. A processor killed in
//! between leaves the marker; the redelivered batch meets the events as duplicates, and the
//! store returns the write to publish again ([`InsertOutcome::republish`]). Gateways apply a
//! write once ([`LiveHub::apply`]), so the live view ends where one process would have it.
//! A publication that fails (metrics topic down) is logged and the batch still succeeds:
//! live metrics are a view, and storing must not wait for them; the marker then stays until
//! its TTL, and a later redelivery of any of its events publishes the write after all.

use std::sync::Arc;

use protocol::Event;

use super::hub::LiveHub;
use crate::rollup::{Rollup, Run};
use crate::store::{
    Bucket, EventBatch, ExportCursor, InsertOutcome, Record, RecordKind, RegisteredSite,
    SiteActivity, Store, StoreError,
};
use crate::visit::{EventAgg, GroupKey, Grouping, Scope, VisitAgg};
use crate::BoxFuture;

/// Receives the events a store has just stored for the first time, or a write to publish
/// again.
pub trait DeltaSink: Send + Sync + 'static {
    /// Publishes the deltas of `fresh`, tagged with `write` when the store named one. `Ok`
    /// once they are where they go (the hub: at once; the topic: acknowledged by the broker).
    fn publish<'a>(
        &'a self,
        write: Option<&'a str>,
        fresh: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), String>>;
}

impl DeltaSink for LiveHub {
    fn publish<'a>(
        &'a self,
        write: Option<&'a str>,
        fresh: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), String>> {
        match write {
            // One process (standalone): nothing is ever published twice, so events are
            // batched into the hub's next round.
            None => LiveHub::record(self, fresh),
            Some(write) => self.apply(&super::delta::deltas_of_write(
                Some(write),
                fresh.iter().copied(),
            )),
        }
        Box::pin(async { Ok(()) })
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

    /// Publishes one write's events and, once that is done, forgets its marker (see the
    /// module docs for why a failure here does not fail the insert).
    async fn publish(&self, write: Option<&str>, events: &[&Event]) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.sink.publish(write, events).await {
            tracing::warn!(error = %e, ?write, "live metrics not published; kept for a redelivery");
            return;
        }
        if let Some(write) = write {
            if let Err(e) = self.inner.live_published(write.to_string()).await {
                // The write is published again on a redelivery; gateways ignore the repeat.
                tracing::debug!(error = %e, write, "live-pending marker not deleted");
            }
        }
    }
}

impl Store for LiveStore {
    fn insert_batch(&self, events: EventBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        Box::pin(async move {
            // The batch is shared, not copied: the store reads it, then live metrics do.
            let outcome = self.inner.insert_batch(events.clone()).await?;
            for again in &outcome.republish {
                tracing::info!(
                    write = %again.write,
                    events = again.events.len(),
                    "live deltas of a stored write published again (its processor stopped first)"
                );
                let events: Vec<&Event> = again.events.iter().collect();
                self.publish(Some(&again.write), &events).await;
            }
            let fresh: Vec<&Event> = outcome
                .fresh
                .iter()
                .filter_map(|&i| events.get(i))
                .collect();
            self.publish(outcome.write.as_deref(), &fresh).await;
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

    fn edge_rollup(
        &self,
        site: String,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Rollup, StoreError>> {
        self.inner.edge_rollup(site, from, to)
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

    fn live_published(&self, write: String) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.live_published(write)
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
