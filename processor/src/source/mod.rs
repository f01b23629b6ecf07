//! Event sources: where the processor's pipeline reads from.
//!
//! A source hands out [`SourceBatch`]es — decoded events, messages that can never be stored
//! ([`Rejected`]), and a [`Checkpoint`] saying how far the batch reaches. The pipeline stores
//! the events, dead-letters the rejects, and only then commits the checkpoint; a source never
//! moves its committed position by itself. Redelivery after a crash is therefore the only
//! failure mode, and stores ignore redelivered `eventId`s.

pub mod journal;
#[cfg(feature = "kafka")]
pub mod kafka;

use std::time::Duration;

use protocol::Event;

use crate::BoxFuture;

pub use journal::JournalSource;
#[cfg(feature = "kafka")]
pub use kafka::{KafkaSource, KafkaSourceConfig};

/// One position of a source: the last offset of a partition covered by a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    /// Offset of the last message taken; the commit is `offset + 1`.
    pub offset: i64,
}

/// How far a batch reaches, per partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint(pub Vec<Position>);

impl Checkpoint {
    /// Records that the message at `offset` of `(topic, partition)` is part of the batch.
    pub fn advance(&mut self, topic: &str, partition: i32, offset: i64) {
        match self
            .0
            .iter_mut()
            .find(|p| p.partition == partition && p.topic == topic)
        {
            Some(p) => p.offset = p.offset.max(offset),
            None => self.0.push(Position {
                topic: topic.to_string(),
                partition,
                offset,
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A message that can never be stored, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub reason: String,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub origin: Position,
}

#[derive(Debug, Default)]
pub struct SourceBatch {
    pub events: Vec<Event>,
    /// Where each of `events` came from (same order), so one the store refuses for good can
    /// be dead-lettered with its origin. May be empty (then the batch's first position is
    /// named instead).
    pub origins: Vec<Position>,
    pub rejected: Vec<Rejected>,
    pub checkpoint: Checkpoint,
}

impl SourceBatch {
    pub fn messages(&self) -> usize {
        self.events.len() + self.rejected.len()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("source unavailable: {0}")]
    Unavailable(String),
    #[error("cannot commit: {0}")]
    Commit(String),
    #[error("cannot dead-letter: {0}")]
    DeadLetter(String),
}

pub trait Source: Send + Sync + 'static {
    /// Waits for at least one message, then takes whatever else arrives within `linger`, up
    /// to `max` messages.
    fn next_batch(
        &self,
        max: usize,
        linger: Duration,
    ) -> BoxFuture<'_, Result<SourceBatch, SourceError>>;

    /// Makes `rejected` durable in the dead-letter destination. `Ok` only once it is.
    fn dead_letter<'a>(&'a self, rejected: &'a Rejected) -> BoxFuture<'a, Result<(), SourceError>>;

    /// Records that everything up to `checkpoint` is stored.
    fn commit<'a>(&'a self, checkpoint: &'a Checkpoint) -> BoxFuture<'a, Result<(), SourceError>>;
}
