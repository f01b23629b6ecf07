//! The distributed store: MongoDB through the official `mongodb` driver (async).
//!
//! Collections, created with their indexes on start-up in the URI's database (`footfall` when
//! the URI names none):
//! - `events`: one document per event (`ts`/`receivedAt` as BSON dates), unique index on
//!   `{site, eventId}` (the shard key of docs/scaling.md; a redelivery carries the same site),
//!   index `{site, ts, eventId}` for the edges of history queries, and a TTL index on `ts`
//!   when a retention is configured;
//! - `rollup_deltas`: the rollup increments of each insert attempt, one small document per
//!   site and minute (see [`crate::rollup`]; hours and days are merges of minutes) — what the
//!   write path writes;
//! - `rollups`: the compacted buckets, one document per site and minute / hour / UTC day
//!   (`site|res|t`), plus an overflow document per counter that does not fit a full bucket
//!   document (see `compact`); every rollup document has counters under `c` and the visitor
//!   and session sketches as bytes under `v` and `s`;
//! - `sites`: event count and last activity per site, kept by the compactor from the day
//!   deltas (a read adds the deltas not folded yet);
//! - `batches`: tickets of insert attempts whose rollups are not applied yet (only without
//!   transactions);
//! - `leases`: which processor runs the compactor;
//! - `visits`: partial visits (see [`crate::visit`]): one document per site and write with a
//!   partial per session, inserted in the batch's transaction and merged per session when
//!   read (`$min`/`$max`/sum semantics, so the order of partials never matters), indexed
//!   `{site, p.start}` and `{site, p.s}` (the session), and `{site, start}` for visits
//!   written before partials;
//! - `records`: goals and share links;
//! - `spent_tickets`: WebSocket tickets already used, until they expire (`live::tickets`);
//! - `live_pending`: one marker per transaction whose live deltas are not known to be
//!   published yet (see `transact` and [`Store::live_published`]), TTL one day.
//!
//! A history query reads a range's bucket documents *and* its deltas, in one snapshot (a
//! read-only transaction), and merges them: the compactor moves increments from deltas into
//! buckets atomically, so a reader sees each increment exactly once, before or after.
//!
//! ## Exactly-once rollups
//! On a server with transactions (a replica set, even of one node) one batch is one
//! transaction (`transact`): `insert_many` of the events, `insert_many` of the rollup deltas
//! of those events (they carry the site counters' increments too), one `update` command with
//! the visit merges, commit. Nothing of it is visible unless all of it is, so a kill -9 at
//! any point leaves the whole batch or none of it, and a redelivery meets either duplicates
//! (which count nowhere) or nothing. A duplicate-key error aborts a transaction, so a batch
//! that meets one looks up which of its events are stored already and runs again with the
//! others; a write conflict (a visit another processor merges at the same moment) is run
//! again after a short random pause. One durable commit per batch, as a raw `insert_many`.
//!
//! Without transactions (a standalone `mongod`) an attempt takes *tickets* (`tickets`): (1)
//! insert a ticket naming the attempt's document ids; (2) `insert_many` unordered, each event
//! tagged with the ticket — duplicate-key errors (11000) are duplicates, never failures; (3)
//! delete the ticket and write the deltas of the events that were new. The ticket's delete is
//! the claim: whoever deletes it writes those deltas. If anything fails after (1), the
//! caller retries: the retry's duplicates point at the old ticket, which it finishes first;
//! tickets nobody comes back for are finished by the monitor's sweep (after an outage, and
//! every `sweep_interval_ms`). A ticket is only finished by someone else once its attempt is
//! over — it failed in this process, or it is older than `pending_grace_ms`, longer than an
//! attempt may run (`attempt_timeout_ms`) — so nobody claims a ticket whose events are still
//! being written. The ids of deltas and partial visits derive from the ticket, so a second
//! try only meets duplicates; but a compaction round is not idempotent, so a crash in the
//! middle of one counts that round twice; the store says so in the log. Run MongoDB as a
//! replica set (one node is enough).
//! Writes use `w: majority, j: true` unless the URI says otherwise: `Ok` means durable.
//!
//! A batch the server refuses for good (a document over 16 MiB, a field name it does not
//! take) is [`StoreError::Refused`], so the pipeline can split it and dead-letter the events
//! responsible instead of retrying forever.
//!
//! No MongoDB type leaves this module.
//!
//! ## Layout
//! - this file: [`MongoStore`], its settings, the [`Store`] implementation and the monitor and
//!   compactor tasks;
//! - `transact`: one insert attempt as one transaction (the write path);
//! - `tickets`: one insert attempt with a ticket, for servers without transactions, and the
//!   recovery of tickets left behind;
//! - `compact`: folding deltas into bounded bucket documents, and the compactor lease;
//! - `bulk`: many upserts in one `update` command;
//! - `schema`: collection and field names, indexes and TTLs;
//! - `codec`: events, rollup buckets and site counters as BSON documents;
//! - `errors`: driver errors in the store's terms.

