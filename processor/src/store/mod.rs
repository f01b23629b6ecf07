//! Event stores: idempotent batch inserts plus a few primitive reads (rollup buckets, the events
//! of a short range, per-site activity). The dashboard's queries are not here: they are
//! written once over these primitives in [`crate::history`], so every store gives the same
//! answers. A new kind of query that needs something the primitives cannot give adds a
//! primitive here (implemented by every store, checked by `tests/store_contract.rs`) and the
//! query in `history`.
//!
//! **Invariant:** inserting an event whose `eventId` is already stored changes nothing, so
//! redelivery (tracker retries, Kafka redelivery after a crash) never double counts.

#[cfg(feature = "mongo")]
mod mongo;
mod sqlite;
mod sqlite_facts;

use std::sync::Arc;

use protocol::Event;

#[cfg(feature = "mongo")]
pub use mongo::{MongoConfig, MongoStore};
#[cfg(feature = "test-util")]
pub use sqlite::rewrite_as_schema_4;
pub use sqlite::{SqliteConfig, SqliteSites, SqliteStore};

use crate::rollup::{Res, Rollup, Run};
use crate::visit::{EventAgg, GroupKey, Grouping, Scope, VisitAgg};
use crate::BoxFuture;

/// A batch of events as stores take it: shared, so the store's writer, live metrics and a
/// retrying caller all read the same events without copying them.
pub type EventBatch = Arc<[Event]>;

/// Small per-site settings kept by the store (goals, share links).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Goal,
    Share,
}

impl RecordKind {
    pub fn code(self) -> &'static str {
        match self {
            RecordKind::Goal => "goal",
            RecordKind::Share => "share",
        }
    }
}

/// One setting: an id unique per kind, its site, and a JSON body the store does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: RecordKind,
    pub id: String,
    pub site: String,
    /// Epoch ms; lists are oldest first.
    pub created: i64,
    pub body: String,
}

/// Where a page of [`Store::export_page`] ended: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExportCursor {
    pub ts: i64,
    /// The store's tie-breaker among events of the same `ts` (opaque to callers).
    pub key: String,
}

/// One stored rollup bucket (see [`crate::rollup`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub res: Res,
    /// Bucket start, epoch milliseconds (UTC-aligned).
    pub start: i64,
    pub rollup: Rollup,
}

/// What a store knows about one site without reading its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteActivity {
    pub site: String,
    /// Events stored (each counted once, when it was new).
    pub events: u64,
    /// Newest `received_at`, epoch milliseconds.
    pub last_seen: i64,
}

/// A site of the registry: events are accepted only for registered sites (see
/// `crate::sites`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSite {
    pub site: String,
    /// Epoch milliseconds.
    pub added_at: i64,
}

/// What an insert did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InsertOutcome {
    /// Events stored for the first time.
    pub inserted: usize,
    /// Events whose id was already stored; ignored.
    pub duplicates: usize,
    /// Positions (in the inserted batch) of the events stored for the first time: only these
    /// may feed live metrics, so redelivery never double counts there either.
    pub fresh: Vec<usize>,
    /// The write that stored the fresh events, when the store keeps a live-pending marker
    /// for it (MongoDB): whoever publishes their live deltas tags them with it and then calls
    /// [`Store::live_published`]. `None` where one process is the whole deployment (SQLite).
    pub write: Option<String>,
    /// Earlier writes met as duplicates whose live deltas may never have been published (a
    /// processor killed between storing a batch and publishing it): publish them again,
    /// tagged with their write, so gateways count each write once.
    pub republish: Vec<LiveWrite>,
}

/// The events one earlier write stored, to be published to live metrics again (see
/// [`InsertOutcome::republish`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveWrite {
    pub write: String,
    pub events: Vec<Event>,
}

/// Why a store could not do what was asked. All variants mean "nothing was promised": an
/// insert that fails is retried by the caller (split, for [`StoreError::Refused`]), never
/// half-acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store's write queue is full")]
    Overloaded,
    #[error("the disk is full: {0}")]
    DiskFull(String),
    #[error("data folder {path} is in use by another footfall process")]
    Locked { path: String },
    #[error("cannot open the store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("the store is shutting down")]
    Closed,
    #[error("invalid MongoDB connection string: {0}")]
    InvalidUri(String),
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
    #[error("the query did not finish within {0:?}")]
    TimedOut(std::time::Duration),
    #[error("store error: {0}")]
    Backend(String),
    /// The store will never take this data, however often it is retried (e.g. a document
    /// over the database's size limit). The pipeline finds the events responsible and
    /// dead-letters them, so one bad event never stalls a partition.
    #[error("the store refuses this data: {0}")]
    Refused(String),
}

