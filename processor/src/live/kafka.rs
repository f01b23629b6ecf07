//! Live metrics across processors, through the `footfall.metrics` topic. No rdkafka type
//! leaves this module.
//!
//! Each processor sees only its partitions of `footfall.events`. A [`MetricsPublisher`]
//! (a [`DeltaSink`]) publishes the deltas of each batch its store newly stored, one message
//! per site tagged with the store's write, and waits for the broker's acknowledgement, so
//! the batch's offsets are committed only after its live deltas are out (see `tee`).
//! Every gateway runs [`run_subscriber`]: a consumer of the *whole* topic in a group of its
//! own that never commits, starting from the earliest retained message — so a gateway that
//! (re)starts rebuilds today's totals and the last hour from the topic (24 h retention) —
//! and merges every delta into its hub. Deltas add counts and unite HyperLogLog sketches, so
//! the merge is order-independent and every dashboard on every instance shows global numbers.

use std::time::Duration;

use footfall_kafka::config;
use protocol::Event;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

use super::delta::{deltas_of_write, MetricsDelta, DELTA_VERSION};
use super::hub::LiveHub;
use super::tee::DeltaSink;
use crate::BoxFuture;

/// Header carrying the delta schema version; a gateway skips versions it cannot read.
pub const VERSION_HEADER: &str = "footfall-delta-version";

/// Why the metrics topic cannot be used: librdkafka refused the configuration or the
/// subscription (its message, so no Kafka type leaves this module).
#[derive(Debug, Clone, thiserror::Error)]
pub enum MetricsTopicError {
    #[error("metrics producer: {0}")]
    Producer(String),
    #[error("metrics consumer: {0}")]
    Consumer(String),
    #[error("metrics subscribe: {0}")]
    Subscribe(String),
}

/// See the module docs.
pub struct MetricsPublisher {
    producer: FutureProducer,
    topic: String,
}

impl MetricsPublisher {
    /// # Errors
    /// [`MetricsTopicError::Producer`] when librdkafka refuses the configuration.
    pub fn new(brokers: &str, topic: &str) -> Result<Self, MetricsTopicError> {
        // Live metrics are a view, not the record (see `footfall_kafka::config::live_producer`).
        let producer: FutureProducer = config::live_producer(brokers)
            .create()
            .map_err(|e| MetricsTopicError::Producer(e.to_string()))?;
        Ok(MetricsPublisher {
            producer,
            topic: topic.to_string(),
        })
    }

    /// Sends the deltas (one per site) and waits for every acknowledgement.
    async fn send(&self, deltas: Vec<MetricsDelta>) -> Result<(), String> {
        let version = DELTA_VERSION.to_string();
        let sends = deltas.iter().map(|delta| {
            let payload = protocol::api::to_json(delta);
            let version = version.as_str();
            async move {
                let record = FutureRecord::to(&self.topic)
                    .key(delta.site.as_str())
                    .payload(&payload)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: VERSION_HEADER,
                        value: Some(version),
                    }));
                self.producer
                    .send(record, Duration::from_secs(5))
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| format!("site {}: {e}", delta.site))
            }
        });
        // Sent together, so a batch of many sites costs one round trip, not one per site.
        futures_util::future::join_all(sends)
            .await
            .into_iter()
            .collect::<Result<(), String>>()
    }
}

impl DeltaSink for MetricsPublisher {
    fn publish<'a>(
        &'a self,
        write: Option<&'a str>,
        fresh: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.send(deltas_of_write(write, fresh.iter().copied()))
                .await
        })
    }
}

/// Consumes the whole metrics topic into `hub` until `shutdown` (see the module docs).
///
/// # Errors
/// [`MetricsTopicError`] when librdkafka refuses the configuration or the subscription.
pub async fn run_subscriber(
    brokers: &str,
    topic: &str,
    hub: LiveHub,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), MetricsTopicError> {
    // A group of its own: every gateway must see every partition, and nothing is committed.
    let group = format!("footfall-gateway-{}", uuid_like());
    let consumer: StreamConsumer = config::topic_reader(brokers, &group)
        .create()
        .map_err(|e| MetricsTopicError::Consumer(e.to_string()))?;
    consumer
        .subscribe(&[topic])
        .map_err(|e| MetricsTopicError::Subscribe(e.to_string()))?;
    tokio::pin!(shutdown);
    loop {
        let message = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            m = consumer.recv() => m,
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "metrics topic read failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let version_ok = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == VERSION_HEADER))
            .and_then(|h| h.value)
            .is_some_and(|v| v == DELTA_VERSION.to_string().as_bytes());
        let delta = message
            .payload()
            .filter(|_| version_ok)
            .and_then(|p| serde_json::from_slice::<MetricsDelta>(p).ok());
        match delta {
            Some(delta) if delta.v == DELTA_VERSION => hub.apply(&[delta]),
            _ => tracing::debug!(
                partition = message.partition(),
                offset = message.offset(),
                "skipping a metrics message this version cannot read"
            ),
        }
    }
}

fn uuid_like() -> String {
    let mut bytes = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}
