//! Where the collector meets the processor's store: the only code that knows both.

use std::sync::Arc;

use collector::salt::{SaltError, SaltSource};
use collector::sites::SiteDirectory;
use collector::{Sink, SinkError};
use footfall_http::BoxFuture;
use journal::{Journal, JournalError};
use processor::api::Freshness;
use processor::sites::SiteRegistry;
use processor::source::journal::encode_record;
use processor::{SqliteStore, Store};
use protocol::visitor::Salt;
use protocol::Event;

/// Standalone's sink: accepted events are appended to the embedded journal, which syncs them
/// to disk before `send_batch` returns; the pipeline moves them into the store (a
/// `LiveStore`, so the events that are new also feed live metrics) right behind it.
pub struct JournalSink {
    pub journal: Journal,
    /// The store behind the journal: while it cannot write (a full disk), the journal would
    /// only fill up, so ingestion answers 503 at once.
    pub store: Arc<dyn Store>,
}

impl Sink for JournalSink {
    fn send_batch(&self, events: Vec<Event>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            if !self.store.is_ready() {
                return Err(SinkError::Unavailable(
                    "the store cannot write (see the server log)".into(),
                ));
            }
            self.journal
                .append(encode_record(&events))
                .await
                .map(drop)
                .map_err(|e| match e {
                    JournalError::Full { .. } => SinkError::Overloaded,
                    other => SinkError::Unavailable(other.to_string()),
                })
        })
    }

    fn is_ready(&self) -> bool {
        self.journal.is_ready() && self.store.is_ready()
    }
}

/// Standalone's salts live in the store, so a restart keeps today's visitor ids.
pub struct StoreSalts(pub Arc<SqliteStore>);

impl SaltSource for StoreSalts {
    fn salt_for_day(&self, day: i64) -> BoxFuture<'_, Result<Salt, SaltError>> {
        Box::pin(async move {
            self.0
                .daily_salt(day)
                .await
                .map_err(|e| SaltError(e.to_string()))
        })
    }
}

/// Standalone's site check: the registry the embedded store keeps, asked from memory.
pub struct RegistrySites(pub SiteRegistry);

impl SiteDirectory for RegistrySites {
    fn contains(&self, site: &str) -> bool {
        self.0.contains(site)
    }
}

/// Stats answers wait (briefly) until the store has every event the journal had when the
/// question came, so a client that was told 2xx sees its events in the next answer.
pub struct JournalFreshness(pub Journal);

impl Freshness for JournalFreshness {
    fn caught_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let target = self.0.durable_end();
            self.0.wait_committed(target).await;
        })
    }
}
