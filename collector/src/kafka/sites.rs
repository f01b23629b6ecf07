//! [`KafkaSites`]: the site registry as a distributed collector knows it, followed from the
//! compacted `footfall.sites` topic that processors write (key = site, a
//! `protocol::sites::SiteRecord` while registered, a tombstone once removed).
//!
//! A collector has no store, so the topic is the registry for it: read from the beginning on
//! start-up — the compacted log holds every registered site — then followed, so a site added
//! on any processor is accepted by every collector within moments. Until the first read
//! reaches the end of the log the registry reports itself not loaded, and ingestion answers
//! 503 (the tracker retries) instead of refusing sites it merely has not read yet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use protocol::sites::{SiteRecord, SITE_RECORD_VERSION};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::sites::{SiteDirectory, SiteSet};
use footfall_kafka::{config, KafkaError, TopicSpec};

/// See the module docs. Stops following when dropped.
pub struct KafkaSites {
    sites: Arc<SiteSet>,
    stop: Arc<AtomicBool>,
}

impl KafkaSites {
    /// The sites topic as it must be created: one partition (one ordered log), compacted and
    /// never deleted by age, so it always holds the whole registry.
    pub fn topic_spec(name: &str, replication_factor: i32) -> TopicSpec {
        TopicSpec::new(name, 1, replication_factor)
            .with("cleanup.policy", "compact")
            .with("min.cleanable.dirty.ratio", "0.1")
            .with("delete.retention.ms", 86_400_000u64)
    }

    /// Starts following `topic` on a thread of its own.
    ///
    /// # Errors
    /// [`KafkaError::InvalidSetting`] when librdkafka refuses the consumer, or
    /// [`KafkaError::Client`] when the partition cannot be assigned.
    pub fn start(brokers: &str, topic: &str) -> Result<Self, KafkaError> {
        let consumer: BaseConsumer = config::topic_reader(brokers, "footfall-sites-reader")
            // Tells us when the first read reached the end of the log.
            .set("enable.partition.eof", "true")
            .create()
            .map_err(|e| KafkaError::InvalidSetting(format!("sites consumer: {e}")))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(|e| KafkaError::Client(e.to_string()))?;
        consumer
            .assign(&assignment)
            .map_err(|e| KafkaError::Client(e.to_string()))?;
        let sites = Arc::new(SiteSet::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (follower_sites, follower_stop) = (sites.clone(), stop.clone());
        thread::Builder::new()
            .name("footfall-sites".into())
            .spawn(move || follow(&consumer, &follower_sites, &follower_stop))
            .map_err(|e| KafkaError::Client(e.to_string()))?;
        Ok(KafkaSites { sites, stop })
    }

    /// The registry as followed so far.
    pub fn directory(&self) -> Arc<dyn SiteDirectory> {
        self.sites.clone()
    }

    /// Whether the first read reached the end of the log.
    pub fn is_loaded(&self) -> bool {
        self.sites.is_loaded()
    }
}

impl Drop for KafkaSites {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn follow(consumer: &BaseConsumer, sites: &SiteSet, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = match message {
            Ok(m) => m,
            Err(RdKafkaError::PartitionEOF(_)) => {
                if !sites.is_loaded() {
                    tracing::info!(sites = sites.len(), "site registry read from Kafka");
                }
                sites.mark_loaded();
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the sites topic failed; retrying");
                continue;
            }
        };
        let Some(site) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            continue;
        };
        match message.payload() {
            None => sites.remove(site),
            Some(value) => match serde_json::from_slice::<SiteRecord>(value) {
                Ok(record) if record.v == SITE_RECORD_VERSION && record.site == site => {
                    sites.insert(record.site);
                }
                Ok(record) => {
                    tracing::warn!(
                        v = record.v,
                        "skipping a site record this build cannot read"
                    )
                }
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable site record"),
            },
        }
    }
}
