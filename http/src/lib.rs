//! # footfall-http
//!
//! The HTTP stack every Footfall mode shares — `footfall standalone`, `footfall collector` and
//! `footfall processor` all run on it, so what a client sees at the HTTP level (security
//! headers, error bodies, caching, compression, health answers) is the same whichever process
//! answers.
//!
//! ## Layout
//! - [`server`]: the accept loop (connection cap in all and per address, header timeout, panic isolation, graceful
//!   drain); it passes every response through `layer`.
//! - `layer`: what the server adds to every response — security headers, `no-store` on
//!   `/api/*`, on-the-fly compression of large JSON and text answers.
//! - [`Handler`] and [`Router`]: the one service trait, and the composition of several
//!   services on one address (each claims its paths; the rest is a JSON 404).
//! - [`ResponseBody`]: every answer's body — one buffer, or a stream pulled as the client
//!   reads (raw-event exports), so no answer has to be built whole in memory.
//! - [`answer`]: JSON answers and the `{"success":false,"error":{...}}` error body.
//! - [`encoding`]: `Accept-Encoding` negotiation and the brotli / gzip encoders.
//! - [`static_files`]: the tracker, demo and dashboard files — embedded in the binary or read
//!   from a folder once, precompressed variants chosen per request, `ETag`/304, cache policy,
//!   cross-origin headers for what other sites' pages load.
//! - [`health`]: `/api/health`, `/livez`, `/readyz` and Prometheus `/metrics`.
//! - [`metrics`]: [`MetricsRegistry`], one place for Prometheus registration and rendering.
//! - [`client_ip`]: the client's address behind trusted proxies, and what per-client limits
//!   count as one client.
//! - [`log_limit`]: [`LogLimit`](log_limit::LogLimit), warnings a client can trigger at will
//!   written at most once per interval.
//!
//! ## What this crate must not do
//! It knows nothing about events, sinks, stores or Kafka: it depends only on `protocol` (for
//! the shared error body and RFC 3339 time), never on the collector or the processor, which
//! both build on it. It does no file IO while answering a request: static files are read
//! once, when a [`StaticFiles`](static_files::StaticFiles) set is made.

pub mod answer;
mod body;
pub mod client_ip;
pub mod encoding;
pub mod health;
mod layer;
pub mod log_limit;
pub mod metrics;
mod router;
pub mod server;
pub mod static_files;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};

/// The boxed, sendable future of object-safe async traits (`Handler`, sinks, stores).
pub use body::{BodyError, ResponseBody};
pub use futures_util::future::BoxFuture;
pub use health::Health;
pub use metrics::MetricsRegistry;
pub use router::Router;
pub use server::{serve, ServerLimits};
pub use static_files::{Mount, StaticFiles, StaticService};

/// An HTTP service [`serve`] can run: the collector, the processor's API, static files, or a
/// [`Router`] of them.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>>;
}

impl<H: Handler + ?Sized> Handler for Arc<H> {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        (**self).handle(req, peer)
    }
}
