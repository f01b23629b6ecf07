//! The embedded store of standalone mode: one SQLite file (WAL) in the data folder.
//!
//! Writes go through a single writer thread fed by a bounded queue — the in-process queue
//! between collector and store. The thread takes every insert waiting in the queue, writes
//! them in one transaction and commits once (`synchronous=FULL`: the WAL is fsynced at
//! commit), then answers each caller. One fsync thus covers many concurrent requests (group
//! commit), and a caller hears `Ok` only after its events are on disk.
//!
//! Reads use a separate read-only connection, which WAL lets run alongside the writer.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use protocol::visitor::Salt;
use protocol::Event;
use rusqlite::{params, Connection, ErrorCode, InterruptHandle, OpenFlags, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use std::collections::BTreeMap;

use protocol::stats::Dimension;

use super::sqlite_facts::{self as facts, Dict};
use super::{
    Bucket, EventBatch, ExportCursor, InsertOutcome, Record, RecordKind, RegisteredSite,
    SiteActivity, Store, StoreError,
};
use crate::priority::Background;
use crate::rollup::{self, DimensionCode, Increments, RegisterKey, Res, Rollup, Run, Sketch};
use crate::visit::{EventAgg, GroupKey, Grouping, Scope, VisitAgg};
use crate::{BoxFuture, FastMap};

const DB_FILE: &str = "footfall.db";
/// Longest time one read may take on the shared read connection; past it the read is
/// interrupted, so a heavy query cannot hold the connection (and every query queued behind
/// it) for longer.
const READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
const LOCK_FILE: &str = "footfall.lock";
/// The documents of a site's events in a time range, through the fact table's (site, ts)
/// order (it replaces an index on events).
const EVENTS_IN_RANGE: &str = "SELECT e.doc FROM facts f JOIN events e ON e.seq = f.seq
     WHERE f.site = (SELECT id FROM dict WHERE value = ?1) AND f.ts >= ?2 AND f.ts < ?3";
/// Bytes the WAL file keeps after a checkpoint (SQLite's automatic checkpoint runs at about
/// 4 MB of WAL).
const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;
/// 2: rollup tables (built from the stored events when a version-1 file is opened).
/// 3: the site registry, `known_sites` (started with the built-in sites and every site the
/// file has data for).
/// 4: events keep only their id and document (the facts hold the fields queries read),
///    visits, facts (which replace the `{site, ts}` index of events), settings records
///    (built from the stored events when an older file is opened).
/// 5: new events keep their document in the compact form (`protocol::compact`, a BLOB); rows
///    written before keep their JSON text, and readers take either. Nothing is rewritten; the
///    version is there so that an older footfall refuses a file whose documents it cannot read.
const SCHEMA_VERSION: i64 = 5;

const SCHEMA: &str = "
-- The stored copy of each event, and its id for deduplication. Queries never read its fields
-- here: they use the facts (sqlite_facts.rs), which name each event's time, site and
-- dimensions by dictionary ids, and join back by `seq` for the documents.
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    event_id TEXT    NOT NULL UNIQUE,
    -- The event in its compact form (a BLOB), or its JSON document (TEXT) in rows written
    -- before schema 5: read with protocol::compact::decode_stored.
    doc      TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS sites (
    site      TEXT PRIMARY KEY,
    events    INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);
-- Rollups (see crate::rollup): counters and visitor/session sketch registers per bucket.
CREATE TABLE IF NOT EXISTS rollup_counts (
    site   TEXT    NOT NULL,
    res    TEXT    NOT NULL,
    bucket INTEGER NOT NULL,
    dim    TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (site, res, bucket, dim, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_hll (
    site   TEXT    NOT NULL,
    res    TEXT    NOT NULL,
    bucket INTEGER NOT NULL,
    kind   INTEGER NOT NULL, -- 0 visitors, 1 sessions
    reg    INTEGER NOT NULL,
    rank   INTEGER NOT NULL,
    PRIMARY KEY (site, res, bucket, kind, reg)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS salts (
    day  INTEGER PRIMARY KEY,
    salt BLOB    NOT NULL
);
-- The site registry (see crate::sites): events are accepted only for these.
CREATE TABLE IF NOT EXISTS known_sites (
    site     TEXT    PRIMARY KEY,
    added_at INTEGER NOT NULL
) WITHOUT ROWID;
";

#[derive(Debug, Clone)]
pub struct SqliteConfig {
    pub data_dir: PathBuf,
    /// Insert requests that may wait for the writer; beyond this callers get `Overloaded`
    /// (the collector's 503) instead of an unbounded queue.
    pub queue_capacity: usize,
    /// Upper bound on events in one group commit, so one commit never stalls for long.
    pub max_group_events: usize,
    /// Cap on the database file; inserts past it fail like a full disk (503, nothing lost).
    pub max_size_bytes: Option<u64>,
    /// Run the writer thread as background work, at the share this [`Background`] sets
    /// (see [`crate::priority`]): for a store behind a journal, whose writes may lag behind
    /// requests.
    pub background: Option<Background>,
}

impl SqliteConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            data_dir: data_dir.into(),
            queue_capacity: 4096,
            max_group_events: 20_000,
            max_size_bytes: None,
            background: None,
        }
    }
}

enum WriteJob {
    Insert(InsertJob),
    Salt {
        day: i64,
        reply: oneshot::Sender<Result<Salt, StoreError>>,
    },
    /// A small write outside the event path (settings records); answers through its own
    /// channel.
    Run(Box<dyn FnOnce(&Connection) + Send>),
}

/// See the module docs.
pub struct SqliteStore {
    jobs: mpsc::Sender<WriteJob>,
    reader: Arc<Mutex<Connection>>,
    /// Interrupts whatever the read connection is running (see [`READ_DEADLINE`]).
    interrupt: Arc<InterruptHandle>,
    healthy: Arc<AtomicBool>,
    path: PathBuf,
    /// Held for the store's lifetime: a second process on the same folder is refused.
    _lock: File,
}

fn backend(e: &rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::DiskFull(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `config.data_dir` and starts its writer.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process has the folder, [`StoreError::Open`] when
    /// the folder or file cannot be created or is not a Footfall database.
    pub fn open(config: SqliteConfig) -> Result<Self, StoreError> {
        let dir = &config.data_dir;
        let open_err = |reason: String| StoreError::Open {
            path: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| open_err(e.to_string()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: dir.display().to_string(),
                })
            }
            Err(TryLockError::Error(e)) => return Err(open_err(e.to_string())),
        }

        let path = dir.join(DB_FILE);
        let writer =
            open_writer(&path, config.max_size_bytes).map_err(|e| open_err(e.to_string()))?;
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(c)
        })
        .map_err(|e| open_err(e.to_string()))?;

        let (jobs, rx) = mpsc::channel(config.queue_capacity.max(1));
        let healthy = Arc::new(AtomicBool::new(true));
        let writer_healthy = healthy.clone();
        let max_group = config.max_group_events.max(1);
        let background = config.background.clone();
        thread::Builder::new()
            .name("footfall-sqlite-writer".into())
            .spawn(move || run_writer(writer, rx, writer_healthy, max_group, background))
            .map_err(|e| open_err(e.to_string()))?;

        let interrupt = Arc::new(reader.get_interrupt_handle());
        Ok(SqliteStore {
            jobs,
            interrupt,
            reader: Arc::new(Mutex::new(reader)),
            healthy,
            path,
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The visitor-hash salt of a UTC day: created on first use, and the salt of every day
    /// that is over is deleted at that moment, so it cannot be recovered afterwards. (Asking
    /// for tomorrow's ahead of midnight keeps today's.)
    pub async fn daily_salt(&self, day: i64) -> Result<Salt, StoreError> {
        self.send_job(|reply| WriteJob::Salt { day, reply }).await
    }

    /// Hands a job to the writer thread and waits for its answer.
    async fn send_job<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> WriteJob,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(job(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a small write on the writer thread (the one connection that writes).
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(move |conn: &Connection| {
            let _ = reply.send(f(conn).map_err(|e| backend(&e)));
        });
        self.jobs
            .send(WriteJob::Run(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        let read = tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(PoisonError::into_inner);
            f(&conn).map_err(|e| backend(&e))
        });
        match tokio::time::timeout(READ_DEADLINE, read).await {
            Ok(joined) => {
                joined.map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
            }
            Err(_) => {
                // The blocking task stops at SQLite's next check; its answer is dropped.
                self.interrupt.interrupt();
                Err(StoreError::TimedOut(READ_DEADLINE))
            }
        }
    }
}

/// Makes the store file at `path` what footfall wrote before schema 5, for upgrade tests:
/// `events`' stored documents become JSON text, and the file says schema 4.
#[cfg(feature = "test-util")]
pub fn rewrite_as_schema_4(path: &Path, events: &[Event]) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    for e in events {
        let json = protocol::event::encode(e)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(e.event_id.clone()))?;
        conn.execute(
            "UPDATE events SET doc = ?1 WHERE event_id = ?2",
            params![json, e.event_id],
        )?;
    }
    conn.execute_batch("PRAGMA user_version = 4;")
}

