//! Where the collector meets the processor's store: the only code that knows both.

use std::sync::Arc;

use collector::salt::{SaltError, SaltSource};
use collector::sites::SiteDirectory;
use collector::{Sink, SinkError};
use footfall_http::BoxFuture;
use processor::sites::SiteRegistry;
use processor::{SqliteStore, Store, StoreError};
use protocol::visitor::Salt;
use protocol::Event;

/// Standalone's sink: events go straight into the embedded store, whose group commit makes
/// them durable before `send_batch` returns. (The store is a `LiveStore`, so the events that
/// were new also feed live metrics.)
pub struct StoreSink(pub Arc<dyn Store>);

impl Sink for StoreSink {
    fn send_batch(&self, events: Vec<Event>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            // Moved into a shared batch, not copied: live metrics read the same events.
            self.0
                .insert_batch(events.into())
                .await
                .map(drop)
                .map_err(|e| match e {
                    StoreError::Overloaded => SinkError::Overloaded,
                    other => SinkError::Unavailable(other.to_string()),
                })
        })
    }

    fn is_ready(&self) -> bool {
        self.0.is_ready()
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
