//! The embedded journal as a source: standalone's pipeline reads what the collector appended
//! to the journal (crate `journal`) the way a processor reads Kafka — stores it, then commits
//! the position — so the collector's 2xx waits for one sequential sync, not for the store's
//! indexes.
//!
//! A record is one accepted request: its events, each in the compact binary form
//! (`protocol::compact`), which is cheap to write inside the request. A journal left by an
//! earlier version holds JSON documents, one per line; records that begin with `{` are read
//! that way. Positions name the journal as topic
//! [`TOPIC`], partition 0, and the record's last byte as offset, so `offset + 1` is where
//! reading resumes, as with Kafka.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use journal::{Journal, JournalReader, Record};
use protocol::Event;

use super::{Checkpoint, Position, Rejected, Source, SourceBatch, SourceError};
use crate::priority::Background;
use crate::BoxFuture;

/// The topic name journal positions carry.
pub const TOPIC: &str = "journal";
/// The `/metrics` gauge of [`Journal::backlog`]: bytes acknowledged to clients that the store
/// has not taken yet (how far the store is behind the collector).
pub const BACKLOG: &str = "footfall_journal_backlog_bytes";
/// Most payload bytes taken from the journal for one batch (one store transaction): about
/// two thousand events (125 B each in compact form, more with long fields), so a burst of
/// large events cannot make one transaction, and SQLite's WAL, grow without bound. (512 KiB
/// of compact events made transactions whose WAL outgrew its 4 MiB limit.)
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// One journal record for `events`, each in its compact form.
pub fn encode_record(events: &[Event]) -> Vec<u8> {
    let mut record = Vec::with_capacity(events.len() * 256);
    for event in events {
        protocol::compact::encode_into(&mut record, event);
    }
    record
}

/// See the module docs.
pub struct JournalSource {
    journal: Journal,
    reader: Arc<Mutex<JournalReader>>,
    /// Where events that can never be stored go, one JSON line each.
    dead_letters: PathBuf,
    /// The CPU share of the reads, taken again by each (see [`JournalSource::with_background`]).
    background: Option<Background>,
}

impl JournalSource {
    pub fn new(journal: Journal, reader: JournalReader, dead_letters: PathBuf) -> Self {
        JournalSource {
            journal,
            reader: Arc::new(Mutex::new(reader)),
            dead_letters,
            background: None,
        }
    }

    /// Reads and commits at `background`'s share, as the store that the batches are for.
    /// Each blocking task takes the share anew: a runtime's blocking threads outlive one
    /// task, and one that kept the share it started with stayed at niceness 10 through
    /// every burst (`ps` showed it).
    pub fn with_background(mut self, background: Background) -> Self {
        self.background = Some(background);
        self
    }

    fn position(&self) -> u64 {
        self.reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .position()
    }

    /// Runs `f` on the reader on a blocking thread (it reads and writes files).
    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut JournalReader) -> Result<T, journal::JournalError> + Send + 'static,
    ) -> Result<T, String> {
        let reader = self.reader.clone();
        let background = self.background.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(background) = background {
                background.apply();
            }
            f(&mut reader.lock().unwrap_or_else(PoisonError::into_inner))
        })
        .await
        .map_err(|e| format!("journal task failed: {e}"))?
        .map_err(|e| e.to_string())
    }

    async fn read_into(&self, batch: &mut SourceBatch, max: usize) -> Result<(), SourceError> {
        let records = self
            .with_reader(move |r| r.read(max, MAX_BATCH_BYTES))
            .await
            .map_err(SourceError::Unavailable)?;
        for record in records {
            add_record(batch, &record);
        }
        Ok(())
    }
}

/// Decodes one record's events into `batch`; a line that does not decode is rejected alone.
fn add_record(batch: &mut SourceBatch, record: &Record) {
    let offset = i64::try_from(record.end - 1).unwrap_or(i64::MAX);
    let origin = Position {
        topic: TOPIC.to_string(),
        partition: 0,
        offset,
    };
    batch.checkpoint.advance(TOPIC, 0, offset);
    let reject = |batch: &mut SourceBatch, reason: String, payload: &[u8]| {
        batch.rejected.push(Rejected {
            reason,
            key: None,
            payload: Some(payload.to_vec()),
            origin: origin.clone(),
        });
    };
    if record.payload.first() == Some(&b'{') {
        // Written by an earlier version: JSON documents, one per line (JSON text never holds
        // a raw newline); a line that does not decode is rejected alone.
        for line in record.payload.split(|b| *b == b'\n') {
            if line.is_empty() {
                continue;
            }
            match protocol::event::decode(line) {
                Ok(event) => {
                    batch.events.push(event);
                    batch.origins.push(origin.clone());
                }
                Err(e) => reject(batch, e.to_string(), line),
            }
        }
        return;
    }
    let mut rest = &record.payload[..];
    while !rest.is_empty() {
        let at = rest;
        match protocol::compact::decode(&mut rest) {
            Ok(event) => {
                batch.events.push(event);
                batch.origins.push(origin.clone());
            }
            Err(e) => {
                // Where one event cannot be read, neither can where the next begins.
                reject(batch, e.to_string(), at);
                return;
            }
        }
    }
}

