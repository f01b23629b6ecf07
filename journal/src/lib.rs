//! The embedded journal: a durable, append-only log on local disk with one consumer —
//! standalone's queue between the collector and the store.
//!
//! The collector's 2xx promises that the events are on disk, not that they are indexed. So an
//! append is answered as soon as its record is written and `fdatasync`ed, one sync for every
//! append waiting at that moment (group commit), and the store takes the records afterwards at
//! its own pace, the way a processor reads Kafka. A burst is absorbed at the speed of one
//! sequential file, not at the speed of the store's indexes; the store catches up behind it.
//! The consumer commits a position only once the store has what lies before it, so a crash
//! anywhere can only make records be read again (the store ignores repeated event ids).
//!
//! On disk: segment files `<position>.log` in one folder, each named by the position of its
//! first byte (a position is a byte offset into the whole log, so it only grows). A record is
//! `[payload length: u32 LE][CRC-32 of the payload: u32 LE][payload]`; payloads are never
//! empty, so a zero header marks where a segment's records end. The writer zero-fills a
//! segment 256 KiB ahead of its records: overwriting blocks that exist lets a sync flush
//! data only, not also the file's size (a third less time per sync on ext4, measured), and
//! the group commit cycle is one sync long. `consumer.pos` keeps the consumer's committed
//! position; it is a hint (a stale or unreadable one only means records are read again), so
//! it is renamed into place without a sync. Unix only (positional writes).
//!
//! Invariants:
//! - The reader never reads past the durable end: what it hands out is on disk.
//! - A segment is deleted only once the committed position is past its last byte.
//! - On open, the last segment is checked record by record; a tail that does not check out is
//!   a write a crash cut off before its sync returned, so it was never acknowledged, and it is
//!   cut off.
//! - Appends are refused ([`JournalError::Full`]) while more than `max_backlog_bytes` wait
//!   for the consumer, so a store that has stopped cannot make the journal fill the disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use tokio::sync::{mpsc, oneshot, Notify};

/// Length and checksum in front of every payload.
const HEADER: usize = 8;
/// Largest payload of one record; longer appends are refused (collector bodies are far
/// smaller), and a header claiming more marks a damaged tail.
pub const MAX_RECORD: usize = 16 * 1024 * 1024;
/// How far ahead of its records a segment is zero-filled.
const ZERO_AHEAD: u64 = 256 * 1024;
/// A segment at least this large whose every record the consumer has committed is closed:
/// at once when that commit took everything ([`Writer::tidy`], which deletes it too), else at
/// the next append, and the consumer's next commit deletes it. While the store keeps up, the
/// journal holds little more than this on disk.
const ROLL_WHEN_CONSUMED: u64 = 1024 * 1024;
const CONSUMER_FILE: &str = "consumer.pos";
const SEGMENT_SUFFIX: &str = ".log";
/// Appends that may wait for the writer thread before `append` waits for room.
const QUEUE: usize = 8192;

#[derive(Debug, Clone)]
pub struct JournalConfig {
    pub dir: PathBuf,
    /// A new segment is started once the current one holds this much.
    pub segment_bytes: u64,
    /// Most bytes appended but not yet committed by the consumer; past it appends are refused.
    pub max_backlog_bytes: u64,
    /// Most bytes written by one group commit.
    pub max_group_bytes: usize,
}

impl JournalConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JournalConfig {
            dir: dir.into(),
            segment_bytes: 8 * 1024 * 1024,
            max_backlog_bytes: 1024 * 1024 * 1024,
            max_group_bytes: 8 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("{backlog} journal bytes wait for the store (limit {limit})")]
    Full { backlog: u64, limit: u64 },
    #[error("a record of {0} bytes is larger than a journal record may be")]
    TooLarge(usize),
    #[error("an empty record cannot be appended")]
    Empty,
    #[error("journal I/O failed: {0}")]
    Io(String),
    #[error("the journal at {path} is damaged: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("the journal is closed")]
    Closed,
}