mod bulk;
mod codec;
mod compact;
mod errors;
mod schema;
mod tickets;
mod transact;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use mongodb::error::Error as MongoError;
use mongodb::options::{
    Acknowledgment, ClientOptions, CollectionOptions, ReadConcern, WriteConcern,
};
use mongodb::{Client, ClientSession, Collection, Database};
use protocol::Event;

use super::{
    Bucket, EventBatch, ExportCursor, InsertOutcome, Record, RecordKind, RegisteredSite,
    SiteActivity, Store, StoreError,
};
use crate::rollup::{Res, Rollup, Run};
use crate::visit::{
    event_stats_of, visit_stats_of, EventAgg, GroupKey, Grouping, Scope, Visit, VisitAgg,
};
use crate::BoxFuture;
use codec::{
    as_u64, delta_activity, doc_to_bucket, doc_to_event, doc_to_visit, event_to_doc, int_of,
    merge_visit_docs, partials_of,
};
use errors::{is_connection_error, store_error, AttemptError};
use schema::{
    ensure_indexes, ensure_known_sites, BATCHES, DELTAS, EVENTS, KNOWN_SITES, LEASES, LIVE_PENDING,
    RECORDS, ROLLUPS, SITES, SPENT_TICKETS, VISITS,
};

/// Server-side limit of one read (`maxTimeMS`): a query the stats API has given up on
/// (`api::QUERY_DEADLINE`) must not keep working on the database either.
const READ_DEADLINE: Duration = Duration::from_secs(10);
/// Races with another compactor [`MongoStore::compact_now`] may lose before it gives up.
const COMPACT_NOW_CONFLICTS: u32 = 20;

pub use schema::DEFAULT_DATABASE;

/// Settings of the MongoDB store. Units are in the field names.
#[derive(Debug, Clone)]
pub struct MongoConfig {
    /// Delete events (TTL index on `ts`) and rollups older than this; `None` keeps them.
    pub retention_days: Option<u32>,
    /// How long one operation waits for a reachable server (the driver's server selection
    /// timeout). Short, so a store outage turns into an error the caller can retry, not a hang.
    pub server_timeout_ms: u64,
    /// Attempts of one insert when the connection fails, with doubling backoff in between,
    /// before [`StoreError::Unavailable`] is returned.
    pub insert_attempts: u32,
    pub retry_backoff_ms: u64,
    /// How often readiness is re-checked with a `ping`.
    pub health_interval_ms: u64,
    /// How often the monitor looks for events whose rollups an interrupted write left
    /// unapplied (it also looks right after an outage ends).
    pub sweep_interval_ms: u64,
    /// Longest one insert attempt may take; it is abandoned (and retried) after that.
    pub attempt_timeout_ms: u64,
    /// The sweep (and other writers) leave tickets younger than this to the writer that made
    /// them. Must exceed `attempt_timeout_ms` comfortably.
    pub pending_grace_ms: u64,
    /// How often the compactor folds rollup deltas into bucket documents (see `compact`).
    /// Queries merge what is not folded yet, so this bounds their work, not their freshness.
    pub compact_interval_ms: u64,
    /// How long the compactor lease lasts unless renewed: after a crash, another processor
    /// takes over compacting within this.
    pub compact_lease_ms: u64,
    /// Most counter bytes one bucket document keeps; values new to a full bucket get
    /// overflow documents of their own (see `compact`). Far below MongoDB's 16 MiB.
    pub bucket_max_counter_bytes: usize,
}

impl Default for MongoConfig {
    fn default() -> Self {
        MongoConfig {
            retention_days: None,
            server_timeout_ms: 5_000,
            insert_attempts: 3,
            retry_backoff_ms: 200,
            health_interval_ms: 2_000,
            sweep_interval_ms: 60_000,
            attempt_timeout_ms: 10_000,
            pending_grace_ms: 60_000,
            compact_interval_ms: 1_000,
            compact_lease_ms: 10_000,
            bucket_max_counter_bytes: compact::BUCKET_MAX_COUNTER_BYTES,
        }
    }
}

/// See the module docs.
pub struct MongoStore {
    inner: Arc<Inner>,
    /// Readiness checks and the pending-rollup sweep; stopped when the store drops.
    monitor: tokio::task::JoinHandle<()>,
    /// Folds rollup deltas while this store holds the lease; stopped when the store drops.
    compactor: tokio::task::JoinHandle<()>,
}

/// What the store and its tasks share.
struct Inner {
    client: Client,
    db: Database,
    events: Collection<Document>,
    rollups: Collection<Document>,
    deltas: Collection<Document>,
    sites: Collection<Document>,
    visits: Collection<Document>,
    records: Collection<Document>,
    batches: Collection<Document>,
    leases: Collection<Document>,
    live_pending: Collection<Document>,
    /// `live_pending` with `w: 1` and no journal, for deleting published markers: a delete
    /// that is lost costs one extra publication, which gateways discard.
    live_pending_relaxed: Collection<Document>,
    /// The write concern as a command field, for commands sent with `run_command` outside a
    /// transaction (they get no default).
    write_concern: Document,
    /// This store's name in the compactor lease.
    instance: String,
    known_sites: Collection<Document>,
    healthy: AtomicBool,
    /// Cleared once the server refuses transactions (standalone `mongod`).
    transactions: AtomicBool,
    /// Tickets of attempts that failed in this process: over for sure, so they may be
    /// finished before the grace period.
    abandoned: Mutex<HashSet<ObjectId>>,
    config: MongoConfig,
    database: String,
}

