//! The embedded journal as a source: standalone's pipeline reads what the collector appended
//! to the journal (crate `journal`) the way a processor reads Kafka — stores it, then commits
//! the position — so the collector's 2xx waits for one sequential sync, not for the store's
//! indexes.
//!
//! A record is one accepted request: its events, each encoded as the stored document
//! (`protocol::event::encode_into`), one per line. Positions name the journal as topic
//! [`TOPIC`], partition 0, and the record's last byte as offset, so `offset + 1` is where
//! reading resumes, as with Kafka.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use journal::{Journal, JournalReader, Record};
use protocol::event::EncodeEventError;
use protocol::Event;

use super::{Checkpoint, Position, Rejected, Source, SourceBatch, SourceError};
use crate::BoxFuture;

/// The topic name journal positions carry.
pub const TOPIC: &str = "journal";
/// The `/metrics` gauge of [`Journal::backlog`]: bytes acknowledged to clients that the store
/// has not taken yet (how far the store is behind the collector).
pub const BACKLOG: &str = "footfall_journal_backlog_bytes";
/// Most payload bytes taken from the journal for one batch (one store transaction): a few
/// thousand events, so a burst of large events cannot make one transaction, and SQLite's WAL,
/// grow without bound.
const MAX_BATCH_BYTES: usize = 512 * 1024;

/// One journal record for `events`: their documents, one per line.
///
/// # Errors
/// When an event cannot be encoded (the collector refuses the request).
pub fn encode_record(events: &[Event]) -> Result<Vec<u8>, EncodeEventError> {
    let mut record = Vec::with_capacity(events.len() * 400);
    for event in events {
        protocol::event::encode_into(&mut record, event)?;
        // JSON text never holds a raw newline, so it separates documents safely.
        record.push(b'\n');
    }
    Ok(record)
}

/// See the module docs.
pub struct JournalSource {
    journal: Journal,
    reader: Arc<Mutex<JournalReader>>,
    /// Where events that can never be stored go, one JSON line each.
    dead_letters: PathBuf,
}

impl JournalSource {
    pub fn new(journal: Journal, reader: JournalReader, dead_letters: PathBuf) -> Self {
        JournalSource {
            journal,
            reader: Arc::new(Mutex::new(reader)),
            dead_letters,
        }
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
        tokio::task::spawn_blocking(move || {
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
    for line in record.payload.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match protocol::event::decode(line) {
            Ok(event) => {
                batch.events.push(event);
                batch.origins.push(origin.clone());
            }
            Err(e) => batch.rejected.push(Rejected {
                reason: e.to_string(),
                key: None,
                payload: Some(line.to_vec()),
                origin: origin.clone(),
            }),
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
            let mut line = serde_json::to_vec(&serde_json::json!({
                "reason": rejected.reason,
                "position": rejected.origin.offset,
                "payload": rejected
                    .payload
                    .as_deref()
                    .map(String::from_utf8_lossy),
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
