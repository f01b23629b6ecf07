//! # footfall-kafka
//!
//! Every Kafka client setting of Footfall, in one place: the collector's sink and salt
//! agreement, the processor's source and dead-letter producer, and the live-metrics publisher
//! and subscriber all build their librdkafka configuration here, so a setting (reconnect
//! backoff, idempotence, offsets) is decided once and no client is left without it. Also the
//! start-up topic bootstrap both services run, and the events topic's message key and headers,
//! which the collector writes and the processor reads.
//!
//! ## Layout
//! - [`config`]: a [`ClientConfig`](rdkafka::ClientConfig) per role — durable producer,
//!   live-metrics producer, group consumer, whole-topic reader, admin.
//! - [`topics`]: [`TopicSpec`] and [`ensure_topics`].
//! - [`message`]: the message key and the schema header of `footfall.events`.
//!
//! ## What this crate must not do
//! It knows nothing of events, sinks, stores or HTTP, and depends on no workspace crate, so
//! the collector and the processor can both depend on it without depending on each other. Its
//! rdkafka types are for the Kafka modules of those crates only (`collector::kafka`,
//! `processor::source::kafka`, `processor::live::kafka`) and for `bench/`'s raw-producer
//! baseline, which sends the collector's exact messages; nothing else uses this crate.

pub mod config;
pub mod message;
pub mod topics;

use std::time::Duration;

pub use topics::{ensure_topics, validate_topic_name, TopicSpec};

/// Why a Kafka client could not be set up. Start-up errors: `footfall` prints them and exits.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KafkaError {
    #[error(
        "cannot reach the Kafka brokers at {brokers} within {timeout:?}: {reason}. \
         Check --brokers / FOOTFALL_BROKERS and that the brokers are up"
    )]
    Unreachable {
        brokers: String,
        timeout: Duration,
        reason: String,
    },
    #[error("invalid Kafka setting: {0}")]
    InvalidSetting(String),
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("Kafka client error: {0}")]
    Client(String),
}