fn open_writer(path: &Path, max_size_bytes: Option<u64>) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL: readers never block the writer. FULL: every commit fsyncs the WAL, which is what
    // lets the collector say 2xx.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The WAL is reused after each checkpoint, at the size its largest transaction made it;
    // past this it is cut back, so one large batch does not hold disk for good.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "database schema version {version} is newer than this footfall ({SCHEMA_VERSION}); upgrade footfall"
        )));
    }
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(facts::SCHEMA)?;
    if version < 2 {
        backfill_rollups(&mut conn)?;
    }
    if version < 3 {
        start_registry(&conn)?;
    }
    if version < 4 {
        slim_events(&mut conn)?;
        backfill_facts(&mut conn)?;
    }
    if version < SCHEMA_VERSION {
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    if let Some(max) = max_size_bytes {
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages = (max / page_size.max(512) as u64).max(1);
        // SQLite answers SQLITE_FULL past this, exactly like a full disk.
        conn.pragma_update(None, "max_page_count", pages as i64)?;
    }
    Ok(conn)
}

/// A file from before rollups existed: build them once from its events, in one transaction.
fn backfill_rollups(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let events: Vec<Event> = {
        let mut stmt = tx.prepare("SELECT doc FROM events")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            match protocol::compact::decode_stored(row.get_ref(0)?.as_bytes()?) {
                Ok(e) => out.push(e),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable stored event"),
            }
        }
        out
    };
    if !events.is_empty() {
        tracing::info!(
            events = events.len(),
            "building rollups for an older database"
        );
        write_increments(&tx, &Increments::of(&events), &KnownRegisters::default())?;
    }
    tx.commit()
}

