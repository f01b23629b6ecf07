//! The baseline of the Kafka-mode ingest benchmark (`bench/kafka.sh`): a raw rdkafka
//! `FutureProducer` with the collector's own producer settings
//! ([`KafkaSinkConfig::producer_settings`]: acks=all, idempotence, lz4, linger) sending the
//! collector's own messages to the same broker and topic.
//!
//! ```text
//! kafka-bench --brokers 127.0.0.1:9092 [--topic footfall.events] [--duration 8]
//!             [--connections 32] [--events 5] [--linger-ms 5] [--delivery-timeout-ms 5000]
//!             [--producer-queue 100000]
//! ```
//!
//! The messages are the collector's, byte for byte: before timing, it reads the first
//! `--events` messages of the topic (the one beacon `bench/kafka.sh` sends the collector
//! first), decodes them with `protocol::event::decode`, and checks that re-encoding each with
//! `protocol::event::encode`, its key with [`event_key`] and its header reproduces the
//! message exactly. It then sends copies with a fresh event id of the same length (and the
//! current `received_at`), encoded per message as the collector encodes per request.
//!
//! Concurrency is the load generator's: `--connections` tasks, each sending one beacon's
//! events and awaiting every delivery report before the next — what one keep-alive HTTP
//! connection does to the collector, whose `send_batch` awaits every report before the 2xx.
//! Prints one line of `key=value` pairs for the script.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use collector::kafka::KafkaSinkConfig;
use footfall_kafka::message::{event_key, SCHEMA_HEADER};
use protocol::event::{decode, encode, SCHEMA_VERSION};
use protocol::Event;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

struct Args {
    brokers: String,
    topic: String,
    duration: Duration,
    connections: usize,
    events: usize,
    linger_ms: u64,
    delivery_timeout_ms: u64,
    producer_queue: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        brokers: String::new(),
        topic: "footfall.events".into(),
        duration: Duration::from_secs(8),
        connections: 32,
        events: 5,
        linger_ms: 5,
        delivery_timeout_ms: 5000,
        producer_queue: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || value.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--brokers" => args.brokers = value.clone(),
            "--topic" => args.topic = value.clone(),
            "--duration" => args.duration = Duration::from_secs_f64(num()?.max(0.1)),
            "--connections" => args.connections = (num()? as usize).max(1),
            "--events" => args.events = (num()? as usize).clamp(1, 100),
            "--linger-ms" => args.linger_ms = num()? as u64,
            "--delivery-timeout-ms" => args.delivery_timeout_ms = (num()? as u64).max(1),
            "--producer-queue" => args.producer_queue = (num()? as usize).max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.brokers.is_empty() {
        return Err("--brokers is required".into());
    }
    Ok(args)
}

