//! Everything the collector knows about Kafka; no rdkafka type leaves this module. Client
//! settings, topic bootstrap and the message format are `footfall_kafka`'s, shared with the
//! processor.
//!
//! - `sink`: [`KafkaSink`], the [`Sink`](crate::Sink) of distributed mode — an idempotent
//!   producer (acks=all) whose `send_batch` resolves only after the broker acknowledged every
//!   event, with a health probe driving `/readyz`.
//! - `salts`: [`KafkaSalts`], the daily visitor salt shared by every collector of a
//!   deployment through a single-partition topic.
//! - `sites`: [`KafkaSites`], the site registry followed from the compacted sites topic.

mod salts;
mod sink;
mod sites;

pub use footfall_kafka::KafkaError;
pub use salts::KafkaSalts;
pub use sink::{KafkaSink, KafkaSinkConfig};
pub use sites::KafkaSites;