/// The registry of a new file holds the built-in sites; an older file's also every site it
/// has data for, so an upgrade keeps accepting the sites it was collecting.
fn start_registry(conn: &Connection) -> rusqlite::Result<()> {
    let now = now_ms();
    for site in protocol::sites::BUILT_IN_SITES {
        conn.execute(
            "INSERT OR IGNORE INTO known_sites (site, added_at) VALUES (?1, ?2)",
            params![site, now],
        )?;
    }
    conn.execute(
        "INSERT OR IGNORE INTO known_sites (site, added_at) SELECT site, last_seen FROM sites",
        [],
    )?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn register(conn: &Connection, site: &RegisteredSite) -> rusqlite::Result<bool> {
    conn.execute(
        "INSERT OR IGNORE INTO known_sites (site, added_at) VALUES (?1, ?2)",
        params![site.site, site.added_at],
    )
    .map(|n| n == 1)
}

fn unregister(conn: &Connection, site: &str) -> rusqlite::Result<bool> {
    conn.execute("DELETE FROM known_sites WHERE site = ?1", params![site])
        .map(|n| n == 1)
}

fn registered(conn: &Connection) -> rusqlite::Result<Vec<RegisteredSite>> {
    let mut stmt = conn.prepare_cached("SELECT site, added_at FROM known_sites ORDER BY site")?;
    let rows = stmt.query_map([], |r| {
        Ok(RegisteredSite {
            site: r.get(0)?,
            added_at: r.get(1)?,
        })
    })?;
    rows.collect()
}

/// The site registry of a data folder, for `footfall sites ...`: it works whether or not a
/// `footfall standalone` is running on the folder (SQLite serialises the writes; the running
/// process picks the change up within seconds), so it does not take the folder's lock.
pub struct SqliteSites {
    conn: Connection,
}

impl SqliteSites {
    /// Opens (creating if needed) the store file in `data_dir`.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the folder or file cannot be created or is not a Footfall
    /// database.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: data_dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(data_dir).map_err(|e| open_err(e.to_string()))?;
        let conn =
            open_writer(&data_dir.join(DB_FILE), None).map_err(|e| open_err(e.to_string()))?;
        Ok(SqliteSites { conn })
    }

    pub fn list(&self) -> Result<Vec<RegisteredSite>, StoreError> {
        registered(&self.conn).map_err(|e| backend(&e))
    }

    /// `Ok(false)` when the site was registered already.
    pub fn add(&self, site: &str) -> Result<bool, StoreError> {
        let site = RegisteredSite {
            site: site.to_string(),
            added_at: now_ms(),
        };
        register(&self.conn, &site).map_err(|e| backend(&e))
    }

    /// `Ok(false)` when the site was not registered.
    pub fn remove(&self, site: &str) -> Result<bool, StoreError> {
        unregister(&self.conn, site).map_err(|e| backend(&e))
    }
}

