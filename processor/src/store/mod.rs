//! Event stores: idempotent batch inserts plus the queries the dashboard needs.
//!
//! **Invariant:** inserting an event whose `eventId` is already stored changes nothing, so
//! redelivery (tracker retries, Kafka redelivery after a crash) never double counts.

mod sqlite;

use protocol::Event;

pub use sqlite::{SqliteConfig, SqliteStore};

use crate::query::{RangeQuery, SiteInfo, Summary};
use crate::BoxFuture;

/// What an insert did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Events stored for the first time.
    pub inserted: usize,
    /// Events whose id was already stored; ignored.
    pub duplicates: usize,
    /// Positions (in the inserted batch) of the events stored for the first time: only these
    /// may feed live metrics, so redelivery never double counts there either.
    pub fresh: Vec<usize>,
}

/// Why a store could not do what was asked. All variants mean "nothing was promised": an
/// insert that fails is retried by the caller, never half-acknowledged.
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
    #[error("store error: {0}")]
    Backend(String),
}

pub trait Store: Send + Sync + 'static {
    /// Stores `events` durably, ignoring ids already stored. `Ok` means durable (fsynced /
    /// acknowledged by the database), and only then.
    fn insert_batch(&self, events: Vec<Event>) -> BoxFuture<'_, Result<InsertOutcome, StoreError>>;

    /// Page views, visitors, sessions and events of one site in a range.
    fn summary(&self, query: RangeQuery) -> BoxFuture<'_, Result<Summary, StoreError>>;

    /// Sites that have data, most recently active first.
    fn sites(&self) -> BoxFuture<'_, Result<Vec<SiteInfo>, StoreError>>;

    /// Whether inserts are expected to succeed right now.
    fn is_ready(&self) -> bool;
}