impl Drop for MongoStore {
    fn drop(&mut self) {
        self.monitor.abort();
        self.compactor.abort();
    }
}

impl MongoStore {
    /// Connects, checks the server answers, and creates collections and indexes.
    ///
    /// # Errors
    /// [`StoreError::InvalidUri`] for a connection string that cannot be parsed,
    /// [`StoreError::Unavailable`] when no server answers within `server_timeout_ms`,
    /// [`StoreError::Backend`] when the server refuses to create an index.
    pub async fn connect(uri: &str, config: MongoConfig) -> Result<Self, StoreError> {
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|e| StoreError::InvalidUri(e.to_string()))?;
        let timeout = Duration::from_millis(config.server_timeout_ms.max(1));
        options.app_name.get_or_insert_with(|| "footfall".into());
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout.get_or_insert(timeout);
        // `Ok` from an insert must mean durable: journaled on a majority, unless the URI
        // says otherwise.
        let write_concern = options
            .write_concern
            .get_or_insert_with(|| {
                WriteConcern::builder()
                    .w(Acknowledgment::Majority)
                    .journal(true)
                    .build()
            })
            .clone();
        let write_concern = mongodb::bson::to_document(&write_concern)
            .map_err(|e| StoreError::InvalidUri(format!("write concern: {e}")))?;
        // Hosts only: the URI may carry credentials, which never go into an error message.
        let hosts = options
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let database = options
            .default_database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.into());
        let client =
            Client::with_options(options).map_err(|e| StoreError::InvalidUri(e.to_string()))?;
        let db = client.database(&database);
        db.run_command(doc! { "ping": 1 }).await.map_err(|e| {
            StoreError::Unavailable(format!("no MongoDB server answers at {hosts}: {e}"))
        })?;
        ensure_indexes(&db, config.retention_days)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot create indexes: {e}")))?;
        ensure_known_sites(&db)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot create the site registry: {e}")))?;

        let mut instance = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut instance);
        let inner = Arc::new(Inner {
            events: db.collection(EVENTS),
            rollups: db.collection(ROLLUPS),
            deltas: db.collection(DELTAS),
            sites: db.collection(SITES),
            visits: db.collection(VISITS),
            records: db.collection(RECORDS),
            batches: db.collection(BATCHES),
            leases: db.collection(LEASES),
            live_pending: db.collection(LIVE_PENDING),
            live_pending_relaxed: db.collection_with_options(
                LIVE_PENDING,
                CollectionOptions::builder()
                    .write_concern(
                        WriteConcern::builder()
                            .w(Acknowledgment::Nodes(1))
                            .journal(false)
                            .build(),
                    )
                    .build(),
            ),
            write_concern,
            instance: hex::encode(instance),
            db: db.clone(),
            known_sites: db.collection(KNOWN_SITES),
            client,
            healthy: AtomicBool::new(true),
            transactions: AtomicBool::new(true),
            abandoned: Mutex::new(HashSet::new()),
            config,
            database: database.clone(),
        });
        // Events a previous process stored without finishing their rollups.
        if let Err(e) = inner.recover_pending().await {
            tracing::warn!(error = ?e, "pending rollups not recovered yet; will retry");
        }
        let monitor = tokio::spawn(monitor(db, inner.clone()));
        let compactor = tokio::spawn(compactor(inner.clone()));
        tracing::info!(%hosts, %database, "MongoDB store ready");
        Ok(MongoStore {
            inner,
            monitor,
            compactor,
        })
    }

    /// The database in use.
    pub fn database(&self) -> &str {
        &self.inner.database
    }

    /// Whether rollups are applied in transactions (exactly once even across a crash); false
    /// once the server has refused one (standalone `mongod`).
    pub fn uses_transactions(&self) -> bool {
        self.inner.transactions.load(Ordering::Relaxed)
    }

    /// Rolls up events whose rollups were never applied (see the module docs); the monitor
    /// does this on its own, this is for operators and tests. Returns how many were found.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn recover_pending(&self) -> Result<usize, StoreError> {
        self.inner
            .recover_pending()
            .await
            .map_err(|e| store_error(&e))
    }

    /// Folds every pending rollup delta into its bucket now (the compactor does this on its
    /// own; this is for operators, benchmarks and tests). Returns how many it folded.
    ///
    /// A round that loses a race with another compactor (a write conflict) is tried again:
    /// whoever won folded those deltas, and the next round only sees what is left.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached, or when rounds lost a
    /// race 20 times.
    pub async fn compact_now(&self) -> Result<usize, StoreError> {
        self.inner
            .compact_all(COMPACT_NOW_CONFLICTS)
            .await
            .map_err(|e| store_error(&e))
    }
}

