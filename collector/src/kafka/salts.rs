//! The daily visitor salt, shared by every collector of a deployment through Kafka.
//!
//! **Why:** the visitor id is a keyed hash of (salt, site, IP, user agent). Collectors behind
//! one load balancer must hash with the same salt on the same UTC day, or one visitor counts
//! once per collector; and a salt must become unrecoverable once its day is over, so that
//! nobody can later recompute visitor ids from IP + user agent. A per-process salt
//! ([`EphemeralSalts`](crate::salt::EphemeralSalts)) breaks the first rule.
//!
//! **Design:** a single-partition topic (`footfall.salts`) is a totally ordered log, which is
//! all an agreement protocol needs:
//! 1. A collector that needs day D's salt draws a random candidate and produces it with
//!    acks=all under the key `D:<random writer id>`; the delivery report tells it the offset
//!    `o` where its candidate landed.
//! 2. It reads the partition from the beginning up to `o`. The **first** record for day D in
//!    log order wins — its own candidate if nobody was earlier. Every collector sees the same
//!    log prefix, so all pick the same winner; no watermark (unreliable on some brokers) and
//!    no coordinator is needed.
//! 3. It writes tombstones for every key of a day that is over it saw.
//!
//! Keys are unique per writer so that compaction can never replace an earlier winner with a
//! later loser. The topic is created with `cleanup.policy=compact,delete`, `retention.ms`
//! of 25 h (a winner is written during its day, so it outlives the day by the retention's
//! slack and no more) and hourly segments with an eager cleaner, so old salts physically
//! disappear: tombstoned ones at the next compaction, all of them by retention at the latest.
//! Raw IPs never leave the collector: only the hash is in events; salts never leave Kafka
//! and the collectors' memory (each collector caches only the current day's).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use protocol::visitor::Salt;
use rand::RngCore;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::salt::{random_salt, SaltError, SaltSource};
use crate::BoxFuture;
use footfall_kafka::{config, KafkaError, TopicSpec};

/// How long one agreement round may take before the request that needs the salt gets 503.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

/// See the module docs.
pub struct KafkaSalts {
    topic: String,
    producer_config: rdkafka::ClientConfig,
    consumer_config: rdkafka::ClientConfig,
    /// One producer and one reader for every round, made on first use. A round that fails
    /// drops them, so the next round starts with new ones: an idempotent producer that a
    /// broker restart fenced would otherwise refuse every later round.
    producer: Mutex<Option<FutureProducer>>,
    reader: Arc<Mutex<Option<BaseConsumer>>>,
}

impl KafkaSalts {
    /// # Errors
    /// [`KafkaError::InvalidSetting`] when librdkafka refuses the configuration.
    pub fn new(brokers: &str, topic: &str) -> Result<Self, KafkaError> {
        let producer_config = config::durable_producer(brokers, Duration::from_secs(5));
        // Checked now so a bad setting fails at start-up, not on the first request of a day.
        let _: FutureProducer = producer_config
            .create()
            .map_err(|e| KafkaError::InvalidSetting(format!("salt producer: {e}")))?;
        let consumer_config = config::topic_reader(brokers, "footfall-salts-reader");
        Ok(KafkaSalts {
            topic: topic.to_string(),
            producer_config,
            consumer_config,
            producer: Mutex::new(None),
            reader: Arc::new(Mutex::new(None)),
        })
    }

    fn producer(&self) -> Result<FutureProducer, String> {
        let mut slot = self.producer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(producer) = &*slot {
            return Ok(producer.clone());
        }
        let producer: FutureProducer = self
            .producer_config
            .create()
            .map_err(|e| format!("salt producer: {e}"))?;
        *slot = Some(producer.clone());
        Ok(producer)
    }

