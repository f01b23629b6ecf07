//! # footfall-protocol
//!
//! The event model every Rust part of Footfall agrees on: what clients send, how it is
//! validated, what the collector turns it into, and how that is serialised between stages.
//!
//! ## Layout
//! - [`api`]: JSON bodies shared by the HTTP APIs (the error shape).
//! - [`wire`]: the request bodies clients send (`/api/track`, `/api/batch`) and their decoders.
//! - [`validate`]: limits and field-level [`ValidationError`]s.
//! - [`event`]: the normalised [`Event`] and its versioned encoding for queues and stores.
//! - [`compact`]: the binary form of an [`Event`] in standalone's journal and store.
//! - `normalize` (feature `enrich`): wire event + request context → [`Event`].
//! - `ua` (feature `enrich`): device / browser / OS from a user agent, bot detection.
//! - `visitor` (feature `enrich`): the privacy-preserving daily visitor hash.
//! - [`geo`]: IANA time zone → country.
//! - [`live`]: the versioned live-metrics messages of the WebSocket feed.
//! - [`stats`]: the stats API's JSON answers, shared by the server and the dashboard.
//! - [`sites`]: the site registry's API bodies and `footfall.sites` topic records.
//! - [`time`]: RFC 3339 formatting and parsing (epoch milliseconds inside), UTC offsets.
//! - `fixture` (feature `test-util`): [`fixture::EventBuilder`], a valid [`Event`] for tests
//!   and benchmarks.
//!
//! ## What this crate must not do
//! It does no IO and depends on no other workspace crate and on nothing server-only (no tokio,
//! hyper, rdkafka, mongodb), so the wasm dashboard can share its types with
//! `default-features = false`. Decoding and validation never panic on any input: they are
//! property-tested and fuzzed (`fuzz/`).

pub mod api;
pub mod compact;
pub mod event;
pub mod geo;
pub mod live;
pub mod sites;
pub mod stats;
pub mod time;
pub mod validate;
pub mod wire;

#[cfg(feature = "enrich")]
mod normalize;
#[cfg(feature = "enrich")]
mod plain_url;
#[cfg(feature = "enrich")]
pub mod ua;
#[cfg(feature = "enrich")]
pub mod visitor;

#[cfg(any(test, feature = "test-util"))]
pub mod fixture;

mod tz_table;

pub use event::{
    DecodeEventError, Device, EncodeEventError, Event, PropValue, Target, SCHEMA_VERSION,
};
#[cfg(feature = "enrich")]
pub use normalize::{normalize, Normalizer, RequestContext};
pub use validate::ValidationError;
pub use wire::{BatchRequest, DecodeError, WireEvent};