/// A file from before schema 4 has a column per event field beside the document, each a copy
/// nobody reads (a long path was stored twice): keep the id and the document only.
fn slim_events(conn: &mut Connection) -> rusqlite::Result<()> {
    let wide = conn
        .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = 'path'")?
        .exists([])?;
    if !wide {
        return Ok(());
    }
    let tx = conn.transaction()?;
    tx.execute_batch(
        "DROP INDEX IF EXISTS events_site_ts;
         CREATE TABLE events_slim (
             seq      INTEGER PRIMARY KEY,
             event_id TEXT    NOT NULL UNIQUE,
             doc      TEXT    NOT NULL
         );
         INSERT INTO events_slim (seq, event_id, doc) SELECT seq, event_id, doc FROM events;
         DROP TABLE events;
         ALTER TABLE events_slim RENAME TO events;",
    )?;
    tx.commit()
}

/// A file from before visits and facts existed: build them once from its events (in their
/// stored order), in one transaction, and drop the index the fact table replaces.
fn backfill_facts(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let events: Vec<(i64, Event)> = {
        let mut stmt = tx.prepare("SELECT seq, doc FROM events ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            match protocol::compact::decode_stored(row.get_ref(1)?.as_bytes()?) {
                Ok(e) => out.push((row.get::<_, i64>(0)?, e)),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable stored event"),
            }
        }
        out
    };
    if !events.is_empty() {
        tracing::info!(
            events = events.len(),
            "building visits and facts for an older database"
        );
        let fresh: Vec<(i64, &Event)> = events.iter().map(|(s, e)| (*s, e)).collect();
        facts::write(&tx, &mut Dict::default(), &fresh)?;
    }
    tx.execute_batch("DROP INDEX IF EXISTS events_site_ts")?;
    tx.commit()
}

