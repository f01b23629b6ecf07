//! The Kafka source: a consumer-group member on `footfall.events`. No rdkafka type leaves
//! this module.
//!
//! - Group `footfall-processors` (configurable), `enable.auto.commit=false`, offsets
//!   committed only by [`Source::commit`] (last offset + 1 per partition), which the pipeline
//!   calls after the store has the batch.
//! - `partition.assignment.strategy=cooperative-sticky`: adding or losing a processor moves
//!   only the partitions that must move; the others keep flowing during a rebalance.
//! - `auto.offset.reset=earliest`: a partition without a committed offset is read from the
//!   start (never "latest", which would skip events a collector already acknowledged).
//! - A commit that fails because the partition was revoked in a rebalance is logged and
//!   ignored: its new owner re-reads from the last committed offset, and the store ignores
//!   the events it already has.
//! - Rejected messages go to the dead-letter topic with headers `footfall-dlq-reason`,
//!   `footfall-source-topic`, `footfall-source-partition`, `footfall-source-offset`, through
//!   an idempotent acks=all producer (its key is the original's, or the event's site and
//!   visitor for an event the store refused).
//! - Client settings are `footfall_kafka::config`'s (group consumer, durable producer).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use footfall_kafka::config;
use footfall_kafka::message::event_key;
use protocol::event::decode;
use protocol::{validate, Event};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::{Checkpoint, Rejected, Source, SourceBatch, SourceError};
use crate::BoxFuture;

pub const DLQ_REASON: &str = "footfall-dlq-reason";
pub const DLQ_TOPIC: &str = "footfall-source-topic";
pub const DLQ_PARTITION: &str = "footfall-source-partition";
pub const DLQ_OFFSET: &str = "footfall-source-offset";

#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    pub brokers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub group: String,
    /// `session.timeout.ms`: how long a silent member (e.g. after kill -9) keeps its
    /// partitions before the group reassigns them.
    pub session_timeout: Duration,
}

impl KafkaSourceConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSourceConfig {
            brokers: brokers.into(),
            topic: "footfall.events".into(),
            dlq_topic: "footfall.events.dlq".into(),
            group: "footfall-processors".into(),
            session_timeout: Duration::from_secs(10),
        }
    }
}

/// See the module docs.
pub struct KafkaSource {
    consumer: Arc<StreamConsumer>,
    /// Replaced when it hits a fatal error (e.g. fenced after a broker restart), or the
    /// pipeline would retry a dead letter forever.
    dlq: RwLock<FutureProducer>,
    dlq_config: ClientConfig,
    dlq_topic: String,
}

impl KafkaSource {
    /// Creates the consumer and subscribes; partitions arrive with the first rebalance.
    ///
    /// # Errors
    /// [`SourceError::Unavailable`] when librdkafka refuses the configuration.
    pub fn new(config: &KafkaSourceConfig) -> Result<Self, SourceError> {
        // Offsets are committed explicitly from the pipeline's checkpoints only.
        let consumer: StreamConsumer =
            config::group_consumer(&config.brokers, &config.group, config.session_timeout)
                .create()
                .map_err(|e| SourceError::Unavailable(format!("consumer: {e}")))?;
        consumer
            .subscribe(&[config.topic.as_str()])
            .map_err(|e| SourceError::Unavailable(format!("subscribe: {e}")))?;
        let dlq_config = config::durable_producer(&config.brokers, Duration::from_secs(10));
        let dlq: FutureProducer = dlq_config
            .create()
            .map_err(|e| SourceError::Unavailable(format!("dead-letter producer: {e}")))?;
        Ok(KafkaSource {
            consumer: Arc::new(consumer),
            dlq: RwLock::new(dlq),
            dlq_config,
            dlq_topic: config.dlq_topic.clone(),
        })
    }

    /// Leaves the group now rather than after the session timeout, so the remaining members
    /// take over this member's partitions at once.
    pub async fn close(self) {
        let consumer = self.consumer;
        let _ = tokio::task::spawn_blocking(move || {
            consumer.unsubscribe();
            drop(consumer);
        })
        .await;
    }
}

/// Decodes and checks one message; `Err` is the reason it can never be stored.
fn read_event(payload: Option<&[u8]>) -> Result<Event, String> {
    let bytes = payload.ok_or("empty message")?;
    let event = decode(bytes).map_err(|e| e.to_string())?;
    validate::event_id(&event.event_id).map_err(|e| format!("invalid eventId: {}", e.message))?;
    let site = validate::site(&event.site).map_err(|e| format!("invalid site: {}", e.message))?;
    if site != event.site {
        return Err("site is not normalised".into());
    }
    Ok(event)
}