/// Every processor on this database shares the record of spent WebSocket tickets: a ticket's
/// nonce is inserted with a unique `_id` (a second insert is a duplicate-key error) and
/// expires with the ticket through a TTL index (see `live::tickets`).
impl super::SpentTickets for MongoStore {
    fn spend<'a>(&'a self, nonce: &'a str, expires_ms: i64) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let spent = self.inner.db.collection::<Document>(SPENT_TICKETS);
            match spent
                .insert_one(doc! { "_id": nonce, "expires": DateTime::from_millis(expires_ms) })
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if errors::code_of(&e) == Some(errors::DUPLICATE_KEY) => Ok(false),
                Err(e) => Err(store_error(&e).to_string()),
            }
        })
    }
}

/// Compacts while this store holds the lease (see `compact`).
async fn compactor(inner: Arc<Inner>) {
    let every = Duration::from_millis(inner.config.compact_interval_ms.max(10));
    loop {
        tokio::time::sleep(every).await;
        if !inner.healthy.load(Ordering::Relaxed) {
            continue;
        }
        match inner.hold_lease().await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::debug!(error = ?e, "compactor lease unavailable");
                continue;
            }
        }
        // A lost race is retried at the next tick.
        match inner.compact_all(0).await {
            Ok(_) => {}
            Err(e) if compact::is_conflict(&e) => {
                tracing::debug!(error = ?e, "compaction lost a race; next round retries");
            }
            Err(e) => tracing::warn!(error = ?e, "compaction failed; next round retries"),
        }
    }
}

impl MongoStore {
    /// Rollup deltas not folded yet (tests and benchmarks watch the compactor with it).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn pending_deltas(&self) -> Result<u64, StoreError> {
        self.inner
            .deltas
            .estimated_document_count()
            .await
            .map_err(|e| store_error(&e))
    }
}

async fn monitor(db: Database, inner: Arc<Inner>) {
    let every = Duration::from_millis(inner.config.health_interval_ms.max(100));
    let sweep_every = Duration::from_millis(inner.config.sweep_interval_ms.max(100));
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let ok = db.run_command(doc! { "ping": 1 }).await.is_ok();
        let was = inner.healthy.swap(ok, Ordering::Relaxed);
        if was != ok {
            if ok {
                tracing::info!("MongoDB reachable again");
            } else {
                tracing::warn!("MongoDB unreachable");
            }
        }
        // After an outage, and now and then: finish rollups an interrupted write left behind.
        if ok && (!was || last_sweep.elapsed() >= sweep_every) {
            last_sweep = tokio::time::Instant::now();
            match inner.recover_pending().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "rolled up events left pending"),
                Err(e) => tracing::debug!(error = ?e, "pending-rollup sweep failed; will retry"),
            }
        }
    }
}

