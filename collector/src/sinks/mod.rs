//! Where accepted events go. A sink's `send_batch` resolves `Ok` only once the events are
//! durable in the next stage — fsynced in the embedded store, or acknowledged by Kafka with
//! acks=all — because the collector's 2xx promises exactly that.
//!
//! Implementations: [`MemorySink`] here (tests); the embedded-store sink and the Kafka sink
//! live with the code that owns those systems and are wired in by `footfall`.

mod memory;

use std::time::Duration;

use protocol::Event;

pub use memory::MemorySink;

use crate::BoxFuture;

/// Why the next stage did not take a batch. Every variant means "nothing was promised":
/// the client gets 503 with `Retry-After` and sends the batch again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    #[error("the queue to the next stage is full")]
    Overloaded,
    #[error("the next stage is unavailable: {0}")]
    Unavailable(String),
    #[error("the next stage did not confirm in time")]
    Timeout,
}

impl SinkError {
    /// How long a client should wait before retrying.
    pub fn retry_after(&self) -> Duration {
        match self {
            SinkError::Overloaded => Duration::from_secs(1),
            SinkError::Timeout => Duration::from_secs(2),
            SinkError::Unavailable(_) => Duration::from_secs(5),
        }
    }
}

pub trait Sink: Send + Sync + 'static {
    /// Makes `events` durable in the next stage. `Ok` is a promise: they will be stored.
    fn send_batch(&self, events: Vec<Event>) -> BoxFuture<'_, Result<(), SinkError>>;

    /// Whether the next stage can take events right now (drives `/readyz`).
    fn is_ready(&self) -> bool;

    /// Pushes out anything buffered; called once during graceful shutdown.
    fn flush(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}