/// One message as the collector produced it.
struct Captured {
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

/// The first `n` messages of `topic` (all partitions, from the beginning).
fn capture(brokers: &str, topic: &str, n: usize) -> Result<Vec<Captured>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "footfall-kafka-bench-template")
        .set("enable.auto.commit", "false")
        // Only the first few messages are wanted; do not pull megabytes of later rounds.
        .set("max.partition.fetch.bytes", "65536")
        .set("log_level", "3")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .map_err(|e| format!("metadata: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            assignment
                .add_partition_offset(topic, p.id(), Offset::Beginning)
                .map_err(|e| format!("assign: {e}"))?;
        }
    }
    if assignment.count() == 0 {
        return Err(format!("topic {topic} has no partitions"));
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign: {e}"))?;
    // Each partition's messages arrive in offset order; the beacon's events share a key, so
    // they are the first messages of one partition.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out: Vec<Captured> = Vec::with_capacity(n);
    let mut partition = None;
    while out.len() < n {
        if Instant::now() > deadline {
            return Err(format!("only {} of {n} messages in {topic}", out.len()));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(|e| format!("consume: {e}"))?;
        if *partition.get_or_insert(message.partition()) != message.partition() {
            continue;
        }
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Captured {
            key: message.key().unwrap_or_default().to_vec(),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    Ok(out)
}

/// Decodes the captured messages and checks that the collector's encoding of the decoded
/// events reproduces them byte for byte: only then does the baseline send the same messages.
fn template(captured: &[Captured]) -> Result<Vec<Event>, String> {
    let version = SCHEMA_VERSION.to_string();
    captured
        .iter()
        .map(|c| {
            let event = decode(&c.payload).map_err(|e| format!("decode: {e}"))?;
            let payload = encode(&event).map_err(|e| format!("encode: {e}"))?;
            if payload != c.payload {
                return Err("re-encoded payload differs from the collector's".into());
            }
            if event_key(&event.site, &event.visitor_id).as_bytes() != c.key.as_slice() {
                return Err("key differs from the collector's".into());
            }
            if c.headers != [(SCHEMA_HEADER.to_string(), version.clone().into_bytes())] {
                return Err(format!("headers differ: {:?}", c.headers));
            }
            Ok(event)
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Default)]
struct Tally {
    /// Per beacon: from the first send to the last delivery report.
    latencies_us: Vec<u64>,
    delivered: u64,
    failed: u64,
    payload_bytes: u64,
}

/// One "connection": a beacon's events, await every report, repeat until `deadline`.
async fn connection(
    producer: FutureProducer,
    topic: Arc<String>,
    template: Arc<Vec<Event>>,
    index: usize,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let version = SCHEMA_VERSION.to_string();
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let started = Instant::now();
        let received_at = now_ms();
        let mut deliveries = Vec::with_capacity(template.len());
        for (i, original) in template.iter().enumerate() {
            let mut event = original.clone();
            // Unique per message and as long as the collector's id, so message sizes match.
            let width = original.event_id.len().saturating_sub(1).max(1);
            event.event_id = format!("r{:0width$}", (n * 100 + i as u64) * 1000 + index as u64);
            event.received_at = received_at;
            let Ok(payload) = encode(&event) else {
                tally.failed += 1;
                continue;
            };
            tally.payload_bytes += payload.len() as u64;
            let key = event_key(&event.site, &event.visitor_id);
            let headers = OwnedHeaders::new().insert(Header {
                key: SCHEMA_HEADER,
                value: Some(version.as_str()),
            });
            let record = FutureRecord::to(&topic)
                .payload(&payload)
                .key(&key)
                .headers(headers)
                .timestamp(received_at);
            match producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err(_) => tally.failed += 1,
            }
        }
        // Every report before the next beacon, as the collector's 2xx waits for them all.
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => tally.delivered += 1,
                _ => tally.failed += 1,
            }
        }
        tally
            .latencies_us
            .push(started.elapsed().as_micros() as u64);
    }
    tally
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kafka-bench: {e}");
            std::process::exit(2);
        }
    };
    let template = match capture(&args.brokers, &args.topic, args.events)
        .and_then(|captured| template(&captured))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("kafka-bench: cannot take the collector's messages as the template: {e}");
            std::process::exit(1);
        }
    };
    let settings = KafkaSinkConfig {
        delivery_timeout: Duration::from_millis(args.delivery_timeout_ms),
        queue_max_messages: args.producer_queue,
        linger: Duration::from_millis(args.linger_ms),
        ..KafkaSinkConfig::new(&args.brokers, &args.topic)
    };
    let mut client_config = ClientConfig::new();
    for (name, value) in settings.producer_settings() {
        client_config.set(name, value);
    }
    let producer: FutureProducer = match client_config.create() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kafka-bench: producer: {e}");
            std::process::exit(1);
        }
    };
    let topic = Arc::new(args.topic.clone());
    let template = Arc::new(template);
    let started = Instant::now();
    let deadline = started + args.duration;
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| {
            tokio::spawn(connection(
                producer.clone(),
                topic.clone(),
                template.clone(),
                i,
                deadline,
            ))
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        if let Ok(t) = task.await {
            total.latencies_us.extend(t.latencies_us);
            total.delivered += t.delivered;
            total.failed += t.failed;
            total.payload_bytes += t.payload_bytes;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let sent = total.delivered + total.failed;
    println!(
        "events={} failed={} secs={secs:.2} events_per_sec={:.0} beacons_per_sec={:.0} \
         p50_ms={:.2} p99_ms={:.2} mean_payload_bytes={:.0} template=identical",
        total.delivered,
        total.failed,
        total.delivered as f64 / secs,
        total.latencies_us.len() as f64 / secs,
        percentile(&total.latencies_us, 50.0),
        percentile(&total.latencies_us, 99.0),
        total.payload_bytes as f64 / sent.max(1) as f64,
    );
}
