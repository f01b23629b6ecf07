//! The `footfall.sites` topic: how collectors, which have no store, learn the registry.
//! Compacted, one partition, key = the site: a [`SiteRecord`] while it is registered, a
//! tombstone once removed, so the topic always holds the current registry and a collector
//! that reads it from the beginning knows every site. No rdkafka type leaves this module.

use std::time::Duration;

use footfall_kafka::config;
use protocol::sites::{SiteRecord, SITE_RECORD_VERSION};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::SitesAnnouncer;
use crate::store::RegisteredSite;
use crate::BoxFuture;

/// Why the sites topic cannot be written (librdkafka's message).
#[derive(Debug, Clone, thiserror::Error)]
#[error("sites topic producer: {0}")]
pub struct SitesTopicError(String);

/// Writes registry changes to the sites topic.
pub struct SitesTopic {
    producer: FutureProducer,
    topic: String,
}

impl SitesTopic {
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn new(brokers: &str, topic: &str) -> Result<Self, SitesTopicError> {
        // The registry decides what every collector accepts: acknowledged by all replicas.
        let producer: FutureProducer = config::durable_producer(brokers, Duration::from_secs(5))
            .create()
            .map_err(|e| SitesTopicError(e.to_string()))?;
        Ok(SitesTopic {
            producer,
            topic: topic.to_string(),
        })
    }
}

impl SitesAnnouncer for SitesTopic {
    fn announce<'a>(
        &'a self,
        site: &'a str,
        registered: Option<&'a RegisteredSite>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let value = registered
                .map(|r| {
                    serde_json::to_vec(&SiteRecord {
                        v: SITE_RECORD_VERSION,
                        site: r.site.clone(),
                        added_at: r.added_at,
                    })
                })
                .transpose()
                .map_err(|e| e.to_string())?;
            let mut record: FutureRecord<'_, str, [u8]> =
                FutureRecord::to(&self.topic).partition(0).key(site);
            if let Some(value) = &value {
                record = record.payload(value.as_slice());
            }
            self.producer
                .send(record, Duration::from_secs(5))
                .await
                .map(drop)
                .map_err(|(e, _)| e.to_string())
        })
    }
}