/// Where redeemed WebSocket tickets are remembered until they expire (`crate::live::tickets`):
/// shared by every processor of a deployment when the store is (MongoDB), so a ticket opens
/// one socket anywhere. A store capability beside [`Store`], not part of it: SQLite processes
/// are alone and keep the record in memory.
pub trait SpentTickets: Send + Sync + 'static {
    /// Marks `nonce` spent until `expires_ms` (epoch ms): `Ok(true)` for the first call with
    /// that nonce anywhere in the deployment, `Ok(false)` after. `Err` when that cannot be
    /// decided now.
    fn spend<'a>(&'a self, nonce: &'a str, expires_ms: i64) -> BoxFuture<'a, Result<bool, String>>;
}

/// Writes and primitive reads; see the module docs for where queries go.
pub trait Store: Send + Sync + 'static {
    /// Stores `events` durably, ignoring ids already stored. `Ok` means durable (fsynced /
    /// acknowledged by the database), and only then.
    fn insert_batch(&self, events: EventBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>>;

    /// The stored rollup buckets of `site` in `runs` (missing buckets are simply absent).
    /// `sketches: false` lets a store skip the visitor/session registers.
    fn read_rollups(
        &self,
        site: String,
        runs: Vec<Run>,
        sketches: bool,
    ) -> BoxFuture<'_, Result<Vec<Bucket>, StoreError>>;

    /// The events of `site` with `from <= ts < to`, through the `{site, ts}` index. Only used
    /// for the sub-minute edges of a range, so it is always a short read.
    fn read_events(
        &self,
        site: String,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<Event>, StoreError>>;

    /// The counts of `site`'s events with `from <= ts < to`: the sub-minute edges of a
    /// range, counted from the stored events. A burst can put hundreds of thousands of events
    /// in one minute, so a store folds them as it reads them rather than holding them all;
    /// this default (for stores whose edges stay small) reads them, then counts.
    fn edge_rollup(
        &self,
        site: String,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Rollup, StoreError>> {
        Box::pin(async move {
            let mut rollup = Rollup::default();
            for e in self.read_events(site, from, to).await? {
                rollup.add_event(&e);
            }
            Ok(rollup)
        })
    }

    /// Sites that have data, most recently active first (at most 1000).
    fn sites(&self) -> BoxFuture<'_, Result<Vec<SiteActivity>, StoreError>>;

    /// The site registry, sorted by name. A store that had data before the registry existed
    /// starts with every site it has data for (so an upgrade keeps accepting them).
    fn registered_sites(&self) -> BoxFuture<'_, Result<Vec<RegisteredSite>, StoreError>>;

    /// Registers a site (a name already checked by `protocol::validate::site`); `Ok(false)`
    /// when it was registered already (its `added_at` is kept).
    fn register_site(&self, site: RegisteredSite) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Removes a site from the registry (its data stays); `Ok(false)` when it was not there.
    fn unregister_site(&self, site: String) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Events in the scope (range and filters), aggregated by `grouping`, with the meaning
    /// [`crate::visit::event_stats_of`] defines. Groups without events are absent.
    fn event_stats(
        &self,
        scope: Scope,
        grouping: Grouping,
    ) -> BoxFuture<'_, Result<Vec<(GroupKey, EventAgg)>, StoreError>>;

    /// Visits that started in the scope, aggregated by `grouping` (`Total`, `Step`, or a
    /// visit-level field), as [`crate::visit::visit_stats_of`] defines.
    fn visit_stats(
        &self,
        scope: Scope,
        grouping: Grouping,
    ) -> BoxFuture<'_, Result<Vec<(GroupKey, VisitAgg)>, StoreError>>;

    /// Up to `limit` stored event documents (the JSON of [`protocol::event::encode`]) of
    /// `site` with `from <= ts < to`, ordered by time, starting after `after`: the
    /// pages of a streamed export, each read on its own so memory stays flat.
    fn export_page(
        &self,
        site: String,
        from: i64,
        to: i64,
        after: Option<ExportCursor>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(ExportCursor, String)>, StoreError>>;

    /// The records of a kind, of one site or of every site, oldest first.
    fn records(
        &self,
        kind: RecordKind,
        site: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<Record>, StoreError>>;

    /// One record by id.
    fn record(
        &self,
        kind: RecordKind,
        id: String,
    ) -> BoxFuture<'_, Result<Option<Record>, StoreError>>;

    /// Stores a record (its id must be new; an existing id is replaced).
    fn put_record(&self, record: Record) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Deletes a record of `site`; `false` when there was none.
    fn delete_record(
        &self,
        kind: RecordKind,
        site: String,
        id: String,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Whether inserts are expected to succeed right now.
    fn is_ready(&self) -> bool;

    /// The live deltas of `write` (see [`InsertOutcome::write`]) are published: forget its
    /// live-pending marker. Stores without markers have nothing to do. Losing this call
    /// costs one more publication of the write, which gateways discard by its id.
    fn live_published(&self, write: String) -> BoxFuture<'_, Result<(), StoreError>> {
        let _ = write;
        Box::pin(async { Ok(()) })
    }
}