impl Source for JournalSource {
    /// Waits for a record, then takes what else arrives within `linger`. `max` counts
    /// records, each holding one request's events, so a batch holds at least `max` events
    /// when that many records are waiting.
    fn next_batch(
        &self,
        max: usize,
        linger: Duration,
    ) -> BoxFuture<'_, Result<SourceBatch, SourceError>> {
        Box::pin(async move {
            let max = max.max(1);
            let mut batch = SourceBatch::default();
            while batch.messages() == 0 && batch.checkpoint.is_empty() {
                self.journal.wait_durable_past(self.position()).await;
                self.read_into(&mut batch, max).await?;
            }
            let deadline = tokio::time::Instant::now() + linger;
            while batch.messages() < max {
                let more = self.journal.wait_durable_past(self.position());
                if tokio::time::timeout_at(deadline, more).await.is_err() {
                    break;
                }
                let room = max - batch.messages();
                self.read_into(&mut batch, room).await?;
            }
            Ok(batch)
        })
    }

    fn dead_letter<'a>(&'a self, rejected: &'a Rejected) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            // A JSON document stays readable; compact bytes are kept exactly, in hex.
            let payload = rejected.payload.as_deref();
            let text = payload
                .filter(|p| p.first() == Some(&b'{'))
                .and_then(|p| std::str::from_utf8(p).ok());
            let hex = payload.filter(|_| text.is_none()).map(|p| {
                p.iter()
                    .fold(String::with_capacity(p.len() * 2), |mut s, b| {
                        let _ = write!(s, "{b:02x}");
                        s
                    })
            });
            let mut line = serde_json::to_vec(&serde_json::json!({
                "reason": rejected.reason,
                "position": rejected.origin.offset,
                "payload": text,
                "payloadHex": hex,
            }))
            .map_err(|e| SourceError::DeadLetter(e.to_string()))?;
            line.push(b'\n');
            let path = self.dead_letters.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                file.write_all(&line)?;
                file.sync_data()
            })
            .await
            .map_err(|e| SourceError::DeadLetter(e.to_string()))?
            .map_err(|e| SourceError::DeadLetter(e.to_string()))
        })
    }

    fn commit<'a>(&'a self, checkpoint: &'a Checkpoint) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let Some(position) = checkpoint.0.iter().find(|p| p.topic == TOPIC) else {
                return Ok(());
            };
            let next = u64::try_from(position.offset).unwrap_or(0) + 1;
            self.with_reader(move |r| r.commit(next))
                .await
                .map_err(SourceError::Commit)
        })
    }
}

#[cfg(test)]
mod tests {
    use protocol::fixture::EventBuilder;

    use super::*;

    fn event(id: &str) -> Event {
        EventBuilder::new("journal.test", "page_view", 1_701_234_567_890)
            .id(id)
            .path("/ü/🦀")
            .build()
    }

    async fn source(dir: &std::path::Path) -> JournalSource {
        let (journal, reader) =
            journal::open(journal::JournalConfig::new(dir.join("journal"))).expect("journal");
        JournalSource::new(journal, reader, dir.join("dead-letters.ndjson"))
    }

    #[tokio::test]
    async fn compact_records_and_an_earlier_versions_json_lines_are_read_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = source(dir.path()).await;
        let (a, b, c) = (event("a"), event("b"), event("c"));
        source
            .journal
            .append(encode_record(&[a.clone(), b.clone()]))
            .await
            .expect("append");
        let mut json = protocol::event::encode(&c).expect("encode");
        json.push(b'\n');
        source.journal.append(json).await.expect("append");

        let batch = source
            .next_batch(10, Duration::from_millis(50))
            .await
            .expect("batch");
        assert_eq!(batch.events, vec![a, b, c]);
        assert!(batch.rejected.is_empty());
        assert_eq!(batch.origins.len(), 3);
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_read_keeps_its_events_before_the_fault_and_dead_letters_the_rest(
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = source(dir.path()).await;
        let good = event("good");
        let mut record = encode_record(std::slice::from_ref(&good));
        record.extend_from_slice(&[protocol::compact::MARKER, 1, 2, 3]);
        source.journal.append(record).await.expect("append");

        let batch = source.next_batch(10, Duration::ZERO).await.expect("batch");
        assert_eq!(batch.events, vec![good]);
        assert_eq!(batch.rejected.len(), 1);
        source
            .dead_letter(&batch.rejected[0])
            .await
            .expect("dead letter");
        let line: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("dead-letters.ndjson")).expect("read"),
        )
        .expect("json");
        assert_eq!(line["payloadHex"], "f1010203", "{line}");
        assert!(line["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cut short")));
    }

    /// The runtime's blocking threads outlive a task: each read takes the share the
    /// background asks for now, not the one its thread had when it started.
    #[cfg(target_os = "linux")]
    #[test]
    fn reads_take_the_share_the_background_asks_for_now() {
        let dir = tempfile::tempdir().expect("tempdir");
        // One blocking thread, so the probes below run where the read ran.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(1)
            .build()
            .expect("runtime");
        let background = Background::new();
        runtime.block_on(async {
            let probe = || async {
                tokio::task::spawn_blocking(crate::priority::thread_priority)
                    .await
                    .expect("probe")
            };
            let started = probe().await;
            let source = source(dir.path()).await.with_background(background.clone());
            source
                .journal
                .append(encode_record(&[event("a")]))
                .await
                .expect("append");
            background.set_idle(true);
            let batch = source.next_batch(10, Duration::ZERO).await.expect("batch");
            assert_eq!(batch.events.len(), 1);
            let policy = if background.can_leave_idle() {
                libc::SCHED_IDLE
            } else {
                libc::SCHED_OTHER
            };
            assert_eq!(
                probe().await,
                (10, i64::from(policy)),
                "started at {started:?}"
            );
        });
    }
}
