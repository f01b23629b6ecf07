//! The Kafka sink: one idempotent producer per collector.
//!
//! Durability: `acks=all` + `enable.idempotence=true`, and `send_batch` awaits the delivery
//! report of every event before it resolves, so the collector's 2xx means "in the in-sync
//! replicas". Retries inside librdkafka cannot duplicate or reorder (idempotence), and a
//! client retry after a 503 can only duplicate, which the stores ignore by `eventId`.
//!
//! Health: a failed delivery marks the sink unhealthy at once, and from then on batches are
//! refused with 503 immediately instead of waiting out the delivery timeout; a probe task
//! fetches the topic's metadata every `probe_interval` and marks the sink healthy again when
//! every partition has a leader. `/readyz` follows that flag.
//!
//! Recovery: an idempotent producer can hit a fatal error (e.g. the broker lost its producer
//! state in a restart and answers `ProducerFenced`); librdkafka then refuses every further
//! message. The probe notices and replaces the producer with a fresh one (new producer id).
//! The events of the failed requests were answered 503, so nothing acknowledged is lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use footfall_http::MetricsRegistry;
use futures_util::future::join_all;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};
use protocol::event::{encode, SCHEMA_VERSION};
use protocol::Event;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::task::JoinHandle;

use crate::sinks::{Sink, SinkError};
use crate::BoxFuture;
use footfall_kafka::message::{event_key, SCHEMA_HEADER};
use footfall_kafka::{config, KafkaError};

pub const PRODUCED: &str = "footfall_kafka_produced_total";
pub const DELIVERY_ERRORS: &str = "footfall_kafka_delivery_errors_total";
pub const PRODUCE_BATCH_SIZE: &str = "footfall_kafka_produce_batch_size";

#[derive(Debug, Clone)]
pub struct KafkaSinkConfig {
    pub brokers: String,
    pub topic: String,
    /// `message.timeout.ms`: how long librdkafka keeps retrying one event before reporting
    /// failure. Keep it below the collector's request timeout so the client hears 503, not a
    /// dropped connection.
    pub delivery_timeout: Duration,
    /// `queue.buffering.max.messages`: the bounded in-flight queue; when full, requests get
    /// 503 (`Overloaded`) instead of the collector buffering without bound.
    pub queue_max_messages: usize,
    /// `linger.ms`: how long the producer waits to fill a batch; a few ms buys large batches
    /// under load at a small latency cost.
    pub linger: Duration,
    /// How often the health probe asks the brokers for metadata.
    pub probe_interval: Duration,
}

impl KafkaSinkConfig {
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaSinkConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            delivery_timeout: Duration::from_secs(5),
            queue_max_messages: 100_000,
            linger: Duration::from_millis(5),
            probe_interval: Duration::from_secs(1),
        }
    }

    /// The librdkafka settings of the sink's producer, as `(name, value)` pairs (no rdkafka
    /// type leaves this module). Public so that `bench/kafka.sh` measures a raw producer with
    /// exactly these settings against the collector.
    pub fn producer_settings(&self) -> Vec<(String, String)> {
        self.client_config()
            .config_map()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    /// A durable producer (acks=all, idempotence), lz4-compressed, with this sink's tunables.
    fn client_config(&self) -> rdkafka::ClientConfig {
        let mut client_config = config::durable_producer(&self.brokers, self.delivery_timeout);
        client_config
            .set("compression.type", "lz4")
            .set("linger.ms", self.linger.as_millis().to_string())
            .set(
                "queue.buffering.max.messages",
                self.queue_max_messages.max(1).to_string(),
            );
        client_config
    }
}

struct Metrics {
    produced: IntCounter,
    delivery_errors: IntCounterVec,
    batch_size: Histogram,
}

impl Metrics {
    fn new() -> Self {
        Metrics {
            produced: IntCounter::new(PRODUCED, "Events acknowledged by Kafka")
                .expect("static metric definition"),
            delivery_errors: IntCounterVec::new(
                Opts::new(DELIVERY_ERRORS, "Events Kafka did not acknowledge, by kind"),
                &["kind"],
            )
            .expect("static metric definition"),
            // Powers of four up to the collector's batch cap.
            batch_size: Histogram::with_opts(
                HistogramOpts::new(PRODUCE_BATCH_SIZE, "Events per produced batch")
                    .buckets(vec![1.0, 4.0, 16.0, 64.0, 256.0, 1024.0]),
            )
            .expect("static metric definition"),
        }
    }
}

/// What the sink and its probe task share.
struct Shared {
    /// Replaced as a whole when the current one hits a fatal error.
    producer: RwLock<FutureProducer>,
    config: rdkafka::ClientConfig,
    healthy: AtomicBool,
    /// Set by a delivery error that only a new producer can clear.
    replace_producer: AtomicBool,
}

impl Shared {
    fn producer(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Errors after which librdkafka's idempotent producer cannot continue.
fn needs_new_producer(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::UnknownProducerId
            | RDKafkaErrorCode::OutOfOrderSequenceNumber
            | RDKafkaErrorCode::Fatal
    )
}

/// See the module docs.
pub struct KafkaSink {
    shared: Arc<Shared>,
    topic: String,
    metrics: Metrics,
    probe: JoinHandle<()>,
}

impl KafkaSink {
    /// Creates the producer and starts the health probe. Does not wait for the brokers; call
    /// [`super::ensure_topics`] first to fail fast when they are unreachable.
    ///
    /// # Errors
    /// [`KafkaError::InvalidSetting`] when librdkafka refuses the configuration.
    pub fn new(config: KafkaSinkConfig) -> Result<Self, KafkaError> {
        let client_config = config.client_config();
        let producer: FutureProducer = client_config
            .create()
            .map_err(|e| KafkaError::InvalidSetting(format!("producer: {e}")))?;
        let shared = Arc::new(Shared {
            producer: RwLock::new(producer),
            config: client_config,
            healthy: AtomicBool::new(true),
            replace_producer: AtomicBool::new(false),
        });
        let probe = tokio::spawn(probe(
            shared.clone(),
            config.topic.clone(),
            config.probe_interval,
        ));
        Ok(KafkaSink {
            shared,
            topic: config.topic,
            metrics: Metrics::new(),
            probe,
        })
    }

