//! # footfall-processor
//!
//! Everything after the queue: event **stores** (idempotent batch insert + the queries the
//! dashboard needs), the token-protected **stats API** over them, the **pipeline** that moves
//! events from a **source** (the Kafka consumer, or standalone's embedded journal) into a
//! store, and **live metrics** with
//! their WebSocket gateway.
//!
//! ## Layout
//! - [`store`]: the [`Store`] trait and its implementations ([`SqliteStore`] for standalone,
//!   [`MongoStore`] for the distributed deployment).
//! - [`rollup`]: what a rollup bucket counts, how a range maps onto buckets, and [`rollup::Hll`],
//!   the one HyperLogLog of stored and live visitor counts (pure).
//! - [`visit`]: what a visit is (one record per session, merged order-independently) and
//!   what filtered aggregates mean, with their reference evaluation (pure).
//! - [`history`]: the query layer — summary, time series, breakdowns and sites, written once over
//!   the store primitives and answering with the [`protocol::stats`] types.
//! - [`api`]: [`StatsApi`], `GET /api/stats/...` with `Authorization: Bearer <token>`.
//! - [`sites`]: the site registry (events only for known sites), `/api/sites`, and the
//!   `footfall.sites` topic that tells collectors about it.
//! - [`auth`]: the admin token, compared in constant time, and the signer derived from it.
//! - `export`: CSV of the panels (`format=csv`).
//! - [`query`]: the stats API's query parameters (ranges, intervals, offsets) and their checks.
//! - [`live`]: live metrics — mergeable deltas, the engine, the hub, the WebSocket gateway.
//! - `http`: [`ProcessorHttp`], the stats API and the live gateway as one handler, and
//!   [`ProcessorService`], that plus a processor process's health routes (the dashboard's
//!   files are `footfall_http`'s, mounted by `footfall`).
//! - [`source`]: the [`Source`](source::Source) trait (batches + checkpoints), the embedded
//!   journal implementing it (standalone), and, with the `kafka` feature, the Kafka consumer
//!   implementing it; the only module that knows rdkafka.
//! - [`settings`]: goals and share links (signed, revocable) kept as store records.
//! - [`signer`]: keyed BLAKE3 signatures, a key per purpose derived from the admin token.
//! - [`pipeline`]: source → store with dead-lettering and commit-after-store; its metrics.
//! - [`priority`]: the CPU share of background threads (standalone's indexing): idle time
//!   only while the journal has room, a low share once it is half full.
//!
//! ## What this crate must not do
//! It never depends on the collector crate (the `footfall` binary composes the two), and no
//! SQLite, MongoDB or Kafka type appears outside the module that implements it
//! (`store/sqlite.rs`, `store/mongo/`, `source/kafka.rs`, `live/kafka.rs`, `sites/kafka.rs`).
//!
//! ## Features
//! `kafka` (the Kafka source, the metrics publisher and subscriber, the sites topic) and
//! `mongo` (the MongoDB store) are on by default; without them the crate is the embedded
//! store, the stats API and live metrics in one process — all `footfall standalone` needs.

pub mod api;
pub mod auth;
mod export;
pub mod history;
mod http;
pub mod live;
pub mod pipeline;
pub mod priority;
pub mod query;
pub mod rollup;
pub mod settings;
pub mod signer;
pub mod sites;
pub mod source;
pub mod store;
pub mod visit;

/// A `HashMap` hashed with aHash (seeded per process), for the maps the store writer fills
/// for every event it indexes: with SipHash, hashing was a twentieth of that thread's time.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

pub use api::StatsApi;
pub use auth::AdminToken;
pub use footfall_http::BoxFuture;
pub use http::{ProcessorHttp, ProcessorService};
pub use store::{EventBatch, InsertOutcome, LiveWrite, SqliteStore, Store, StoreError};
#[cfg(feature = "mongo")]
pub use store::{MongoConfig, MongoStore};
