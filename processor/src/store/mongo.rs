//! The distributed store: MongoDB through the official `mongodb` driver (async).
//!
//! Collections, created with their indexes on start-up in the URI's database (`footfall` when
//! the URI names none):
//! - `events`: one document per event (`ts`/`receivedAt` as BSON dates), unique index on
//!   `eventId`, index `{site, ts}` for the edges of history queries, and a TTL index on `ts`
//!   when a retention is configured;
//! - `rollups`: one document per site and minute / hour / UTC day (see [`crate::rollup`]):
//!   `c` holds counters (`$inc`), `v` and `s` the visitor and session sketch registers (`$max`);
//! - `sites`: event count and last activity per site;
//!
//! - `batches`: tickets of insert attempts whose rollups are not applied yet.
//!
//! ## Exactly-once rollups
//! One insert attempt: (1) insert a *ticket* naming the attempt's document ids; (2)
//! `insert_many` unordered, each event tagged with the ticket — duplicate-key errors (11000)
//! are duplicates, never failures; (3) in one transaction, delete the ticket and `$inc`/`$max`
//! the rollups of the events that were new. The ticket's delete is the claim: whoever deletes
//! it applies those rollups, so they happen exactly once, and a single-document delete is far
//! cheaper than flagging every event. If anything fails after (1), the caller retries: the
//! retry's duplicates point at the old ticket, which it finishes first; tickets nobody comes
//! back for are finished by the monitor's sweep (after an outage, and every
//! `sweep_interval_ms`). A ticket is only finished by someone else once its attempt is over —
//! it failed in this process, or it is older than `pending_grace_ms`, longer than an attempt
//! may run (`attempt_timeout_ms`) — so nobody claims a ticket whose events are still being
//! written. So redelivery never double counts and a failure never loses a count.
//! Writes use `w: majority, j: true` unless the URI says otherwise: `Ok` means durable.
//! On a server without transactions (a standalone `mongod`) the store falls back to applying
//! increments then deleting the ticket, where a crash between the two would count that one
//! batch twice; it says so in the log.
//!
//! No MongoDB type leaves this module.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use protocol::Event;

use super::{Bucket, InsertOutcome, Store, StoreError};
use crate::query::SiteInfo;
use crate::rollup::{self, parse_field_key, BucketKey, Res, Rollup, Run};
use crate::BoxFuture;

/// The database used when the URI names none.
pub const DEFAULT_DATABASE: &str = "footfall";
const EVENTS: &str = "events";
const ROLLUPS: &str = "rollups";
const SITES: &str = "sites";
/// Field set on an event until its rollup increments are applied.
/// Unapplied-rollup tickets, one per insert attempt (see the module docs).
const BATCHES: &str = "batches";
/// Field of an event naming the insert attempt (ticket) that stored it.
const BATCH_FIELD: &str = "b";
const DUPLICATE_KEY: i32 = 11000;
/// "Transaction numbers are only allowed on a replica set member or mongos".
const ILLEGAL_OPERATION: i32 = 20;

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
        }
    }
}

/// See the module docs.
pub struct MongoStore {
    inner: Arc<Inner>,
    /// Readiness checks and the pending-rollup sweep; stopped when the store drops.
    monitor: tokio::task::JoinHandle<()>,
}

/// What the store and its monitor task share.
struct Inner {
    client: Client,
    events: Collection<Document>,
    rollups: Collection<Document>,
    sites: Collection<Document>,
    batches: Collection<Document>,
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
    }
}

/// Why one insert attempt failed.
#[derive(Debug)]
enum AttemptError {
    Mongo(MongoError),
    /// Some events belong to another writer's attempt that may still be running.
    Busy,
    /// The attempt took longer than `attempt_timeout_ms`.
    TimedOut,
}

impl From<MongoError> for AttemptError {
    fn from(e: MongoError) -> Self {
        AttemptError::Mongo(e)
    }
}

impl AttemptError {
    fn is_transient(&self) -> bool {
        match self {
            AttemptError::Mongo(e) => is_connection_error(e),
            AttemptError::Busy | AttemptError::TimedOut => true,
        }
    }