    /// Adds the sink's metrics to `registry` (the collector's, so `/metrics` shows them).
    pub fn register_metrics(&self, registry: &MetricsRegistry) {
        registry.register(self.metrics.produced.clone());
        registry.register(self.metrics.delivery_errors.clone());
        registry.register(self.metrics.batch_size.clone());
    }

    fn delivery_failed(&self, error: &RdKafkaError) -> SinkError {
        let (kind, sink_error) = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::QueueFull) => ("queue_full", SinkError::Overloaded),
            Some(RDKafkaErrorCode::MessageTimedOut) => ("timeout", SinkError::Timeout),
            _ => ("unavailable", SinkError::Unavailable(error.to_string())),
        };
        self.metrics
            .delivery_errors
            .with_label_values(&[kind])
            .inc();
        if error.rdkafka_error_code().is_some_and(needs_new_producer) {
            self.shared.replace_producer.store(true, Ordering::SeqCst);
        }
        // A full local queue says nothing about the brokers; everything else does.
        if kind != "queue_full" && self.shared.healthy.swap(false, Ordering::SeqCst) {
            tracing::warn!(error = %error, "Kafka delivery failed; collector is unready until the brokers answer again");
        }
        sink_error
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

impl Sink for KafkaSink {
    fn send_batch(&self, events: Vec<Event>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            if !self.shared.healthy.load(Ordering::SeqCst) {
                return Err(SinkError::Unavailable("Kafka brokers unreachable".into()));
            }
            let producer = self.shared.producer();
            self.metrics.batch_size.observe(events.len() as f64);
            let version = SCHEMA_VERSION.to_string();
            // Every payload first: an event that cannot be encoded fails the batch before any
            // of it is produced (never an empty message in its place).
            let payloads = events
                .iter()
                .map(encode)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SinkError::Unavailable(e.to_string()))?;
            let mut deliveries = Vec::with_capacity(events.len());
            let mut enqueue_error = None;
            for (event, payload) in events.iter().zip(&payloads) {
                let key = event_key(&event.site, &event.visitor_id);
                let headers = OwnedHeaders::new().insert(Header {
                    key: SCHEMA_HEADER,
                    value: Some(version.as_str()),
                });
                let record = FutureRecord::to(&self.topic)
                    .payload(payload)
                    .key(&key)
                    .headers(headers)
                    .timestamp(event.received_at);
                match producer.send_result(record) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err((e, _)) => {
                        // Events already queued are delivered anyway; the client's retry
                        // of the whole batch is deduplicated by eventId.
                        enqueue_error = Some(e);
                        break;
                    }
                }
            }
            let mut first_error = enqueue_error.map(|e| self.delivery_failed(&e));
            let mut delivered = 0u64;
            for outcome in join_all(deliveries).await {
                match outcome {
                    Ok(Ok(_)) => delivered += 1,
                    Ok(Err((e, _))) => {
                        let err = self.delivery_failed(&e);
                        first_error.get_or_insert(err);
                    }
                    // The producer dropped the report: treat as not delivered.
                    Err(_) => {
                        first_error
                            .get_or_insert(SinkError::Unavailable("delivery report lost".into()));
                    }
                }
            }
            self.metrics.produced.inc_by(delivered);
            match first_error {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
    }

    fn is_ready(&self) -> bool {
        self.shared.healthy.load(Ordering::SeqCst)
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let producer = self.shared.producer();
            tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(10)))
                .await
                .map_err(|e| SinkError::Unavailable(e.to_string()))?
                .map_err(|e| SinkError::Unavailable(e.to_string()))
        })
    }
}

/// Marks the sink healthy when the brokers serve metadata for `topic` with a leader for
/// every partition, unhealthy when they do not; replaces a producer that hit a fatal error.
async fn probe(shared: Arc<Shared>, topic: String, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let producer = shared.producer();
        let fatal = producer.client().fatal_error();
        if fatal.is_some() || shared.replace_producer.swap(false, Ordering::SeqCst) {
            match shared.config.create::<FutureProducer>() {
                Ok(fresh) => {
                    tracing::warn!(
                        fatal = ?fatal,
                        "Kafka producer cannot continue; replaced it with a new one"
                    );
                    *shared
                        .producer
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = fresh;
                }
                Err(e) => tracing::error!(error = %e, "cannot create a new Kafka producer"),
            }
            // The old producer may hold undeliverable messages: drop it off the runtime.
            tokio::task::spawn_blocking(move || drop(producer));
            continue;
        }
        let topic = topic.clone();
        let timeout = interval.max(Duration::from_millis(500));
        let ok = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map(|m| {
                    m.topics().iter().any(|t| {
                        t.name() == topic
                            && t.error().is_none()
                            && !t.partitions().is_empty()
                            && t.partitions().iter().all(|p| p.leader() >= 0)
                    })
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let was = shared.healthy.swap(ok, Ordering::SeqCst);
        if ok && !was {
            tracing::info!("Kafka brokers reachable again; collector is ready");
        } else if !ok && was {
            tracing::warn!("Kafka brokers unreachable; collector is unready");
        }
    }
}