impl Store for MongoStore {
    fn insert_batch(&self, events: EventBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(InsertOutcome::default());
            }
            let mut docs = events
                .iter()
                .map(event_to_doc)
                .collect::<Result<Vec<_>, _>>()?;
            let mut backoff = Duration::from_millis(self.inner.config.retry_backoff_ms);
            let attempts = self.inner.config.insert_attempts.max(1);
            let mut attempt = 1;
            let limit = Duration::from_millis(self.inner.config.attempt_timeout_ms.max(1));
            loop {
                let batch = ObjectId::new();
                let result =
                    match tokio::time::timeout(limit, self.inner.insert(batch, &events, &mut docs))
                        .await
                    {
                        Ok(result) => result,
                        Err(_) => Err(AttemptError::TimedOut),
                    };
                if result.is_err() {
                    self.inner
                        .abandoned
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(batch);
                }
                match result {
                    Ok(outcome) => {
                        self.inner.healthy.store(true, Ordering::Relaxed);
                        return Ok(outcome);
                    }
                    Err(e) if e.is_transient() && attempt < attempts => {
                        tracing::warn!(error = ?e, attempt, "MongoDB insert failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        attempt += 1;
                    }
                    Err(e) => {
                        if matches!(&e, AttemptError::Mongo(m) if is_connection_error(m)) {
                            self.inner.healthy.store(false, Ordering::Relaxed);
                        }
                        return Err(e.into_store_error());
                    }
                }
            }
        })
    }

    fn read_rollups(
        &self,
        site: String,
        runs: Vec<Run>,
        sketches: bool,
    ) -> BoxFuture<'_, Result<Vec<Bucket>, StoreError>> {
        Box::pin(async move {
            self.inner
                .read_rollups(&site, &runs, sketches)
                .await
                .map_err(|e| store_error(&e))
        })
    }

    fn read_events(
        &self,
        site: String,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        Box::pin(self.inner.events_in(site, from, to))
    }

    /// One event in memory at a time: a minute can hold a burst of them.
    fn edge_rollup(
        &self,
        site: String,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Rollup, StoreError>> {
        Box::pin(async move {
            let mut rollup = Rollup::default();
            self.inner
                .each_event_in(site, from, to, |e| rollup.add_event(&e))
                .await?;
            Ok(rollup)
        })
    }

    fn sites(&self) -> BoxFuture<'_, Result<Vec<SiteActivity>, StoreError>> {
        Box::pin(async move { self.inner.sites().await.map_err(|e| store_error(&e)) })
    }

    fn registered_sites(&self) -> BoxFuture<'_, Result<Vec<RegisteredSite>, StoreError>> {
        Box::pin(async move {
            let mut cursor = self
                .inner
                .known_sites
                .find(doc! {})
                .sort(doc! { "_id": 1 })
                .await
                .map_err(|e| store_error(&e))?;
            let mut out = Vec::new();
            while cursor.advance().await.map_err(|e| store_error(&e))? {
                let doc: Document = cursor.deserialize_current().map_err(|e| store_error(&e))?;
                if let (Ok(site), Ok(added)) = (doc.get_str("_id"), doc.get_datetime("addedAt")) {
                    out.push(RegisteredSite {
                        site: site.to_string(),
                        added_at: added.timestamp_millis(),
                    });
                }
            }
            Ok(out)
        })
    }

    fn register_site(&self, site: RegisteredSite) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            // An upsert that only sets on insert: a second add keeps the first `addedAt`.
            let result = self
                .inner
                .known_sites
                .update_one(
                    doc! { "_id": &site.site },
                    doc! { "$setOnInsert": { "addedAt": DateTime::from_millis(site.added_at) } },
                )
                .upsert(true)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(result.upserted_id.is_some())
        })
    }

    fn unregister_site(&self, site: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let result = self
                .inner
                .known_sites
                .delete_one(doc! { "_id": &site })
                .await
                .map_err(|e| store_error(&e))?;
            Ok(result.deleted_count == 1)
        })
    }

    fn is_ready(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    // Filtered aggregates: the scope's events and visits are read through the `{site, ts}`
    // and `{site, start}` indexes and evaluated with the reference definitions of
    // `crate::visit`, so both stores mean the same by construction.
    fn event_stats(
        &self,
        scope: Scope,
        grouping: Grouping,
    ) -> BoxFuture<'_, Result<Vec<(GroupKey, EventAgg)>, StoreError>> {
        Box::pin(async move {
            if grouping == Grouping::PropNames && scope.filters.is_empty() {
                // Every summary asks; only the events with properties, and only those, are read.
                return self.inner.prop_names(&scope).await;
            }
            let events = self
                .inner
                .events_in(scope.site.clone(), scope.from, scope.to)
                .await?;
            let needs_visits = scope.visit_filters().next().is_some()
                || matches!(&grouping, Grouping::Field(protocol::stats::Field::Dim(d)) if d.is_visit_level());
            let visits = if needs_visits {
                let sessions: HashSet<&str> = events
                    .iter()
                    .filter_map(|e| e.session_id.as_deref())
                    .collect();
                self.inner.visits_of(&scope.site, sessions).await?
            } else {
                HashMap::new()
            };
            Ok(event_stats_of(&events, &visits, &scope, &grouping))
        })
    }

    fn visit_stats(
        &self,
        scope: Scope,
        grouping: Grouping,
    ) -> BoxFuture<'_, Result<Vec<(GroupKey, VisitAgg)>, StoreError>> {
        Box::pin(async move {
            let visits = self
                .inner
                .visits_in(&scope.site, scope.from, scope.to)
                .await?;
            let events = if scope.event_filters().next().is_some() {
                self.inner
                    .events_in(scope.site.clone(), scope.from, scope.to)
                    .await?
            } else {
                Vec::new()
            };
            Ok(visit_stats_of(&events, &visits, &scope, &grouping))
        })
    }

    fn export_page(
        &self,
        site: String,
        from: i64,
        to: i64,
        after: Option<ExportCursor>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(ExportCursor, String)>, StoreError>> {
        Box::pin(async move {
            // Keyset paging on the `{site, ts, eventId}` index: the scan starts at the cursor.
            let start = after.as_ref().map_or(from, |c| c.ts.max(from));
            let range =
                doc! { "$gte": DateTime::from_millis(start), "$lt": DateTime::from_millis(to) };
            let mut filter = doc! { "site": &site, "ts": range };
            if let Some(c) = after {
                let at = DateTime::from_millis(c.ts);
                filter.insert(
                    "$or",
                    vec![
                        doc! { "ts": { "$gt": at } },
                        doc! { "ts": at, "eventId": { "$gt": c.key } },
                    ],
                );
            }
            let mut cursor = self
                .inner
                .events
                .find(filter)
                .sort(doc! { "ts": 1, "eventId": 1 })
                .limit(i64::try_from(limit).unwrap_or(i64::MAX))
                .max_time(READ_DEADLINE)
                .await
                .map_err(|e| store_error(&e))?;
            let mut out = Vec::new();
            while cursor.advance().await.map_err(|e| store_error(&e))? {
                let doc: Document = cursor.deserialize_current().map_err(|e| store_error(&e))?;
                let Some(e) = doc_to_event(&doc) else {
                    continue;
                };
                let bytes = protocol::event::encode(&e)
                    .map_err(|err| StoreError::Backend(err.to_string()))?;
                let text = String::from_utf8_lossy(&bytes).into_owned();
                out.push((
                    ExportCursor {
                        ts: e.ts,
                        key: e.event_id,
                    },
                    text,
                ));
            }
            Ok(out)
        })
    }

    fn records(
        &self,
        kind: RecordKind,
        site: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        Box::pin(async move {
            let mut filter = doc! { "kind": kind.code() };
            if let Some(site) = site {
                filter.insert("site", site);
            }
            self.inner.records_where(kind, filter).await
        })
    }

    fn record(
        &self,
        kind: RecordKind,
        id: String,
    ) -> BoxFuture<'_, Result<Option<Record>, StoreError>> {
        Box::pin(async move {
            let filter = doc! { "_id": format!("{}|{id}", kind.code()) };
            Ok(self.inner.records_where(kind, filter).await?.pop())
        })
    }

    fn put_record(&self, record: Record) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let id = format!("{}|{}", record.kind.code(), record.id);
            let doc = doc! {
                "_id": &id, "kind": record.kind.code(), "id": &record.id, "site": &record.site,
                "created": record.created, "body": &record.body,
            };
            self.inner
                .records
                .replace_one(doc! { "_id": &id }, doc)
                .upsert(true)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(())
        })
    }

    fn delete_record(
        &self,
        kind: RecordKind,
        site: String,
        id: String,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let gone = self
                .inner
                .records
                .delete_one(doc! { "_id": format!("{}|{id}", kind.code()), "site": site })
                .await
                .map_err(|e| store_error(&e))?;
            Ok(gone.deleted_count == 1)
        })
    }

    fn live_published(&self, write: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // An id this store never made has no marker either.
            let Ok(id) = ObjectId::parse_str(&write) else {
                return Ok(());
            };
            self.inner
                .live_pending_relaxed
                .delete_one(doc! { "_id": id })
                .await
                .map_err(|e| store_error(&e))?;
            Ok(())
        })
    }
}