fn io_error(e: io::Error) -> JournalError {
    JournalError::Io(e.to_string())
}

/// One record as read back: its payload and the position just past it (what to commit once
/// it is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub end: u64,
    pub payload: Vec<u8>,
}

/// State both ends see. Lock-free where an append or the writer reads it: in standalone the
/// consumer runs at the lowest CPU share during a burst, and a lock it held while preempted
/// would stall the writer, and every append behind it, until a CPU fell idle.
struct Shared {
    /// Position up to which everything is written and synced.
    durable: Position,
    /// Position up to which the consumer has committed.
    committed: Position,
    /// False after a failed write, true again after the next good one.
    healthy: AtomicBool,
    max_backlog: u64,
}

impl Shared {
    fn backlog(&self) -> u64 {
        self.durable.get().saturating_sub(self.committed.get())
    }
}

/// A position that only grows, and a way to wait for it. Reading and advancing it take no
/// lock; advancing takes [`Notify`]'s only while somebody waits.
struct Position {
    at: AtomicU64,
    changed: Notify,
    waiters: AtomicUsize,
}

impl Position {
    fn new(at: u64) -> Self {
        Position {
            at: AtomicU64::new(at),
            changed: Notify::new(),
            waiters: AtomicUsize::new(0),
        }
    }

    fn get(&self) -> u64 {
        self.at.load(Ordering::SeqCst)
    }

    fn advance_to(&self, at: u64) {
        self.at.fetch_max(at, Ordering::SeqCst);
        // SeqCst with `wait_until`'s: either it sees this position, or this sees its waiter.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.changed.notify_waiters();
        }
    }

    async fn wait_until(&self, done: impl Fn(u64) -> bool) {
        /// Counts a waiter for as long as it waits, also when its future is dropped.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        while !done(self.get()) {
            // Created before the count goes up, so it receives every `notify_waiters` after.
            let changed = self.changed.notified();
            self.waiters.fetch_add(1, Ordering::SeqCst);
            let _waiting = Waiting(&self.waiters);
            if done(self.get()) {
                return;
            }
            changed.await;
        }
    }
}

struct Append {
    record: Vec<u8>,
    reply: oneshot::Sender<Result<u64, JournalError>>,
}

/// What the writer thread is asked to do.
enum Job {
    Append(Append),
    /// The consumer has taken everything: close and delete the segment if it is worth it, as
    /// the next append would (see [`Writer::tidy`]).
    Tidy,
}

/// The appending end. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    appends: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

/// Opens (creating if needed) the journal in `config.dir`, cuts off a torn tail, and starts
/// its writer thread. The reader starts at the consumer's committed position.
///
/// # Errors
/// [`JournalError::Io`] when the folder or a segment cannot be created, opened or repaired.
pub fn open(config: JournalConfig) -> Result<(Journal, JournalReader), JournalError> {
    let dir = config.dir.clone();
    fs::create_dir_all(&dir).map_err(io_error)?;
    let hint = read_consumer_hint(&dir);
    let mut segments = list_segments(&dir).map_err(io_error)?;
    if segments.is_empty() {
        let base = hint.unwrap_or(0);
        create_segment(&dir, base).map_err(io_error)?;
        segments.push(base);
    }
    let first = segments[0];
    let last = *segments.last().unwrap_or(&first);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment_path(&dir, last))
        .map_err(io_error)?;
    let valid = checked_length(&mut file).map_err(io_error)?;
    let length = file.metadata().map_err(io_error)?.len();
    if length > valid {
        // Zeros written ahead, and maybe the end of a write a crash interrupted before its
        // sync returned (so it was never acknowledged): cut both off, zeros come back.
        tracing::debug!(
            segment = %segment_path(&dir, last).display(),
            bytes = length - valid,
            "cutting the journal's last segment back to its last whole record"
        );
        file.set_len(valid).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
    }
    let durable_end = last + valid;
    let start = match hint {
        Some(p) if (first..=durable_end).contains(&p) => p,
        // Older than the oldest segment: what lay between was stored before it was deleted.
        _ => first,
    };

    let shared = Arc::new(Shared {
        durable: Position::new(durable_end),
        committed: Position::new(start),
        healthy: AtomicBool::new(true),
        max_backlog: config.max_backlog_bytes,
    });
    let (appends, rx) = mpsc::channel(QUEUE);
    let writer = Writer {
        dir: dir.clone(),
        file,
        base: last,
        len: valid,
        zeroed: valid,
        zeros: vec![0u8; ZERO_AHEAD as usize],
        broken: false,
        segment_bytes: config.segment_bytes.max(1),
    };
    let writer_shared = shared.clone();
    let max_group = config.max_group_bytes.max(1);
    thread::Builder::new()
        .name("footfall-journal".into())
        .spawn(move || writer.run(rx, &writer_shared, max_group))
        .map_err(io_error)?;

    let reader = JournalReader {
        dir,
        writer: appends.downgrade(),
        shared: shared.clone(),
        position: start,
        segment: None,
    };
    Ok((Journal { appends, shared }, reader))
}

