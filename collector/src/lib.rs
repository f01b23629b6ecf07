//! # footfall-collector
//!
//! The edge of Footfall: a lean hyper 1.x service that sits behind a CDN, accepts events from
//! trackers and plain clients, validates and enriches them (via `protocol`), and hands them to
//! an event [`Sink`]. It answers 2xx only after the sink says the events are durable in the
//! next stage, and 503 with `Retry-After` when the next stage cannot take them.
//!
//! ## Layout
//! - [`config`]: [`CollectorConfig`] — limits, rate limit, trusted proxies, CORS allow-list.
//! - `handler`: [`Collector`] — the ingest endpoints, health and metrics (on
//!   `footfall_http`'s health routes), with per-route request metrics.
//! - `api`: the one place where errors become HTTP statuses and JSON bodies.
//! - `body`: reading bodies under a size cap, gzip with a decompressed-size cap.
//! - [`geoip`]: country, region and city of the client address (`footfall_http::client_ip`)
//!   from MMDB databases (optional); the address itself goes no further.
//! - `cors`, `rate_limit`: per-origin and per-IP admission.
//! - [`sites`]: which sites events are accepted for (only registered ones, in `footfall`).
//! - [`salt`]: the daily visitor-hash salt, shared by all collectors of a deployment.
//! - [`sinks`]: the [`Sink`] trait and its in-memory implementation for tests.
//! - [`kafka`] (feature `kafka`): the Kafka sink, topic bootstrap and the Kafka-shared daily
//!   salt (distributed mode); the only module that knows rdkafka.
//! - [`metrics`]: Prometheus metric names and helpers.
//!
//! The accept loop, the client address (`footfall_http::client_ip`), static files (`/footfall.js`, `/demo/`), security headers and JSON
//! answers are `footfall_http`'s, shared with the processor; `footfall` composes the
//! collector with them.
//!
//! ## What this crate must not do
//! It never depends on the processor crate, never stores a raw IP or user agent, and never
//! knows which sink it writes to (Kafka and the embedded store are wired in by `footfall`).

mod api;
mod body;
pub mod config;
mod cors;
pub mod geoip;
mod handler;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod metrics;
mod rate_limit;
pub mod salt;
pub mod sinks;
pub mod sites;

pub use config::CollectorConfig;
pub use footfall_http::BoxFuture;
pub use handler::Collector;
pub use sinks::{Sink, SinkError};
