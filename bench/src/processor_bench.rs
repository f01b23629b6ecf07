//! Processor throughput: the real pipeline (Kafka source → SQLite store, commit after store)
//! against a raw bulk insert of the same events into the same kind of store, measured in the
//! same run. Prints events/s of both and the ratio (target ≥ 70%), and the events each
//! stores per CPU-second of this process (librdkafka's threads included), with `RESULT`
//! lines for `bench/run`.
//!
//! `processor-bench BROKERS [EVENTS]` — BROKERS is a running Kafka-protocol broker (the
//! script `bench/distributed.sh` starts tansu for it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use footfall_kafka::{ensure_topics, TopicSpec};
use processor::pipeline::{self, PipelineConfig, PipelineMetrics};
use processor::source::{KafkaSource, KafkaSourceConfig, Source};
use processor::store::SqliteConfig;
use processor::{SqliteStore, Store};
use protocol::event::{encode, Event};
use protocol::fixture::EventBuilder;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

const BATCH: usize = 2000;

/// CPU time this process has used so far (user + system), from `/proc/self/stat`. The
/// kernel reports it in USER_HZ ticks, which is 100 on every Linux architecture's ABI.
fn cpu_seconds() -> f64 {
    const USER_HZ: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start with the state, field 3;
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / USER_HZ,
        _ => f64::NAN,
    }
}

fn event(i: usize) -> Event {
    let ts = 1_764_000_000_000 + i as i64;
    EventBuilder::new("bench.test", "page_view", ts)
        .id(format!("bench-{i:010}"))
        .visitor(format!("visitor{}", i % 500))
        .session(format!("s{}", i % 700))
        .host("bench.test")
        .path(format!("/page/{}", i % 50))
        .title("A page")
        .screen("1920x1080")
        .lang("en-US")
        .timezone("Europe/Berlin")
        .build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let brokers = args
        .next()
        .ok_or("usage: processor-bench BROKERS [EVENTS]")?;
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50_000);
    let topic = format!("bench.events.{}", std::process::id());
    ensure_topics(
        &brokers,
        &[
            TopicSpec::new(&topic, 6, 1),
            TopicSpec::new("bench.dlq", 1, 1),
        ],
        Duration::from_secs(10),
    )
    .await?;
    let events: Vec<Event> = (0..n).map(event).collect();

    // Fill the topic first, so the measurement is the processor alone.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .create()?;
    let started = Instant::now();
    for chunk in events.chunks(5000) {
        let mut deliveries = Vec::new();
        for e in chunk {
            let key = format!("{}\u{1f}{}", e.site, e.visitor_id);
            let payload = encode(e)?;
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            // A chunk fits the producer's queue (100k messages), so enqueueing cannot fail
            // for lack of space.
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
        }
        for d in deliveries {
            d.await?.map_err(|(e, _)| e)?;
        }
    }
    eprintln!("produced {n} events in {:?}", started.elapsed());

    // The pipeline.
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(SqliteConfig::new(
        dir.path().join("pipeline"),
    ))?);
    let source = KafkaSource::new(&KafkaSourceConfig {
        topic: topic.clone(),
        dlq_topic: "bench.dlq".into(),
        group: format!("bench-{}", std::process::id()),
        ..KafkaSourceConfig::new(&brokers)
    })?;
    let metrics = PipelineMetrics::new();
    let config = PipelineConfig {
        max_batch: BATCH,
        ..PipelineConfig::default()
    };
    // Timed from the first batch on: joining the consumer group takes seconds (the group
    // coordinator waits for more members) and is not throughput. The first batch is not
    // counted either, so both rates below measure the same thing.
    let started = Instant::now();
    let first = std::cell::Cell::new(None::<(Instant, u64, f64)>);
    let done = async {
        while metrics.stored() < n as u64 {
            if first.get().is_none() && metrics.consumed() > 0 {
                first.set(Some((Instant::now(), metrics.consumed(), cpu_seconds())));
            }
            if started.elapsed() > Duration::from_secs(300) {
                eprintln!("gave up: stored {} of {n}", metrics.stored());
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    pipeline::run(&source, store, &config, &metrics, done).await;
    let (t0, c0, cpu0) = first.get().ok_or("nothing consumed")?;
    let pipeline_events = n as u64 - c0;
    let pipeline_secs = t0.elapsed().as_secs_f64();
    let pipeline_cpu = cpu_seconds() - cpu0;
    source.close().await;

    // The broker's ceiling: the same source read to the end (decode included), no store.
    let source = KafkaSource::new(&KafkaSourceConfig {
        topic: topic.clone(),
        dlq_topic: "bench.dlq".into(),
        group: format!("bench-read-{}", std::process::id()),
        ..KafkaSourceConfig::new(&brokers)
    })?;
    let first_batch = source
        .next_batch(BATCH, Duration::from_millis(20))
        .await?
        .messages();
    let started = Instant::now();
    let mut read = first_batch;
    while read < n && started.elapsed() < Duration::from_secs(300) {
        read += source
            .next_batch(BATCH, Duration::from_millis(20))
            .await?
            .messages();
    }
    let read_events = read - first_batch;
    let read_secs = started.elapsed().as_secs_f64();
    source.close().await;

    // The raw bulk insert of the same events, in batches of the same size.
    let raw: Arc<dyn Store> = Arc::new(SqliteStore::open(SqliteConfig::new(
        dir.path().join("raw"),
    ))?);
    let started = Instant::now();
    let cpu0 = cpu_seconds();
    for chunk in events.chunks(BATCH) {
        raw.insert_batch(chunk.to_vec().into()).await?;
    }
    let raw_secs = started.elapsed().as_secs_f64();
    let raw_cpu = cpu_seconds() - cpu0;

    let pipeline_rate = pipeline_events as f64 / pipeline_secs;
    let raw_rate = n as f64 / raw_secs;
    println!("processor (kafka -> sqlite): {pipeline_events} events in {pipeline_secs:.2} s = {pipeline_rate:.0} events/s");
    println!("raw bulk insert (sqlite):    {n} events in {raw_secs:.2} s = {raw_rate:.0} events/s");
    let read_rate = read_events as f64 / read_secs;
    println!("consume only (kafka, no store): {read_events} events in {read_secs:.2} s = {read_rate:.0} events/s");
    println!(
        "ratio: {:.0}% of raw bulk insert (target >= 70%)",
        100.0 * pipeline_rate / raw_rate
    );
    println!(
        "pipeline vs the broker's delivery rate (consume only): {:.0}%",
        100.0 * pipeline_rate / read_rate
    );
    let pipeline_per_core = pipeline_events as f64 / pipeline_cpu;
    let raw_per_core = n as f64 / raw_cpu;
    println!(
        "events/s per core: processor {pipeline_per_core:.0} (CPU {pipeline_cpu:.2} s), raw bulk insert {raw_per_core:.0} (CPU {raw_cpu:.2} s)"
    );
    println!("RESULT processor_eps {pipeline_rate:.0}");
    println!("RESULT processor_raw_eps {raw_rate:.0}");
    println!("RESULT processor_events_per_core {pipeline_per_core:.0}");
    println!("RESULT processor_raw_events_per_core {raw_per_core:.0}");
    Ok(())
}
