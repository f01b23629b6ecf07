//! Everything the collector knows about Kafka; no rdkafka type leaves this module.
//!
//! - `sink`: [`KafkaSink`], the [`Sink`](crate::Sink) of distributed mode — an idempotent
//!   producer (acks=all) whose `send_batch` resolves only after the broker acknowledged every
//!   event, with a health probe driving `/readyz`.
//! - `topics`: [`ensure_topics`], the start-up bootstrap that creates missing topics and
//!   leaves existing ones alone (used by `footfall collector` and `footfall processor`).
//! - `salts`: [`KafkaSalts`], the daily visitor salt shared by every collector of a
//!   deployment through a single-partition topic.
//! - `sites`: [`KafkaSites`], the site registry followed from the compacted sites topic.

mod salts;
mod sink;
mod sites;
mod topics;

use std::time::Duration;

pub use salts::KafkaSalts;
pub use sink::{message_key, KafkaSink, KafkaSinkConfig, SCHEMA_HEADER};
pub use sites::KafkaSites;
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

/// Settings every client of a deployment shares.
fn base_config(brokers: &str) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    for (name, value) in base_settings(brokers) {
        config.set(name, value);
    }
    config
}

/// [`base_config`] as `(name, value)` pairs.
fn base_settings(brokers: &str) -> Vec<(String, String)> {
    [
        ("bootstrap.servers", brokers),
        // Fail over quickly between brokers and notice a returning broker within a second.
        ("reconnect.backoff.ms", "50"),
        ("reconnect.backoff.max.ms", "1000"),
        ("log_level", "4"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}