/// Sketch registers this writer knows to be stored with at least a given rank, for the
/// buckets it wrote last. Merging a register is a maximum, so an upsert whose rank is not
/// above the known one changes nothing and is skipped: after the first few commits of a
/// bucket, most new visitors and sessions raise no register at all. Only committed ranks are
/// learned ([`KnownRegisters::learn`] runs after the commit), so a known rank is never above
/// the stored one; bounded to [`KNOWN_BUCKETS_MAX`] buckets (4 KB each), oldest dropped first.
#[derive(Default)]
struct KnownRegisters {
    buckets: FastMap<String, SiteRegisters>,
    len: usize,
}

const KNOWN_BUCKETS_MAX: usize = 512;

/// One site's known registers: per (resolution, bucket start, sketch), all its registers.
type SiteRegisters = FastMap<(Res, i64, Sketch), Box<[u8]>>;

impl KnownRegisters {
    fn known(&self, k: &RegisterKey<'_>) -> u8 {
        self.buckets
            .get(k.site)
            .and_then(|b| b.get(&(k.res, k.bucket, k.sketch)))
            .and_then(|regs| regs.get(usize::from(k.register)))
            .copied()
            .unwrap_or(0)
    }

    fn learn(&mut self, registers: &[(RegisterKey<'_>, u8)]) {
        for (k, rank) in registers {
            let site = match self.buckets.get_mut(k.site) {
                Some(site) => site,
                None => self.buckets.entry(k.site.to_string()).or_default(),
            };
            let regs = site.entry((k.res, k.bucket, k.sketch)).or_insert_with(|| {
                self.len += 1;
                vec![0u8; rollup::HLL_REGISTERS].into_boxed_slice()
            });
            if let Some(r) = regs.get_mut(usize::from(k.register)) {
                *r = (*r).max(*rank);
            }
        }
        if self.len > KNOWN_BUCKETS_MAX {
            self.forget_oldest();
        }
    }

    /// Keeps the newest three quarters of the buckets.
    fn forget_oldest(&mut self) {
        let mut starts: Vec<i64> = self
            .buckets
            .values()
            .flat_map(|b| b.keys().map(|(_, start, _)| *start))
            .collect();
        starts.sort_unstable();
        let cut = starts[starts.len() - KNOWN_BUCKETS_MAX * 3 / 4];
        for site in self.buckets.values_mut() {
            site.retain(|(_, start, _), _| *start >= cut);
        }
        self.buckets.retain(|_, b| !b.is_empty());
        self.len = self.buckets.values().map(FastMap::len).sum();
    }

    fn forget_all(&mut self) {
        self.buckets.clear();
        self.len = 0;
    }
}

/// One upsert per distinct counter and per register that may rise (see [`KnownRegisters`]).
fn write_increments(
    tx: &rusqlite::Transaction<'_>,
    inc: &Increments<'_>,
    known: &KnownRegisters,
) -> rusqlite::Result<()> {
    let mut count = tx.prepare_cached(
        "INSERT INTO rollup_counts (site, res, bucket, dim, value, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (site, res, bucket, dim, value) DO UPDATE SET n = n + excluded.n",
    )?;
    let mut reg = tx.prepare_cached(
        "INSERT INTO rollup_hll (site, res, bucket, kind, reg, rank) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (site, res, bucket, kind, reg) DO UPDATE SET rank = max(rank, excluded.rank)",
    )?;
    for (k, n) in &inc.counts {
        count.execute(params![
            k.site,
            k.res.code(),
            k.bucket,
            k.dim.code(),
            k.value,
            *n as i64
        ])?;
    }
    for (k, rank) in &inc.registers {
        if *rank <= known.known(k) {
            continue;
        }
        reg.execute(params![
            k.site,
            k.res.code(),
            k.bucket,
            k.sketch as i64,
            k.register,
            rank
        ])?;
    }
    Ok(())
}

/// Calls `f` with each stored event of `site` with `from <= ts < to`, one at a time (a
/// document that no longer decodes is logged and skipped).
fn each_event_in(
    conn: &Connection,
    site: &str,
    from: i64,
    to: i64,
    mut f: impl FnMut(Event),
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(EVENTS_IN_RANGE)?;
    let mut rows = stmt.query(params![site, from, to])?;
    while let Some(row) = rows.next()? {
        match protocol::compact::decode_stored(row.get_ref(0)?.as_bytes()?) {
            Ok(e) => f(e),
            Err(e) => tracing::warn!(error = %e, "skipping an unreadable stored event"),
        }
    }
    Ok(())
}

fn run_writer(
    mut conn: Connection,
    mut rx: mpsc::Receiver<WriteJob>,
    healthy: Arc<AtomicBool>,
    max_group: usize,
    background: Option<Background>,
) {
    let mut known = KnownRegisters::default();
    let mut dict = Dict::default();
    while let Some(first) = rx.blocking_recv() {
        if let Some(background) = &background {
            background.apply();
        }
        let mut inserts = Vec::new();
        let mut pending = Some(first);
        let mut queued = 0usize;
        // Gather everything already waiting (up to the cap) into one transaction.
        while let Some(job) = pending.take() {
            match job {
                WriteJob::Insert(job) => {
                    queued += job.batch.len();
                    inserts.push(job);
                }
                WriteJob::Salt { day, reply } => {
                    let _ = reply.send(salt_for_day(&conn, day).map_err(|e| backend(&e)));
                }
                WriteJob::Run(job) => job(&conn),
            }
            if queued < max_group {
                pending = rx.try_recv().ok();
            }
        }
        if inserts.is_empty() {
            continue;
        }
        match write_group(&mut conn, &mut dict, &inserts, &mut known) {
            Ok(outcomes) => {
                healthy.store(true, Ordering::Relaxed);
                for (job, outcome) in inserts.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                // Rolled back: what it would have taught is not stored.
                known.forget_all();
                // Ids the rolled-back transaction created are gone with it.
                dict.reset();
                healthy.store(false, Ordering::Relaxed);
                tracing::error!(error = %e, events = queued, "group commit failed; callers will retry");
                for job in inserts {
                    let _ = job.reply.send(Err(backend(&e)));
                }
            }
        }
    }
    tracing::debug!("sqlite writer stopped");
}

/// One caller's insert: its events, and their documents (compact form) encoded by the
/// caller into one buffer so the single writer thread spends its time on SQLite only. Event
/// `i`'s document is `docs[ends[i - 1]..ends[i]]`.
struct InsertJob {
    batch: EventBatch,
    docs: Vec<u8>,
    ends: Vec<usize>,
    reply: oneshot::Sender<Result<InsertOutcome, StoreError>>,
}

impl InsertJob {
    fn doc(&self, index: usize) -> Option<&[u8]> {
        let start = if index == 0 {
            0
        } else {
            *self.ends.get(index - 1)?
        };
        self.docs.get(start..*self.ends.get(index)?)
    }
}

fn write_group(
    conn: &mut Connection,
    dict: &mut Dict,
    jobs: &[InsertJob],
    known: &mut KnownRegisters,
) -> rusqlite::Result<Vec<InsertOutcome>> {
    let tx = conn.transaction()?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    // Only events stored for the first time feed the rollups, facts and visits, in the same
    // transaction, so they can never disagree with the events and redelivery never double
    // counts.
    let mut fresh: Vec<(i64, &Event)> = Vec::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (event_id, doc) VALUES (?1, ?2) ON CONFLICT (event_id) DO NOTHING",
        )?;
        // Per-site counters are summed in memory and written once per site per commit.
        let mut per_site: FastMap<&str, (i64, i64)> = FastMap::default();
        for job in jobs {
            let mut outcome = InsertOutcome::default();
            for (index, e) in job.batch.iter().enumerate() {
                let doc = job.doc(index).ok_or_else(|| {
                    rusqlite::Error::InvalidParameterName(format!(
                        "no encoded document for event {index} of a batch"
                    ))
                })?;
                let changed = insert.execute(params![e.event_id, doc])?;
                if changed == 1 {
                    outcome.inserted += 1;
                    outcome.fresh.push(index);
                    fresh.push((tx.last_insert_rowid(), e));
                    let entry = per_site.entry(e.site.as_str()).or_insert((0, 0));
                    entry.0 += 1;
                    entry.1 = entry.1.max(e.received_at);
                } else {
                    outcome.duplicates += 1;
                }
            }
            outcomes.push(outcome);
        }
        let mut site = tx.prepare_cached(
            "INSERT INTO sites (site, events, last_seen) VALUES (?1, ?2, ?3)
             ON CONFLICT (site) DO UPDATE SET events = events + excluded.events,
                                              last_seen = max(last_seen, excluded.last_seen)",
        )?;
        for (name, (count, last_seen)) in per_site {
            site.execute(params![name, count, last_seen])?;
        }
    }
    let increments = Increments::of(fresh.iter().map(|(_, e)| *e));
    write_increments(&tx, &increments, known)?;
    facts::write(&tx, dict, &fresh)?;
    tx.commit()?;
    known.learn(&increments.registers);
    Ok(outcomes)
}