    /// Forgets the clients after a failed round (see [`KafkaSalts::producer`]).
    fn reset(&self) {
        *self.producer.lock().unwrap_or_else(PoisonError::into_inner) = None;
        *self.reader.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The salts topic as it must be created (see the module docs for the settings).
    pub fn topic_spec(name: &str, replication_factor: i32) -> TopicSpec {
        TopicSpec::new(name, 1, replication_factor)
            .with("cleanup.policy", "compact,delete")
            .with("retention.ms", 25 * 3_600_000u64)
            .with("segment.ms", 3_600_000u64)
            .with("min.cleanable.dirty.ratio", "0.01")
            .with("delete.retention.ms", 3_600_000u64)
    }

    async fn agree(&self, day: i64) -> Result<Salt, String> {
        let candidate = random_salt();
        let mut writer = [0u8; 8];
        rand::rng().fill_bytes(&mut writer);
        let key = format!("{day}:{}", hex::encode(writer));
        let producer = self.producer()?;
        let delivery = producer
            .send(
                FutureRecord::to(&self.topic)
                    .partition(0)
                    .key(&key)
                    .payload(&candidate.as_bytes()[..]),
                Duration::from_secs(1),
            )
            .await
            .map_err(|(e, _)| format!("cannot write a salt candidate: {e}"))?;
        let (partition, offset) = (delivery.partition, delivery.offset);
        let (reader, config, topic) = (
            self.reader.clone(),
            self.consumer_config.clone(),
            self.topic.clone(),
        );
        let (winner, stale_keys) = tokio::task::spawn_blocking(move || {
            let mut reader = reader.lock().unwrap_or_else(PoisonError::into_inner);
            if reader.is_none() {
                *reader = Some(config.create().map_err(|e| e.to_string())?);
            }
            match &*reader {
                Some(consumer) => read_log(consumer, &topic, partition, offset, day),
                None => Err("no salt reader".to_string()),
            }
        })
        .await
        .map_err(|e| e.to_string())??;
        for stale in stale_keys {
            // Best effort: a tombstone that fails now is written by the next rotation.
            let record: FutureRecord<'_, String, [u8]> =
                FutureRecord::to(&self.topic).partition(0).key(&stale);
            if let Err((e, _)) = producer.send(record, Duration::from_secs(1)).await {
                tracing::warn!(error = %e, "cannot tombstone an old salt");
            }
        }
        Ok(winner)
    }
}

impl SaltSource for KafkaSalts {
    fn salt_for_day(&self, day: i64) -> BoxFuture<'_, Result<Salt, SaltError>> {
        Box::pin(async move {
            let round = tokio::time::timeout(ROUND_TIMEOUT, self.agree(day))
                .await
                .map_err(|_| SaltError("salt agreement through Kafka timed out".into()))
                .and_then(|r| r.map_err(SaltError));
            if round.is_err() {
                self.reset();
            }
            round
        })
    }
}

/// Reads `partition` of `topic` from the start up to `until` (inclusive): the first salt of
/// `day`, and the live keys of days that are over (to tombstone; today's stays when
/// tomorrow's is agreed ahead of midnight).
fn read_log(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    until: i64,
    day: i64,
) -> Result<(Salt, Vec<String>), String> {
    let over_before = day.min(protocol::visitor::day_of(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    ));
    // (Re-)assigning starts the reader from the beginning again.
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(|e| e.to_string())?;
    consumer.assign(&assignment).map_err(|e| e.to_string())?;

    let deadline = Instant::now() + ROUND_TIMEOUT;
    let mut winner: Option<Salt> = None;
    let mut stale = BTreeSet::new();
    while Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(|e| e.to_string())?;
        let key = message.key().and_then(|k| std::str::from_utf8(k).ok());
        let record_day = key
            .and_then(|k| k.split_once(':'))
            .and_then(|(d, _)| d.parse::<i64>().ok());
        if let (Some(key), Some(record_day)) = (key, record_day) {
            match message.payload() {
                None => {
                    stale.remove(key);
                }
                Some(bytes) => {
                    if record_day < over_before {
                        stale.insert(key.to_string());
                    } else if record_day == day && winner.is_none() {
                        if let Ok(bytes) = <[u8; 32]>::try_from(bytes) {
                            winner = Some(Salt::from_bytes(bytes));
                        }
                    }
                }
            }
        }
        if message.offset() >= until {
            return winner
                .map(|w| (w, stale.into_iter().collect()))
                .ok_or_else(|| "own salt candidate not found in the log".to_string());
        }
    }
    Err("timed out reading the salts topic".into())
}