impl Inner {
    /// One attempt: in one transaction when the server has them (`transact`), else with a
    /// ticket (`tickets`).
    async fn insert(
        &self,
        batch: ObjectId,
        events: &[Event],
        docs: &mut [Document],
    ) -> Result<InsertOutcome, AttemptError> {
        if self.transactions.load(Ordering::Relaxed) {
            if let Some(outcome) = self.insert_transacted(events, docs).await? {
                return Ok(outcome);
            }
            tracing::warn!(
                "MongoDB refuses transactions (not a replica set): rollups are applied without \
                 one; a crash mid-compaction may count that round's rollups twice"
            );
            self.transactions.store(false, Ordering::Relaxed);
        }
        self.insert_once(batch, events, docs).await
    }

    async fn events_in(&self, site: String, from: i64, to: i64) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        self.each_event_in(site, from, to, |e| out.push(e)).await?;
        Ok(out)
    }

    /// Calls `f` with each event of `site` with `from <= ts < to`, one at a time.
    async fn each_event_in(
        &self,
        site: String,
        from: i64,
        to: i64,
        mut f: impl FnMut(Event),
    ) -> Result<(), StoreError> {
        let filter = doc! {
            "site": &site,
            "ts": { "$gte": DateTime::from_millis(from), "$lt": DateTime::from_millis(to) },
        };
        let mut cursor = self
            .events
            .find(filter)
            .max_time(READ_DEADLINE)
            .await
            .map_err(|e| store_error(&e))?;
        while cursor.advance().await.map_err(|e| store_error(&e))? {
            let doc: Document = cursor.deserialize_current().map_err(|e| store_error(&e))?;
            if let Some(event) = doc_to_event(&doc) {
                f(event);
            }
        }
        Ok(())
    }

    /// How many events of the range carry each property name (see [`Grouping::PropNames`]).
    async fn prop_names(&self, scope: &Scope) -> Result<Vec<(GroupKey, EventAgg)>, StoreError> {
        let filter = doc! {
            "site": &scope.site,
            "ts": { "$gte": DateTime::from_millis(scope.from), "$lt": DateTime::from_millis(scope.to) },
            "props": { "$exists": true },
        };
        let mut cursor = self
            .events
            .find(filter)
            .projection(doc! { "props": 1, "name": 1 })
            .max_time(READ_DEADLINE)
            .await
            .map_err(|e| store_error(&e))?;
        let mut counts: std::collections::BTreeMap<String, EventAgg> = Default::default();
        while cursor.advance().await.map_err(|e| store_error(&e))? {
            let doc: Document = cursor.deserialize_current().map_err(|e| store_error(&e))?;
            let pageview = doc.get_str("name") == Ok(crate::rollup::PAGE_VIEW);
            if let Ok(props) = doc.get_document("props") {
                for name in props.keys() {
                    let agg = counts.entry(name.clone()).or_default();
                    agg.events += 1;
                    agg.pageviews += u64::from(pageview);
                }
            }
        }
        Ok(counts
            .into_iter()
            .map(|(name, agg)| (GroupKey::Value(name), agg))
            .collect())
    }

    /// The visits of `site` that start in `[from, to)`: the sessions with a partial that
    /// starts there (a visit starts with its earliest partial), merged from all their
    /// partials, keeping those whose merged start is in the range.
    async fn visits_in(
        &self,
        site: &str,
        from: i64,
        to: i64,
    ) -> Result<HashMap<String, Visit<String>>, StoreError> {
        let range = doc! { "$gte": from, "$lt": to };
        let mut sessions = HashSet::new();
        let filters = [
            doc! { "site": site, "p": { "$elemMatch": { "start": &range } } },
            // Visits written before partials existed.
            doc! { "site": site, "start": &range },
        ];
        for filter in filters {
            self.read_partials(filter, &mut |p| {
                let start = p.get("start").and_then(int_of);
                if let (Ok(s), Some(start)) = (p.get_str("s"), start) {
                    if (from..to).contains(&start) {
                        sessions.insert(s.to_string());
                    }
                }
            })
            .await?;
        }
        let mut visits = self
            .visits_of(site, sessions.iter().map(String::as_str).collect())
            .await?;
        visits.retain(|_, v| (from..to).contains(&v.start));
        Ok(visits)
    }

    /// The visits of these sessions, each merged from all its partials, a bounded `$in` at
    /// a time.
    async fn visits_of(
        &self,
        site: &str,
        sessions: HashSet<&str>,
    ) -> Result<HashMap<String, Visit<String>>, StoreError> {
        let wanted: Vec<&str> = sessions.iter().copied().collect();
        let mut merged: HashMap<String, Document> = HashMap::new();
        for chunk in wanted.chunks(1000) {
            // A document holds the partials of many sessions and may match several chunks:
            // each chunk takes only its own sessions' partials, so each is merged once.
            let mine: HashSet<&str> = chunk.iter().copied().collect();
            let legacy: Vec<String> = chunk.iter().map(|s| format!("{site}|{s}")).collect();
            let filters = [
                doc! { "site": site, "p.s": { "$in": chunk } },
                doc! { "_id": { "$in": legacy } },
            ];
            for filter in filters {
                self.read_partials(filter, &mut |p| {
                    let Ok(session) = p.get_str("s") else {
                        return;
                    };
                    if !mine.contains(session) {
                        return;
                    }
                    match merged.get_mut(session) {
                        Some(acc) => merge_visit_docs(acc, p),
                        None => {
                            merged.insert(session.to_string(), p.clone());
                        }
                    }
                })
                .await?;
            }
        }
        Ok(merged.values().filter_map(doc_to_visit).collect())
    }

    /// Hands every partial visit of the documents matching `filter` to `each`.
    async fn read_partials(
        &self,
        filter: Document,
        each: &mut impl FnMut(&Document),
    ) -> Result<(), StoreError> {
        let mut cursor = self
            .visits
            .find(filter)
            .batch_size(1000)
            .max_time(READ_DEADLINE)
            .await
            .map_err(|e| store_error(&e))?;
        while cursor.advance().await.map_err(|e| store_error(&e))? {
            let doc: Document = cursor.deserialize_current().map_err(|e| store_error(&e))?;
            for p in partials_of(&doc) {
                each(p);
            }
        }
        Ok(())
    }

    async fn records_where(
        &self,
        kind: RecordKind,
        filter: Document,
    ) -> Result<Vec<Record>, StoreError> {
        let mut cursor = self
            .records
            .find(filter)
            .sort(doc! { "created": 1, "id": 1 })
            .await
            .map_err(|e| store_error(&e))?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(|e| store_error(&e))? {
            let doc: Document = cursor.deserialize_current().map_err(|e| store_error(&e))?;
            let (Ok(id), Ok(site), Ok(body)) =
                (doc.get_str("id"), doc.get_str("site"), doc.get_str("body"))
            else {
                continue;
            };
            out.push(Record {
                kind,
                id: id.to_string(),
                site: site.to_string(),
                created: doc.get_i64("created").unwrap_or(0),
                body: body.to_string(),
            });
        }
        Ok(out)
    }
}

