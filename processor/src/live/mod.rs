//! Live metrics: per-site sliding windows fed by mergeable deltas, published to WebSocket
//! clients.
//!
//! ```text
//! events ─▶ DeltaBuilder ─▶ MetricsDelta ─┬─(standalone: in process)──────────▶ LiveHub ─▶ watch per site ─▶ /ws clients
//!                                         └─(distributed: topic footfall.metrics)─▶ LiveHub (every gateway)
//! ```
//!
//! Both deployments take the same path: events become deltas, deltas are merged by a hub.
//! With several processors each sees only its partitions, and because deltas merge by
//! adding counts and uniting HyperLogLog sketches ([`crate::rollup::Hll`], the sketch the
//! stored rollups keep), every gateway that merges the whole stream shows the global numbers,
//! and they are the numbers history shows for the same events. Today's visit figures are the
//! exception: they need per-session state, so `visits` reads them from the store's visit
//! records for watched sites every few seconds.

mod delta;
mod engine;
mod gateway;
mod hub;
#[cfg(feature = "kafka")]
mod kafka;
mod tee;
mod tickets;
mod visits;

pub use delta::{deltas_of, Bucket, DeltaBuilder, MetricsDelta, DELTA_VERSION};
pub use engine::LiveEngine;
pub use gateway::{Gateway, GatewayLimits};
pub use hub::LiveHub;
#[cfg(feature = "kafka")]
pub use kafka::{run_subscriber, MetricsPublisher, MetricsTopicError};
pub use tee::{DeltaSink, LiveStore};
pub use tickets::{LocalSpentTickets, SpentTickets, TicketError, TicketStore, TICKET_TTL};
pub use visits::{refresh_visits, VISIT_REFRESH};

/// A page view as the live tests want it: referred by `news.example`, from Berlin.
#[cfg(test)]
pub(crate) fn test_event(
    site: &str,
    name: &str,
    path: &str,
    visitor: &str,
    ts: i64,
) -> protocol::Event {
    protocol::fixture::EventBuilder::new(site, name, ts)
        .id(format!("{site}-{name}-{path}-{visitor}-{ts}"))
        .visitor(visitor)
        .path(path)
        .referrer("news.example")
        .timezone("Europe/Berlin")
        .build()
}