impl Journal {
    /// Writes `record` and returns once it is synced to disk, with the position just past it.
    ///
    /// # Errors
    /// [`JournalError::Full`] while the consumer is too far behind, [`JournalError::TooLarge`]
    /// and [`JournalError::Empty`] for what cannot be a record, [`JournalError::Io`] when the
    /// write or sync failed (nothing was promised).
    pub async fn append(&self, record: Vec<u8>) -> Result<u64, JournalError> {
        if record.len() > MAX_RECORD {
            return Err(JournalError::TooLarge(record.len()));
        }
        if record.is_empty() {
            return Err(JournalError::Empty);
        }
        let backlog = self.shared.backlog();
        if backlog > self.shared.max_backlog {
            return Err(JournalError::Full {
                backlog,
                limit: self.shared.max_backlog,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.appends
            .send(Job::Append(Append { record, reply }))
            .await
            .map_err(|_| JournalError::Closed)?;
        answer.await.map_err(|_| JournalError::Closed)?
    }

    /// Whether an append would be taken now: the last write succeeded and the backlog has room.
    pub fn is_ready(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
            && self.shared.backlog() <= self.shared.max_backlog
    }

    /// Position up to which everything appended is on disk.
    pub fn durable_end(&self) -> u64 {
        self.shared.durable.get()
    }

    /// Position up to which the consumer has committed.
    pub fn committed(&self) -> u64 {
        self.shared.committed.get()
    }

    /// Bytes on disk the consumer has not committed yet.
    pub fn backlog(&self) -> u64 {
        self.shared.backlog()
    }

    /// Resolves once something past `position` is on disk.
    pub async fn wait_durable_past(&self, position: u64) {
        self.shared.durable.wait_until(|end| end > position).await;
    }

    /// Resolves once the consumer has committed `position`.
    pub async fn wait_committed(&self, position: u64) {
        self.shared.committed.wait_until(|c| c >= position).await;
    }
}

/// The writer thread's side: the last segment, appended to.
struct Writer {
    dir: PathBuf,
    file: File,
    /// Position of the segment's first byte.
    base: u64,
    /// Bytes of the segment that are written and synced.
    len: u64,
    /// Bytes of the segment that exist on disk (records, then zeros).
    zeroed: u64,
    /// [`ZERO_AHEAD`] zeros, written ahead of the records.
    zeros: Vec<u8>,
    /// A failed write could not be cut off again: nothing more may follow it.
    broken: bool,
    segment_bytes: u64,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>, shared: &Shared, max_group: usize) {
        let mut buffer = Vec::with_capacity(max_group.min(1024 * 1024));
        // Each waiting append, with the end of its record in `buffer`.
        let mut group: Vec<(oneshot::Sender<Result<u64, JournalError>>, usize)> = Vec::new();
        while let Some(job) = rx.blocking_recv() {
            let first = match job {
                Job::Append(append) => append,
                Job::Tidy => {
                    self.tidy(shared.committed.get());
                    continue;
                }
            };
            buffer.clear();
            let mut next = Some(first);
            // Everything already waiting (up to the cap) goes out with one write and one sync.
            while let Some(append) = next.take() {
                let len = u32::try_from(append.record.len()).unwrap_or(u32::MAX);
                buffer.extend_from_slice(&len.to_le_bytes());
                buffer.extend_from_slice(&crc32fast::hash(&append.record).to_le_bytes());
                buffer.extend_from_slice(&append.record);
                group.push((append.reply, buffer.len()));
                if buffer.len() < max_group {
                    next = loop {
                        match rx.try_recv() {
                            Ok(Job::Append(append)) => break Some(append),
                            // Moot here: the write below rolls a segment the consumer took.
                            Ok(Job::Tidy) => {}
                            Err(_) => break None,
                        }
                    };
                }
            }
            let consumed = shared.committed.get();
            match self.write_group(&buffer, consumed) {
                Ok(start) => {
                    shared.durable.advance_to(start + buffer.len() as u64);
                    shared.healthy.store(true, Ordering::Relaxed);
                    for (reply, end) in group.drain(..) {
                        let _ = reply.send(Ok(start + end as u64));
                    }
                }
                Err(e) => {
                    shared.healthy.store(false, Ordering::Relaxed);
                    tracing::error!(error = %e, bytes = buffer.len(), "journal write failed; callers will retry");
                    let error = io_error(e);
                    for (reply, _) in group.drain(..) {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        }
        tracing::debug!("journal writer stopped");
    }

    /// Writes and syncs `bytes` at the end of the log; returns the position they start at.
    /// `consumed`: the consumer's committed position.
    fn write_group(&mut self, bytes: &[u8], consumed: u64) -> io::Result<u64> {
        if self.broken {
            return Err(io::Error::other(
                "an earlier failed write could not be cut off; restart to repair the journal",
            ));
        }
        let full = self.len > 0 && self.len + bytes.len() as u64 > self.segment_bytes;
        if full || self.worth_closing(consumed) {
            self.roll()?;
        }
        let end = self.len + bytes.len() as u64;
        let written = self
            .zero_ahead(end)
            .and_then(|()| self.file.write_all_at(bytes, self.len))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Whatever part of it reached the file must not be taken for records: zero it.
            let zeros = vec![0u8; bytes.len()];
            if self
                .file
                .write_all_at(&zeros, self.len)
                .and_then(|()| self.file.sync_data())
                .is_err()
            {
                self.broken = true;
            }
            return Err(e);
        }
        let start = self.base + self.len;
        self.len += bytes.len() as u64;
        Ok(start)
    }

    /// Closes the segment once the consumer has taken all of it (and it holds at least
    /// [`ROLL_WHEN_CONSUMED`]) and deletes it: without it a journal gone quiet after a burst
    /// would keep the burst's last segment until the next append. `consumed`: the consumer's
    /// committed position.
    fn tidy(&mut self, consumed: u64) {
        if self.broken || !self.worth_closing(consumed) {
            return;
        }
        let taken = self.base;
        let closed = self
            .roll()
            .and_then(|()| fs::remove_file(segment_path(&self.dir, taken)));
        if let Err(e) = closed {
            tracing::warn!(error = %e, "cannot close a journal segment the store has taken");
        }
    }

    /// Whether the segment holds at least [`ROLL_WHEN_CONSUMED`] and the consumer has
    /// committed all of it (`consumed`: its committed position).
    fn worth_closing(&self, consumed: u64) -> bool {
        self.len >= ROLL_WHEN_CONSUMED && consumed >= self.base + self.len
    }

    /// Makes sure the segment exists up to `end`, zero-filling [`ZERO_AHEAD`] beyond it when
    /// it does not (synced with the records that follow).
    fn zero_ahead(&mut self, end: u64) -> io::Result<()> {
        if end <= self.zeroed {
            return Ok(());
        }
        // Not past the segment's size, unless one group is larger.
        let target = (end + ZERO_AHEAD).min(self.segment_bytes.max(end));
        // One buffer for the writer's life: a fresh one each time was allocated, zeroed
        // and handed back to the system some fifty times a second under load.
        while self.zeroed < target {
            let chunk = (target - self.zeroed).min(ZERO_AHEAD) as usize;
            self.file.write_all_at(&self.zeros[..chunk], self.zeroed)?;
            self.zeroed += chunk as u64;
        }
        Ok(())
    }

    /// Starts the next segment where this one ends (this one is synced already, and cut back
    /// to its records, so a reader finds the file's end where the next segment begins).
    fn roll(&mut self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.sync_all()?;
        let base = self.base + self.len;
        self.file = create_segment(&self.dir, base)?;
        self.base = base;
        self.len = 0;
        self.zeroed = 0;
        Ok(())
    }
}

/// The consuming end: reads records in order from the committed position on.
pub struct JournalReader {
    dir: PathBuf,
    /// To ask for a [`Job::Tidy`]; weak, so the writer stops with the last [`Journal`].
    writer: mpsc::WeakSender<Job>,
    shared: Arc<Shared>,
    /// Position of the next record to read.
    position: u64,
    /// The segment being read, at `position`.
    segment: Option<BufReader<File>>,
}

impl JournalReader {
    /// Position of the next record to read.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Reads the records that are on disk from the current position on: at most
    /// `max_records`, and stopping once `max_bytes` of payload are read. Empty when the reader
    /// is at the durable end. Blocking (file reads).
    ///
    /// # Errors
    /// [`JournalError::Corrupt`] when a record below the durable end does not check out or a
    /// segment is missing, [`JournalError::Io`] when a read fails.
    pub fn read(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, JournalError> {
        let end = self.shared.durable.get();
        let mut records = Vec::new();
        let mut bytes = 0;
        while self.position < end && records.len() < max_records.max(1) && bytes < max_bytes {
            let record = self.read_one(end)?;
            bytes += record.payload.len();
            records.push(record);
        }
        Ok(records)
    }

    fn read_one(&mut self, end: u64) -> Result<Record, JournalError> {
        let mut moved_on = false;
        let payload = loop {
            match next_record(self.segment_reader()?).map_err(io_error)? {
                Next::Record(payload) => break payload,
                Next::End if !moved_on => {
                    // This segment is over: the next one starts exactly here.
                    self.segment = None;
                    moved_on = true;
                }
                Next::End => return Err(self.corrupt("no record where the synced log goes on")),
                Next::Damaged(reason) => return Err(self.corrupt(reason)),
            }
        };
        let record_end = self.position + (HEADER + payload.len()) as u64;
        if record_end > end {
            return Err(self.corrupt("a record reaches past what was synced"));
        }
        self.position = record_end;
        Ok(Record {
            end: record_end,
            payload,
        })
    }

    /// The reader of the segment holding `position`, opened and placed there if needed.
    fn segment_reader(&mut self) -> Result<&mut BufReader<File>, JournalError> {
        if self.segment.is_none() {
            let segments = list_segments(&self.dir).map_err(io_error)?;
            let Some(base) = segments.into_iter().rev().find(|b| *b <= self.position) else {
                return Err(self.corrupt("no segment holds the reader's position"));
            };
            let mut file = File::open(segment_path(&self.dir, base)).map_err(io_error)?;
            file.seek(SeekFrom::Start(self.position - base))
                .map_err(io_error)?;
            self.segment = Some(BufReader::with_capacity(256 * 1024, file));
        }
        self.segment.as_mut().ok_or(JournalError::Closed)
    }

    fn corrupt(&self, reason: &str) -> JournalError {
        JournalError::Corrupt {
            path: self.dir.display().to_string(),
            reason: format!("{reason} (at position {})", self.position),
        }
    }

    /// Records that everything before `position` is stored: remembers it for the next open
    /// and deletes the segments that lie wholly before it. Blocking (file system).
    ///
    /// # Errors
    /// [`JournalError::Io`] when the position cannot be written down.
    pub fn commit(&mut self, position: u64) -> Result<(), JournalError> {
        let tmp = self.dir.join(format!("{CONSUMER_FILE}.tmp"));
        let mut bytes = position.to_le_bytes().to_vec();
        bytes.extend_from_slice(&crc32fast::hash(&position.to_le_bytes()).to_le_bytes());
        fs::write(&tmp, &bytes).map_err(io_error)?;
        fs::rename(&tmp, self.dir.join(CONSUMER_FILE)).map_err(io_error)?;
        self.shared.committed.advance_to(position);
        if position >= self.shared.durable.get() {
            if let Some(writer) = self.writer.upgrade() {
                // Full (appends are queued) is fine: the next append rolls a taken segment.
                let _ = writer.try_send(Job::Tidy);
            }
        }
        let segments = list_segments(&self.dir).map_err(io_error)?;
        for pair in segments.windows(2) {
            if pair[1] <= position {
                if let Err(e) = fs::remove_file(segment_path(&self.dir, pair[0])) {
                    tracing::warn!(error = %e, "cannot delete a stored journal segment");
                }
            }
        }
        Ok(())
    }
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_exactly(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn split_header(header: &[u8; HEADER]) -> (usize, u32) {
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    (
        u32::from_le_bytes([l0, l1, l2, l3]) as usize,
        u32::from_le_bytes([c0, c1, c2, c3]),
    )
}

/// Length of the segment's prefix made of whole records whose checksums match.
fn checked_length(file: &mut File) -> io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(1024 * 1024, &*file);
    let mut valid = 0u64;
    while let Next::Record(payload) = next_record(&mut reader)? {
        valid += (HEADER + payload.len()) as u64;
    }
    Ok(valid)
}

/// What a segment holds at a reader's place.
enum Next {
    /// A whole record whose checksum matches: its payload.
    Record(Vec<u8>),
    /// No more records: the file ends, or the zero-filled space after the last record begins.
    End,
    /// Bytes that are not a whole record, and why.
    Damaged(&'static str),
}

/// Reads the record at the reader's place: the one definition of a record on disk, for the
/// reader and for the check on open.
fn next_record(reader: &mut impl Read) -> io::Result<Next> {
    let mut header = [0u8; HEADER];
    match read_exactly(reader, &mut header)? {
        0 => return Ok(Next::End),
        HEADER if header == [0; HEADER] => return Ok(Next::End),
        HEADER => {}
        _ => return Ok(Next::Damaged("the log ends inside a record header")),
    }
    let (len, crc) = split_header(&header);
    if len == 0 || len > MAX_RECORD {
        return Ok(Next::Damaged("a record header names an impossible length"));
    }
    let mut payload = vec![0u8; len];
    if read_exactly(reader, &mut payload)? != len {
        return Ok(Next::Damaged("the log ends inside a record"));
    }
    if crc32fast::hash(&payload) != crc {
        return Ok(Next::Damaged("a record's checksum does not match"));
    }
    Ok(Next::Record(payload))
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}{SEGMENT_SUFFIX}"))
}

/// The first positions of the segments in `dir`, oldest first.
fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let parsed = name
            .to_str()
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(base) = parsed {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Creates an empty segment and syncs the folder, so the file survives a crash.
fn create_segment(dir: &Path, base: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(segment_path(dir, base))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

fn read_consumer_hint(dir: &Path) -> Option<u64> {
    let bytes = fs::read(dir.join(CONSUMER_FILE)).ok()?;
    let (position, crc) = bytes.split_first_chunk::<8>()?;
    let crc = u32::from_le_bytes(crc.try_into().ok()?);
    (crc32fast::hash(position) == crc).then(|| u64::from_le_bytes(*position))
}

#[cfg(test)]
mod tests;