impl Inner {
    /// Site counters plus the activity of day deltas not folded yet, most recently active
    /// first (at most 1000), read in one snapshot like the rollups.
    async fn sites(&self) -> Result<Vec<SiteActivity>, MongoError> {
        let mut session = self.snapshot().await?;
        let mut pending: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let find = self
            .deltas
            .find(doc! {})
            .projection(doc! { "site": 1, "n": 1, "last": 1 });
        read_all(find, session.as_mut(), &mut |d| {
            if let Some((site, n, last)) = delta_activity(d) {
                let p = pending.entry(site).or_insert((0, i64::MIN));
                p.0 = p.0.saturating_add(n);
                p.1 = p.1.max(last);
            }
        })
        .await?;
        let mut counters: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let recent = self
            .sites
            .find(doc! {})
            .sort(doc! { "lastSeen": -1 })
            .limit(1000);
        read_all(recent, session.as_mut(), &mut |d| {
            add_counter(&mut counters, d)
        })
        .await?;
        // Sites with pending activity but not among the most recent counters.
        let missing: Vec<&String> = pending
            .keys()
            .filter(|s| !counters.contains_key(*s))
            .collect();
        if !missing.is_empty() {
            let find = self.sites.find(doc! { "_id": { "$in": missing } });
            read_all(find, session.as_mut(), &mut |d| {
                add_counter(&mut counters, d)
            })
            .await?;
        }
        if let Some(mut s) = session {
            s.commit_transaction().await?;
        }
        for (site, (n, last)) in pending {
            let c = counters.entry(site).or_insert((0, i64::MIN));
            c.0 = c.0.saturating_add(n);
            c.1 = c.1.max(last);
        }
        let mut out: Vec<SiteActivity> = counters
            .into_iter()
            .map(|(site, (events, last))| SiteActivity {
                site,
                events: u64::try_from(events).unwrap_or(0),
                last_seen: last,
            })
            .collect();
        out.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.site.cmp(&b.site)));
        out.truncate(1000);
        Ok(out)
    }

    /// A session in a read-only snapshot transaction, when the server has transactions: what
    /// readers of deltas and their buckets use (see the module docs).
    async fn snapshot(&self) -> Result<Option<ClientSession>, MongoError> {
        if !self.transactions.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let mut s = self.client.start_session().await?;
        s.start_transaction()
            .read_concern(ReadConcern::snapshot())
            .await?;
        Ok(Some(s))
    }

    /// The buckets of `runs`: compacted documents, overflow counters and pending deltas,
    /// merged per bucket — read in one snapshot when the server has transactions, so the
    /// compactor moving increments from deltas into buckets is never seen half-way.
    async fn read_rollups(
        &self,
        site: &str,
        runs: &[Run],
        sketches: bool,
    ) -> Result<Vec<Bucket>, MongoError> {
        let mut merged: BTreeMap<(Res, i64), Bucket> = BTreeMap::new();
        // A delta is a minute: it counts in the bucket of the run's resolution holding it.
        let mut add = |res: Res, doc: &Document| {
            if let Some(mut b) = doc_to_bucket(doc) {
                b.start = res.bucket(b.start);
                b.res = res;
                match merged.entry((b.res, b.start)) {
                    Entry::Occupied(mut have) => have.get_mut().rollup.merge(&b.rollup),
                    Entry::Vacant(slot) => {
                        slot.insert(b);
                    }
                }
            }
        };
        let mut session = self.snapshot().await?;
        // One range query per run and collection on the `{site, res, t}` indexes: a `$or` of
        // ranges may not use the index on every server.
        for run in runs {
            let t = doc! {
                "$gte": DateTime::from_millis(run.from),
                "$lt": DateTime::from_millis(run.to),
            };
            let buckets = doc! { "site": site, "res": run.res.code(), "t": &t };
            let deltas = doc! { "site": site, "res": Res::Minute.code(), "t": &t };
            for (coll, filter) in [(&self.rollups, buckets), (&self.deltas, deltas)] {
                let mut find = coll.find(filter).batch_size(1000).max_time(READ_DEADLINE);
                if !sketches {
                    find = find.projection(doc! { "v": 0, "s": 0 });
                }
                read_all(find, session.as_mut(), &mut |d| add(run.res, d)).await?;
            }
        }
        if let Some(mut s) = session {
            s.commit_transaction().await?;
        }
        Ok(merged.into_values().collect())
    }
}

/// A `sites` document into `counters` (`site → (events, last seen)`).
fn add_counter(counters: &mut BTreeMap<String, (i64, i64)>, d: &Document) {
    if let (Ok(site), Some(events), Ok(last)) = (
        d.get_str("_id"),
        d.get("events").and_then(as_u64),
        d.get_datetime("lastSeen"),
    ) {
        counters.insert(
            site.to_string(),
            (
                i64::try_from(events).unwrap_or(i64::MAX),
                last.timestamp_millis(),
            ),
        );
    }
}

/// Runs `find` (in `session` when given) and hands every document to `each`.
async fn read_all(
    find: mongodb::action::Find<'_, Document>,
    session: Option<&mut ClientSession>,
    each: &mut impl FnMut(&Document),
) -> Result<(), MongoError> {
    match session {
        Some(s) => {
            let mut cursor = find.session(&mut *s).await?;
            while let Some(doc) = cursor.next(&mut *s).await.transpose()? {
                each(&doc);
            }
        }
        None => {
            let mut cursor = find.await?;
            while cursor.advance().await? {
                let doc: Document = cursor.deserialize_current()?;
                each(&doc);
            }
        }
    }
    Ok(())
}
