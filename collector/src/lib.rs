//! # footfall-collector
//!
//! The edge of Footfall: a lean hyper 1.x service that sits behind a CDN, accepts events from
//! trackers and plain clients, validates and enriches them (via `protocol`), and hands them to
//! an event [`Sink`]. It answers 2xx only after the sink says the events are durable in the
//! next stage, and 503 with `Retry-After` when the next stage cannot take them.
//!
//! ## Layout
//! - [`config`]: [`CollectorConfig`] — limits, rate limit, trusted proxies, CORS allow-list.
//! - `handler`: [`Collector`] — routing and the ingest endpoints.
//! - `api`: the one place where errors become HTTP statuses and JSON bodies.
//! - `body`: reading bodies under a size cap, gzip with a decompressed-size cap.
//! - `client_ip`: the client address, believing `X-Forwarded-For` only from trusted proxies.
//! - `cors`, `rate_limit`: per-origin and per-IP admission.
//! - [`sites`]: which sites events are accepted for (only registered ones, in `footfall`).
//! - [`salt`]: the daily visitor-hash salt, shared by all collectors of a deployment.
//! - [`sinks`]: the [`Sink`] trait and its in-memory implementation for tests.
//! - [`kafka`]: the Kafka sink, topic bootstrap and the Kafka-shared daily salt (distributed
//!   mode); the only module that knows rdkafka.
//! - [`metrics`]: Prometheus metric names and helpers.
//! - `assets`: `/footfall.js` and other static files, with cache validators.
//! - [`server`]: the accept loop with connection limits, timeouts and graceful shutdown.
//!
//! ## What this crate must not do
//! It never depends on the processor crate, never stores a raw IP or user agent, and never
//! knows which sink it writes to (Kafka and the embedded store are wired in by `footfall`).

mod api;
mod assets;
mod body;
mod client_ip;
pub mod config;
mod cors;
mod handler;
pub mod kafka;
pub mod metrics;
mod rate_limit;
pub mod salt;
pub mod server;
pub mod sinks;
pub mod sites;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};

pub use api::{error_response, json_response};
pub use config::CollectorConfig;
pub use handler::Collector;
pub use sinks::{Sink, SinkError};

/// A boxed, sendable future: the object-safe shape of the async traits here.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Every response Footfall's HTTP services produce: small, fully buffered bodies.
pub type ResponseBody = Full<Bytes>;

/// An HTTP service [`server::serve`] can run. The collector is one; `footfall` composes the
/// collector with the processor's API into one for standalone mode.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>>;
}