impl Source for KafkaSource {
    fn next_batch(
        &self,
        max: usize,
        linger: Duration,
    ) -> BoxFuture<'_, Result<SourceBatch, SourceError>> {
        Box::pin(async move {
            let mut batch = SourceBatch::default();
            let deadline = tokio::time::Instant::now() + linger;
            while batch.messages() < max.max(1) {
                let message = if batch.messages() == 0 {
                    self.consumer.recv().await
                } else {
                    match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                        Ok(m) => m,
                        Err(_) => break,
                    }
                };
                let message = match message {
                    Ok(m) => m,
                    Err(e) => {
                        // Transient client errors (broker down, rebalance) are reported by
                        // librdkafka as messages; it keeps reconnecting by itself.
                        if batch.messages() == 0 {
                            return Err(SourceError::Unavailable(e.to_string()));
                        }
                        break;
                    }
                };
                let (topic, partition, offset) =
                    (message.topic(), message.partition(), message.offset());
                batch.checkpoint.advance(topic, partition, offset);
                match read_event(message.payload()) {
                    Ok(event) => {
                        batch.events.push(event);
                        batch.origins.push(super::Position {
                            topic: topic.to_string(),
                            partition,
                            offset,
                        });
                    }
                    Err(reason) => batch.rejected.push(Rejected {
                        reason,
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().map(<[u8]>::to_vec),
                        origin: super::Position {
                            topic: topic.to_string(),
                            partition,
                            offset,
                        },
                    }),
                }
            }
            Ok(batch)
        })
    }

    fn dead_letter<'a>(&'a self, rejected: &'a Rejected) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let partition = rejected.origin.partition.to_string();
            let offset = rejected.origin.offset.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: DLQ_REASON,
                    value: Some(rejected.reason.as_str()),
                })
                .insert(Header {
                    key: DLQ_TOPIC,
                    value: Some(rejected.origin.topic.as_str()),
                })
                .insert(Header {
                    key: DLQ_PARTITION,
                    value: Some(partition.as_str()),
                })
                .insert(Header {
                    key: DLQ_OFFSET,
                    value: Some(offset.as_str()),
                });
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.dlq_topic).headers(headers);
            // An event the store refused has no message key of its own: the events topic's.
            let derived = match (&rejected.key, &rejected.payload) {
                (None, Some(payload)) => decode(payload)
                    .ok()
                    .map(|e| event_key(&e.site, &e.visitor_id).into_bytes()),
                _ => None,
            };
            if let Some(key) = rejected.key.as_ref().or(derived.as_ref()) {
                record = record.key(key.as_slice());
            }
            if let Some(payload) = &rejected.payload {
                record = record.payload(payload.as_slice());
            }
            let producer = self
                .dlq
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let result = producer.send(record, Duration::from_secs(1)).await;
            match result {
                Ok(_) => Ok(()),
                Err((e, _)) => {
                    if producer.client().fatal_error().is_some() {
                        if let Ok(fresh) = self.dlq_config.create::<FutureProducer>() {
                            tracing::warn!("dead-letter producer hit a fatal error; replaced it");
                            *self.dlq.write().unwrap_or_else(PoisonError::into_inner) = fresh;
                        }
                    }
                    Err(SourceError::DeadLetter(e.to_string()))
                }
            }
        })
    }

    fn commit<'a>(&'a self, checkpoint: &'a Checkpoint) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let mut offsets = TopicPartitionList::new();
            for p in &checkpoint.0 {
                offsets
                    .add_partition_offset(&p.topic, p.partition, Offset::Offset(p.offset + 1))
                    .map_err(|e| SourceError::Commit(e.to_string()))?;
            }
            let consumer = self.consumer.clone();
            tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
                .await
                .map_err(|e| SourceError::Commit(e.to_string()))?
                .map_err(|e| SourceError::Commit(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_messages_have_a_reason() {
        assert_eq!(read_event(None), Err("empty message".into()));
        assert!(read_event(Some(b"not json")).is_err());
        assert!(read_event(Some(br#"{"v":99}"#))
            .unwrap_err()
            .contains("version"));
    }
}
