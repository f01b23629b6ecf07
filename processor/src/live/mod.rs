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
//! adding counts and uniting HyperLogLog sketches, every gateway that merges the whole
//! stream shows the global numbers.

mod delta;
mod engine;
mod gateway;
mod hub;
#[cfg(feature = "kafka")]
mod kafka;
mod sketch;
mod tee;
mod tickets;

pub use delta::{deltas_of, Bucket, DeltaBuilder, MetricsDelta, DELTA_VERSION};
pub use engine::LiveEngine;
pub use gateway::{Gateway, GatewayLimits};
pub use hub::LiveHub;
#[cfg(feature = "kafka")]
pub use kafka::{run_subscriber, MetricsPublisher};
pub use sketch::VisitorSketch;
pub use tee::{DeltaSink, LiveStore};
pub use tickets::TicketStore;

#[cfg(test)]
pub(crate) fn test_event(
    site: &str,
    name: &str,
    path: &str,
    visitor: &str,
    ts: i64,
) -> protocol::Event {
    protocol::Event {
        event_id: format!("{site}-{name}-{path}-{visitor}-{ts}"),
        site: site.into(),
        name: name.into(),
        ts,
        received_at: ts,
        visitor_id: visitor.into(),
        session_id: None,
        user_id: None,
        host: None,
        path: path.into(),
        title: None,
        referrer_host: Some("news.example".into()),
        utm_source: None,
        utm_medium: None,
        utm_campaign: None,
        utm_term: None,
        utm_content: None,
        screen: None,
        lang: None,
        timezone: Some("Europe/Berlin".into()),
        country: Some("DE".into()),
        device: protocol::Device::Desktop,
        browser: "Firefox".into(),
        os: "Linux".into(),
        props: Default::default(),
        target: None,
    }
}