    fn into_store_error(self) -> StoreError {
        match self {
            AttemptError::Mongo(e) => store_error(&e),
            AttemptError::Busy => StoreError::Unavailable(
                "another writer is storing some of these events; retry shortly".into(),
            ),
            AttemptError::TimedOut => {
                StoreError::Unavailable("MongoDB did not finish the insert in time".into())
            }
        }
    }
}

/// The server error code of a driver error, if it has one.
fn code_of(e: &MongoError) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        _ => None,
    }
}

/// Whether the server could not be reached (as opposed to refusing the operation).
fn is_connection_error(e: &MongoError) -> bool {
    matches!(
        e.kind.as_ref(),
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
    ) || e.contains_label("RetryableWriteError")
        || e.contains_label("TransientTransactionError")
        || e.contains_label("UnknownTransactionCommitResult")
}

fn store_error(e: &MongoError) -> StoreError {
    if is_connection_error(e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
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
        options.write_concern.get_or_insert_with(|| {
            WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .build()
        });
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

        let inner = Arc::new(Inner {
            events: db.collection(EVENTS),
            rollups: db.collection(ROLLUPS),
            sites: db.collection(SITES),
            batches: db.collection(BATCHES),
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
        tracing::info!(%hosts, %database, "MongoDB store ready");
        Ok(MongoStore { inner, monitor })
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
}

impl Inner {
    /// One attempt at storing a batch (see the module docs).
    async fn insert_once(
        &self,
        batch: ObjectId,
        events: &[Event],
        base_docs: &[Document],
    ) -> Result<InsertOutcome, AttemptError> {
        let docs: Vec<Document> = base_docs
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.insert("_id", ObjectId::new());
                d.insert(BATCH_FIELD, batch);
                d
            })
            .collect();
        let ids: Vec<Bson> = docs.iter().filter_map(|d| d.get("_id").cloned()).collect();
        // 1. The ticket: names this attempt's documents until their rollups are applied.
        self.batches
            .insert_one(doc! { "_id": batch, "ids": &ids, "at": DateTime::now() })
            .await?;
        // 2. The events; duplicate ids are expected and ignored.
        let mut duplicates = HashSet::new();
        if let Err(e) = self.events.insert_many(&docs).ordered(false).await {
            let ErrorKind::InsertMany(failure) = e.kind.as_ref() else {
                return Err(e.into());
            };
            let write_errors = failure.write_errors.as_deref().unwrap_or_default();
            let other = write_errors.iter().any(|w| w.code != DUPLICATE_KEY);
            if other || failure.write_concern_error.is_some() {
                // What did go in is named by the ticket: a retry or the sweep rolls it up.
                return Err(e.into());
            }
            duplicates.extend(write_errors.iter().map(|w| w.index));
        }
        // 3. Duplicates stored by an attempt that failed before its rollups: finish that
        //    attempt's ticket first (exactly once, whoever gets there first).
        let dup_ids: Vec<&str> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| duplicates.contains(i))
            .map(|(_, e)| e.event_id.as_str())
            .collect();
        if !dup_ids.is_empty() {
            let mut earlier = Vec::new();
            let mut cursor = self
                .events
                .find(doc! { "eventId": { "$in": &dup_ids } })
                .projection(doc! { BATCH_FIELD: 1 })
                .await?;
            while cursor.advance().await? {
                let doc: Document = cursor.deserialize_current()?;
                if let Ok(b) = doc.get_object_id(BATCH_FIELD) {
                    if b != batch && !earlier.contains(&b) {
                        earlier.push(b);
                    }
                }
            }
            if !earlier.is_empty() {
                let mut cursor = self
                    .batches
                    .find(doc! { "_id": { "$in": &earlier } })
                    .await?;
                let mut tickets = Vec::new();
                while cursor.advance().await? {
                    tickets.push(cursor.deserialize_current()?);
                }
                for ticket in tickets {
                    // A young ticket of another writer may be mid-insert: finishing it now
                    // could miss events it has yet to write. Come back later instead.
                    if !self.may_recover(&ticket) {
                        return Err(AttemptError::Busy);
                    }
                    self.recover_ticket(&ticket).await?;
                }
            }
        }
        // 4. This attempt's new events.
        let fresh: Vec<&Event> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| !duplicates.contains(i))
            .map(|(_, e)| e)
            .collect();
        if !self.apply(batch, &fresh).await? {
            // Only possible when this attempt outlived the sweep's grace period.
            tracing::warn!(%batch, "insert attempt's ticket was already finished by the sweep");
        }
        Ok(InsertOutcome {
            inserted: fresh.len(),
            duplicates: duplicates.len(),
            fresh: (0..events.len())
                .filter(|i| !duplicates.contains(i))
                .collect(),
        })
    }

    /// Whether a ticket's attempt is over: it failed in this process, or it is older than
    /// the grace period (longer than any attempt may run).
    fn may_recover(&self, ticket: &Document) -> bool {
        let Ok(id) = ticket.get_object_id("_id") else {
            return false;
        };
        let grace = i64::try_from(self.config.pending_grace_ms).unwrap_or(i64::MAX);
        let old = ticket.get_datetime("at").is_ok_and(|at| {
            at.timestamp_millis() <= DateTime::now().timestamp_millis().saturating_sub(grace)
        });
        old || self
            .abandoned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&id)
    }

    /// Applies the rollups of the events a ticket names (those its attempt did insert).
    async fn recover_ticket(&self, ticket: &Document) -> Result<usize, MongoError> {
        let Ok(batch) = ticket.get_object_id("_id") else {
            return Ok(0);
        };
        let ids = ticket
            .get_array("ids")
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut events = Vec::new();
        let mut cursor = self
            .events
            .find(doc! { "_id": { "$in": ids }, BATCH_FIELD: batch })
            .await?;
        while cursor.advance().await? {
            let doc: Document = cursor.deserialize_current()?;
            events.extend(doc_to_event(&doc));
        }
        let refs: Vec<&Event> = events.iter().collect();
        let applied = self.apply(batch, &refs).await?;
        self.abandoned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&batch);
        Ok(if applied { events.len() } else { 0 })
    }

    /// Finishes tickets older than the grace period; returns how many events it rolled up.
    async fn recover_pending(&self) -> Result<usize, MongoError> {
        let grace = i64::try_from(self.config.pending_grace_ms).unwrap_or(i64::MAX);
        let cutoff =
            DateTime::from_millis(DateTime::now().timestamp_millis().saturating_sub(grace));
        let mut found = 0;
        loop {
            let abandoned: Vec<ObjectId> = self
                .abandoned
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .copied()
                .collect();
            let filter = doc! { "$or": [
                { "at": { "$lte": cutoff } },
                { "_id": { "$in": &abandoned } },
            ] };
            let mut cursor = self.batches.find(filter).limit(100).await?;
            let mut tickets = Vec::new();
            while cursor.advance().await? {
                tickets.push(cursor.deserialize_current()?);
            }
            if tickets.is_empty() {
                // Abandoned attempts whose ticket never got written (or is done): forget them.
                let mut set = self
                    .abandoned
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for id in &abandoned {
                    set.remove(id);
                }
                return Ok(found);
            }
            for ticket in &tickets {
                found += self.recover_ticket(ticket).await?;
            }
        }
    }

    /// Applies the rollups of `events` and retires ticket `batch`, atomically. `Ok(false)`
    /// when the ticket was already retired: someone else applied these rollups.
    async fn apply(&self, batch: ObjectId, events: &[&Event]) -> Result<bool, MongoError> {
        if events.is_empty() {
            let gone = self.batches.delete_one(doc! { "_id": batch }).await?;
            return Ok(gone.deleted_count == 1);
        }
        let buckets = rollup::bucketize(events.iter().copied());
        let rollup_updates: Vec<(Document, Document)> = buckets.iter().map(rollup_update).collect();
        let site_updates = site_updates(events.iter().copied());

        if self.transactions.load(Ordering::Relaxed) {
            match self
                .apply_in_transaction(batch, &rollup_updates, &site_updates)
                .await
            {
                Err(e) if code_of(&e) == Some(ILLEGAL_OPERATION) => {
                    tracing::warn!(
                        "MongoDB refuses transactions (not a replica set): rollups are applied \
                         without one; a crash mid-batch may count that batch twice"
                    );
                    self.transactions.store(false, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        if self
            .batches
            .find_one(doc! { "_id": batch })
            .await?
            .is_none()
        {
            return Ok(false);
        }
        for (filter, update) in &rollup_updates {
            self.rollups
                .update_one(filter.clone(), update.clone())
                .upsert(true)
                .await?;
        }
        for (filter, update) in &site_updates {
            self.sites
                .update_one(filter.clone(), update.clone())
                .upsert(true)
                .await?;
        }
        self.batches.delete_one(doc! { "_id": batch }).await?;
        Ok(true)
    }

    async fn apply_in_transaction(
        &self,
        batch: ObjectId,
        rollup_updates: &[(Document, Document)],
        site_updates: &[(Document, Document)],
    ) -> Result<bool, MongoError> {
        let mut session = self.client.start_session().await?;
        session.start_transaction().await?;
        match self
            .transaction_body(&mut session, batch, rollup_updates, site_updates)
            .await
        {
            Ok(true) => session.commit_transaction().await.map(|()| true),
            Ok(false) => {
                session.abort_transaction().await?;
                Ok(false)
            }
            Err(e) => {
                let _ = session.abort_transaction().await;
                Err(e)
            }
        }
    }

    /// Retires the ticket (the claim: a single-document delete) and applies the increments;
    /// `false` when the ticket was already gone.
    async fn transaction_body(
        &self,
        session: &mut ClientSession,
        batch: ObjectId,
        rollup_updates: &[(Document, Document)],
        site_updates: &[(Document, Document)],
    ) -> Result<bool, MongoError> {
        let claimed = self
            .batches
            .delete_one(doc! { "_id": batch })
            .session(&mut *session)
            .await?;
        if claimed.deleted_count != 1 {
            return Ok(false);
        }
        for (filter, update) in rollup_updates {
            self.rollups
                .update_one(filter.clone(), update.clone())
                .upsert(true)
                .session(&mut *session)
                .await?;
        }
        for (filter, update) in site_updates {
            self.sites
                .update_one(filter.clone(), update.clone())
                .upsert(true)
                .session(&mut *session)
                .await?;
        }
        Ok(true)
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

async fn ensure_indexes(db: &Database, retention_days: Option<u32>) -> Result<(), MongoError> {
    let events: Collection<Document> = db.collection(EVENTS);
    let rollups: Collection<Document> = db.collection(ROLLUPS);
    let index = |keys: Document, name: &str, unique: bool| {
        IndexModel::builder()
            .keys(keys)
            .options(
                IndexOptions::builder()
                    .name(name.to_string())
                    .unique(unique.then_some(true))
                    .build(),
            )
            .build()
    };
    events
        .create_index(index(doc! { "eventId": 1 }, "eventId_unique", true))
        .await?;
    events
        .create_index(index(doc! { "site": 1, "ts": 1 }, "site_ts", false))
        .await?;
    rollups
        .create_index(index(
            doc! { "site": 1, "res": 1, "t": 1 },
            "site_res_t",
            false,
        ))
        .await?;
    let secs = retention_days.map(|d| u64::from(d) * 86_400);
    ensure_ttl(db, EVENTS, "ts", secs).await?;
    // Rollups live a day longer, so a day bucket is not dropped while its events remain.
    ensure_ttl(db, ROLLUPS, "t", secs.map(|s| s + 86_400)).await?;
    Ok(())
}

/// Creates, changes (`collMod`) or drops the TTL index `<field>_ttl` to match the setting.
async fn ensure_ttl(
    db: &Database,
    collection: &str,
    field: &str,
    secs: Option<u64>,
) -> Result<(), MongoError> {
    let coll: Collection<Document> = db.collection(collection);
    let name = format!("{field}_ttl");
    let exists = coll.list_index_names().await?.contains(&name);
    match (secs, exists) {
        (None, false) => {}
        (None, true) => coll.drop_index(name.as_str()).await?,
        (Some(secs), false) => {
            let model = IndexModel::builder()
                .keys(doc! { field: 1 })
                .options(
                    IndexOptions::builder()
                        .name(name)
                        .expire_after(Duration::from_secs(secs))
                        .build(),
                )
                .build();
            coll.create_index(model).await?;
        }
        (Some(secs), true) => {
            db.run_command(doc! {
                "collMod": collection,
                "index": { "name": name, "expireAfterSeconds": secs as i64 },
            })
            .await?;
        }
    }
    Ok(())
}

fn event_to_doc(e: &Event) -> Result<Document, StoreError> {
    let mut doc = mongodb::bson::to_document(e)
        .map_err(|err| StoreError::Backend(format!("cannot encode event {}: {err}", e.event_id)))?;
    // Dates, so the TTL index works and the documents read naturally in any MongoDB tool.
    doc.insert("ts", DateTime::from_millis(e.ts));
    doc.insert("receivedAt", DateTime::from_millis(e.received_at));
    doc.insert("v", i32::from(protocol::SCHEMA_VERSION));
    Ok(doc)
}

fn doc_to_event(doc: &Document) -> Option<Event> {
    let mut d = doc.clone();
    for field in ["_id", BATCH_FIELD, "v"] {
        d.remove(field);
    }
    for field in ["ts", "receivedAt"] {
        if let Some(Bson::DateTime(t)) = d.get(field) {
            let ms = t.timestamp_millis();
            d.insert(field, ms);
        }
    }
    match mongodb::bson::from_document(d) {
        Ok(e) => Some(e),
        Err(err) => {
            tracing::warn!(error = %err, "skipping an unreadable stored event");
            None
        }
    }
}

fn bucket_id(site: &str, res: Res, t: i64) -> String {
    format!("{site}|{}|{t}", res.code())
}

/// The upsert that adds one bucket's increments: counters by `$inc`, registers by `$max`.
fn rollup_update((key, r): (&BucketKey, &Rollup)) -> (Document, Document) {
    let (site, res, t) = key;
    let mut inc = Document::new();
    for ((dim, value), n) in &r.counts {
        inc.insert(
            format!("c.{}", rollup::field_key(*dim, value)),
            i64::try_from(*n).unwrap_or(i64::MAX),
        );
    }
    let mut max = Document::new();
    for (prefix, sketch) in [("v", &r.visitors), ("s", &r.sessions)] {
        for (i, rank) in sketch.nonzero() {
            max.insert(format!("{prefix}.{i}"), i32::from(rank));
        }
    }
    let mut update = doc! {
        "$setOnInsert": { "site": site, "res": res.code(), "t": DateTime::from_millis(*t) },
    };
    // MongoDB refuses an empty operator document.
    if !inc.is_empty() {
        update.insert("$inc", inc);
    }
    if !max.is_empty() {
        update.insert("$max", max);
    }
    (doc! { "_id": bucket_id(site, *res, *t) }, update)
}

fn site_updates<'a>(events: impl Iterator<Item = &'a Event>) -> Vec<(Document, Document)> {
    let mut per_site: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for e in events {
        let entry = per_site.entry(e.site.as_str()).or_insert((0, i64::MIN));
        entry.0 += 1;
        entry.1 = entry.1.max(e.received_at);
    }
    per_site
        .into_iter()
        .map(|(site, (n, last))| {
            (
                doc! { "_id": site },
                doc! {
                    "$inc": { "events": n },
                    "$max": { "lastSeen": DateTime::from_millis(last) },
                },
            )
        })
        .collect()
}

fn as_u64(b: &Bson) -> Option<u64> {
    match b {
        Bson::Int32(n) => u64::try_from(*n).ok(),
        Bson::Int64(n) => u64::try_from(*n).ok(),
        Bson::Double(f) if *f >= 0.0 => Some(*f as u64),
        _ => None,
    }
}

fn doc_to_bucket(doc: &Document) -> Option<Bucket> {
    let res = Res::from_code(doc.get_str("res").ok()?)?;
    let start = doc.get_datetime("t").ok()?.timestamp_millis();
    let mut rollup = Rollup::default();
    if let Ok(counts) = doc.get_document("c") {
        for (key, n) in counts {
            if let (Some(k), Some(n)) = (parse_field_key(key), as_u64(n)) {
                rollup.counts.insert(k, n);
            }
        }
    }
    for (field, sketch) in [("v", &mut rollup.visitors), ("s", &mut rollup.sessions)] {
        if let Ok(regs) = doc.get_document(field) {
            for (i, rank) in regs {
                let rank = as_u64(rank).and_then(|r| u8::try_from(r).ok());
                if let (Ok(i), Some(rank)) = (i.parse::<u16>(), rank) {
                    sketch.set(i, rank);
                }
            }
        }
    }
    Some(Bucket { res, start, rollup })
}

impl Store for MongoStore {
    fn insert_batch(&self, events: Vec<Event>) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(InsertOutcome::default());
            }
            let docs = events
                .iter()
                .map(event_to_doc)
                .collect::<Result<Vec<_>, _>>()?;
            let mut backoff = Duration::from_millis(self.inner.config.retry_backoff_ms);
            let attempts = self.inner.config.insert_attempts.max(1);
            let mut attempt = 1;
            let limit = Duration::from_millis(self.inner.config.attempt_timeout_ms.max(1));
            loop {
                let batch = ObjectId::new();
                let result = match tokio::time::timeout(
                    limit,
                    self.inner.insert_once(batch, &events, &docs),
                )
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
            // One range query per run on the `{site, res, t}` index: a `$or` of ranges may not
            // use the index on every server.
            let mut out = Vec::new();
            for run in &runs {
                let filter = doc! {
                    "site": &site,
                    "res": run.res.code(),
                    "t": {
                        "$gte": DateTime::from_millis(run.from),
                        "$lt": DateTime::from_millis(run.to),
                    },
                };
                let mut find = self.inner.rollups.find(filter).batch_size(1000);
                if !sketches {
                    find = find.projection(doc! { "v": 0, "s": 0 });
                }
                let mut cursor = find.await.map_err(|e| store_error(&e))?;
                while cursor.advance().await.map_err(|e| store_error(&e))? {
                    let doc: Document =
                        cursor.deserialize_current().map_err(|e| store_error(&e))?;
                    out.extend(doc_to_bucket(&doc));
                }
            }
            Ok(out)
        })
    }

    fn read_events(
        &self,
        site: String,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        Box::pin(async move {
            let filter = doc! {
                "site": &site,
                "ts": { "$gte": DateTime::from_millis(from), "$lt": DateTime::from_millis(to) },
            };
            let mut cursor = self
                .inner
                .events
                .find(filter)
                .await
                .map_err(|e| store_error(&e))?;
            let mut out = Vec::new();
            while cursor.advance().await.map_err(|e| store_error(&e))? {
                let doc: Document = cursor.deserialize_current().map_err(|e| store_error(&e))?;
                out.extend(doc_to_event(&doc));
            }
            Ok(out)
        })
    }

    fn sites(&self) -> BoxFuture<'_, Result<Vec<SiteInfo>, StoreError>> {
        Box::pin(async move {
            let mut cursor = self
                .inner
                .sites
                .find(doc! {})
                .sort(doc! { "lastSeen": -1 })
                .limit(1000)
                .await
                .map_err(|e| store_error(&e))?;
            let mut out = Vec::new();
            while cursor.advance().await.map_err(|e| store_error(&e))? {
                let doc: Document = cursor.deserialize_current().map_err(|e| store_error(&e))?;
                let (Ok(site), Some(events), Ok(last)) = (
                    doc.get_str("_id"),
                    doc.get("events").and_then(as_u64),
                    doc.get_datetime("lastSeen"),
                ) else {
                    continue;
                };
                out.push(SiteInfo {
                    site: site.to_string(),
                    events,
                    last_seen: protocol::time::format_rfc3339_millis(last.timestamp_millis()),
                });
            }
            Ok(out)
        })
    }

    fn is_ready(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }
}