fn salt_for_day(conn: &Connection, day: i64) -> rusqlite::Result<Salt> {
    // Salts of days that are over go first: once a day has passed, its salt is gone for good.
    // Today's stays when tomorrow's is made ahead of midnight.
    let today = protocol::visitor::day_of(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    );
    conn.execute("DELETE FROM salts WHERE day < ?1", params![day.min(today)])?;
    let existing: Option<Vec<u8>> = conn
        .query_row("SELECT salt FROM salts WHERE day = ?1", params![day], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(bytes) = existing.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
        return Ok(Salt::from_bytes(bytes));
    }
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    conn.execute(
        "INSERT OR REPLACE INTO salts (day, salt) VALUES (?1, ?2)",
        params![day, bytes.as_slice()],
    )?;
    Ok(Salt::from_bytes(bytes))
}

impl Store for SqliteStore {
    fn insert_batch(&self, events: EventBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(InsertOutcome::default());
            }
            let mut docs = Vec::with_capacity(events.len() * 160);
            let mut ends = Vec::with_capacity(events.len());
            for e in events.iter() {
                protocol::compact::encode_into(&mut docs, e);
                ends.push(docs.len());
            }
            let (reply, answer) = oneshot::channel();
            let job = InsertJob {
                batch: events,
                docs,
                ends,
                reply,
            };
            self.jobs
                .try_send(WriteJob::Insert(job))
                .map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                    mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
                })?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn read_rollups(
        &self,
        site: String,
        runs: Vec<Run>,
        sketches: bool,
    ) -> BoxFuture<'_, Result<Vec<Bucket>, StoreError>> {
        Box::pin(self.read(move |conn| {
            let mut buckets: BTreeMap<(Res, i64), Rollup> = BTreeMap::new();
            let mut counts = conn.prepare_cached(
                "SELECT bucket, dim, value, n FROM rollup_counts
                 WHERE site = ?1 AND res = ?2 AND bucket >= ?3 AND bucket < ?4",
            )?;
            let mut regs = conn.prepare_cached(
                "SELECT bucket, kind, reg, rank FROM rollup_hll
                 WHERE site = ?1 AND res = ?2 AND bucket >= ?3 AND bucket < ?4",
            )?;
            for run in &runs {
                let args = params![site, run.res.code(), run.from, run.to];
                let mut rows = counts.query(args)?;
                while let Some(row) = rows.next()? {
                    let Some(dim) = Dimension::from_code(&row.get::<_, String>(1)?) else {
                        continue;
                    };
                    let n = row.get::<_, i64>(3)?.max(0) as u64;
                    *buckets
                        .entry((run.res, row.get(0)?))
                        .or_default()
                        .counts
                        .entry((dim, row.get(2)?))
                        .or_insert(0) += n;
                }
                if !sketches {
                    continue;
                }
                let mut rows = regs.query(args)?;
                while let Some(row) = rows.next()? {
                    let b = buckets.entry((run.res, row.get(0)?)).or_default();
                    let sketch = if row.get::<_, i64>(1)? == 0 {
                        &mut b.visitors
                    } else {
                        &mut b.sessions
                    };
                    let (reg, rank) = (row.get::<_, i64>(2)?, row.get::<_, i64>(3)?);
                    if let (Ok(reg), Ok(rank)) = (u16::try_from(reg), u8::try_from(rank)) {
                        sketch.set(reg, rank);
                    }
                }
            }
            Ok(buckets
                .into_iter()
                .map(|((res, start), rollup)| Bucket { res, start, rollup })
                .collect())
        }))
    }

    fn read_events(
        &self,
        site: String,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Vec<Event>, StoreError>> {
        Box::pin(self.read(move |conn| {
            let mut out = Vec::new();
            each_event_in(conn, &site, from, to, |e| out.push(e))?;
            Ok(out)
        }))
    }

    /// One event in memory at a time: a minute can hold a burst of them.
    fn edge_rollup(
        &self,
        site: String,
        from: i64,
        to: i64,
    ) -> BoxFuture<'_, Result<Rollup, StoreError>> {
        Box::pin(self.read(move |conn| {
            let mut rollup = Rollup::default();
            each_event_in(conn, &site, from, to, |e| rollup.add_event(&e))?;
            Ok(rollup)
        }))
    }

    fn sites(&self) -> BoxFuture<'_, Result<Vec<SiteActivity>, StoreError>> {
        Box::pin(self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT site, events, last_seen FROM sites ORDER BY last_seen DESC LIMIT 1000",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(SiteActivity {
                        site: r.get(0)?,
                        events: r.get::<_, i64>(1)? as u64,
                        last_seen: r.get(2)?,
                    })
                })?
                .collect();
            rows
        }))
    }

    fn registered_sites(&self) -> BoxFuture<'_, Result<Vec<RegisteredSite>, StoreError>> {
        Box::pin(self.read(registered))
    }

    fn register_site(&self, site: RegisteredSite) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.write(move |conn| register(conn, &site)))
    }

    fn unregister_site(&self, site: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.write(move |conn| unregister(conn, &site)))
    }

    fn is_ready(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.jobs.is_closed() && self.jobs.capacity() > 0
    }

    fn event_stats(
        &self,
        scope: Scope,
        grouping: Grouping,
    ) -> BoxFuture<'_, Result<Vec<(GroupKey, EventAgg)>, StoreError>> {
        Box::pin(self.read(move |conn| facts::event_stats(conn, &scope, &grouping)))
    }

    fn visit_stats(
        &self,
        scope: Scope,
        grouping: Grouping,
    ) -> BoxFuture<'_, Result<Vec<(GroupKey, VisitAgg)>, StoreError>> {
        Box::pin(self.read(move |conn| facts::visit_stats(conn, &scope, &grouping)))
    }

    fn export_page(
        &self,
        site: String,
        from: i64,
        to: i64,
        after: Option<ExportCursor>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<(ExportCursor, String)>, StoreError>> {
        Box::pin(
            self.read(move |conn| facts::export_page(conn, &site, from, to, after.as_ref(), limit)),
        )
    }

    fn records(
        &self,
        kind: RecordKind,
        site: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        Box::pin(self.read(move |conn| facts::records(conn, kind, site.as_deref())))
    }

    fn record(
        &self,
        kind: RecordKind,
        id: String,
    ) -> BoxFuture<'_, Result<Option<Record>, StoreError>> {
        Box::pin(self.read(move |conn| facts::record(conn, kind, &id)))
    }

    fn put_record(&self, record: Record) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.write(move |conn| facts::put_record(conn, &record)))
    }

    fn delete_record(
        &self,
        kind: RecordKind,
        site: String,
        id: String,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.write(move |conn| facts::delete_record(conn, kind, &site, &id)))
    }
}
