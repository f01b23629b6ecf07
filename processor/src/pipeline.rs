//! The processor's pipeline: source → store, one batch at a time.
//!
//! For each batch: dead-letter what can never be stored, insert the events into the store,
//! then commit the batch's checkpoint. Each step retries with backoff until it succeeds, so a
//! store or broker outage pauses consumption (nothing is committed, nothing crashes) and it
//! resumes by itself. Because the commit always comes last, kill -9 at any point can only
//! cause redelivery, which the store's `eventId` uniqueness absorbs.
//!
//! **A partition never stalls on one event.** When the store refuses a batch for good
//! ([`StoreError::Refused`]: a document over the database's limits, ...) or keeps failing it
//! while it takes other writes, the batch is split in halves, and the halves again, until the
//! events responsible stand alone; those are dead-lettered (with the reason) and the rest is
//! stored. An outage ([`StoreError::Unavailable`], a store that takes nothing) never
//! dead-letters anything: it only pauses.
//!
//! Graceful shutdown is checked between steps: a batch already inserted is committed before
//! [`run`] returns; a batch still waiting for an unavailable store is left uncommitted for the
//! next owner of its partitions.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use footfall_http::MetricsRegistry;
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

use std::collections::VecDeque;
use std::ops::Range;

use protocol::Event;

use crate::source::{Position, Rejected, Source, SourceBatch};
use crate::store::{Store, StoreError};

pub const CONSUMED: &str = "footfall_processor_messages_consumed_total";
pub const STORED: &str = "footfall_processor_events_stored_total";
pub const DUPLICATES: &str = "footfall_processor_duplicates_total";
pub const DEAD_LETTERED: &str = "footfall_processor_dead_lettered_total";
pub const BATCH_SIZE: &str = "footfall_processor_batch_size";
pub const ERRORS: &str = "footfall_processor_errors_total";
pub const UNCOMMITTED: &str = "footfall_processor_uncommitted_messages";
pub const CONSUMER_LAG: &str = "footfall_consumer_lag_messages";

/// Consecutive failures of one part of a batch, while the store says it is ready, after which
/// that part is split in search of an event the store cannot take.
const SPLIT_AFTER_FAILURES: u32 = 3;

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Most messages in one batch (one store insert, one commit).
    pub max_batch: usize,
    /// How long to keep filling a batch once its first message arrived.
    pub linger: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_batch: 2000,
            linger: Duration::from_millis(20),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// The pipeline's Prometheus metrics, in their own registry (see `registry`).
pub struct PipelineMetrics {
    registry: MetricsRegistry,
    consumed: IntCounter,
    stored: IntCounter,
    duplicates: IntCounter,
    dead_lettered: IntCounter,
    batch_size: Histogram,
    errors: IntCounterVec,
    uncommitted: IntGauge,
    lag: IntGauge,
}

impl PipelineMetrics {
    pub fn new() -> Self {
        Self::in_registry(MetricsRegistry::new())
    }

    /// The pipeline's metrics, registered in `r` (standalone: the one `/metrics` renders).
    pub fn in_registry(r: MetricsRegistry) -> Self {
        let m = PipelineMetrics {
            consumed: r.counter(CONSUMED, "Messages taken from the source"),
            stored: r.counter(STORED, "Events stored for the first time"),
            duplicates: r.counter(DUPLICATES, "Redelivered events the store ignored"),
            dead_lettered: r.counter(DEAD_LETTERED, "Messages sent to the dead-letter topic"),
            // Powers of four up to the largest batch.
            batch_size: r.histogram(
                BATCH_SIZE,
                "Messages per pipeline batch",
                &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0],
            ),
            errors: r.counter_vec(
                ERRORS,
                "Failed pipeline steps (retried), by step",
                &["step"],
            ),
            uncommitted: r.gauge(
                UNCOMMITTED,
                "Messages taken from the source and not yet committed",
            ),
            // Lag needs the partitions' high watermarks; some Kafka-compatible brokers report
            // them wrongly, so this is -1 (unknown) rather than a confident wrong number.
            // The uncommitted gauge and the consumed/stored rates show progress instead.
            lag: r.gauge(CONSUMER_LAG, "Consumer lag in messages; -1 when unknown"),
            registry: r,
        };
        m.lag.set(-1);
        m
    }

    /// What `/metrics` renders for the processor.
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    /// Messages taken from the source so far.
    pub fn consumed(&self) -> u64 {
        self.consumed.get()
    }

    /// Events stored for the first time so far (tests and benchmarks read it).
    pub fn stored(&self) -> u64 {
        self.stored.get()
    }

    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.get()
    }

    /// Failed store attempts so far (each retried).
    pub fn store_errors(&self) -> u64 {
        self.errors.with_label_values(&["store"]).get()
    }
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs the pipeline until `shutdown` resolves. See the module docs.
pub async fn run(
    source: &dyn Source,
    store: Arc<dyn Store>,
    config: &PipelineConfig,
    metrics: &PipelineMetrics,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut backoff = Backoff::new(config);
    loop {
        let next = tokio::select! {
            _ = &mut shutdown => return,
            next = source.next_batch(config.max_batch, config.linger) => next,
        };
        let batch = match next {
            Ok(batch) => batch,
            Err(e) => {
                metrics.errors.with_label_values(&["consume"]).inc();
                tracing::warn!(error = %e, "source error; retrying");
                if backoff.wait(&mut shutdown).await.is_err() {
                    return;
                }
                continue;
            }
        };
        backoff.reset();
        let n = batch.messages();
        metrics.consumed.inc_by(n as u64);
        metrics.batch_size.observe(n as f64);
        metrics.uncommitted.add(n as i64);
        if process(source, &store, batch, metrics, &mut backoff, &mut shutdown)
            .await
            .is_err()
        {
            return;
        }
        metrics.uncommitted.sub(n as i64);
    }
}

/// Stops: shutdown was requested while a step was still failing.
struct Stopped;

async fn process(
    source: &dyn Source,
    store: &Arc<dyn Store>,
    batch: SourceBatch,
    metrics: &PipelineMetrics,
    backoff: &mut Backoff,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Result<(), Stopped> {
    for rejected in &batch.rejected {
        dead_letter(source, rejected, metrics, backoff, shutdown).await?;
    }
    backoff.reset();
    store_events(source, store, &batch, metrics, backoff, shutdown).await?;
    backoff.reset();
    // A failed commit is not retried: the next batch's commit covers this one's partitions
    // too, and a revoked partition's new owner re-reads what was not committed (deduplicated
    // by the store).
    if let Err(e) = source.commit(&batch.checkpoint).await {
        metrics.errors.with_label_values(&["commit"]).inc();
        tracing::warn!(error = %e, "commit failed; the events are stored and will be deduplicated if redelivered");
    }
    Ok(())
}

/// Stores the batch's events, splitting around events the store refuses (see the module
/// docs); returns once every event is stored or dead-lettered.
async fn store_events(
    source: &dyn Source,
    store: &Arc<dyn Store>,
    batch: &SourceBatch,
    metrics: &PipelineMetrics,
    backoff: &mut Backoff,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Result<(), Stopped> {
    let events = &batch.events;
    // Parts still to store, in order; the front one is being tried.
    let mut parts: VecDeque<Range<usize>> = VecDeque::new();
    if !events.is_empty() {
        parts.push_back(0..events.len());
    }
    let mut failures = 0u32;
    // Evidence that the store takes writes: then a part it keeps failing is its own problem.
    let mut stored_some = false;
    // The whole batch shared once: every retry of it hands the store the same events
    // without copying them; only a split part is copied.
    let whole: crate::store::EventBatch = events.as_slice().into();
    while let Some(part) = parts.front().cloned() {
        let slice: crate::store::EventBatch = if part == (0..events.len()) {
            whole.clone()
        } else {
            events[part.clone()].into()
        };
        let error = match store.insert_batch(slice).await {
            Ok(outcome) => {
                metrics.stored.inc_by(outcome.inserted as u64);
                metrics.duplicates.inc_by(outcome.duplicates as u64);
                parts.pop_front();
                failures = 0;
                stored_some = true;
                backoff.reset();
                continue;
            }
            Err(e) => e,
        };
        metrics.errors.with_label_values(&["store"]).inc();
        failures += 1;
        let refused = matches!(error, StoreError::Refused(_));
        let suspect = refused
            || (matches!(error, StoreError::Backend(_))
                && failures >= SPLIT_AFTER_FAILURES
                && store.is_ready());
        if suspect && part.len() > 1 {
            let mid = part.start + part.len() / 2;
            parts.pop_front();
            parts.push_front(mid..part.end);
            parts.push_front(part.start..mid);
            failures = 0;
            tracing::warn!(error = %error, events = part.len(), "store refuses a batch; splitting it to find the events responsible");
            continue;
        }
        if suspect && (refused || stored_some) {
            let rejected = rejected_event(batch, part.start, &error);
            dead_letter(source, &rejected, metrics, backoff, shutdown).await?;
            parts.pop_front();
            failures = 0;
            continue;
        }
        tracing::warn!(error = %error, "store unavailable; pausing consumption");
        backoff.wait(shutdown).await?;
    }
    Ok(())
}

/// Event `i` of `batch` as a dead letter: its encoding, where it came from, why.
fn rejected_event(batch: &SourceBatch, i: usize, error: &StoreError) -> Rejected {
    let event: &Event = &batch.events[i];
    let origin = batch
        .origins
        .get(i)
        .or_else(|| batch.checkpoint.0.first())
        .cloned()
        .unwrap_or(Position {
            topic: String::new(),
            partition: -1,
            offset: -1,
        });
    Rejected {
        reason: format!("event {}: {error}", event.event_id),
        key: None,
        payload: protocol::event::encode(event).ok(),
        origin,
    }
}

/// Makes `rejected` durable in the dead-letter destination, retrying until it is.
async fn dead_letter(
    source: &dyn Source,
    rejected: &Rejected,
    metrics: &PipelineMetrics,
    backoff: &mut Backoff,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Result<(), Stopped> {
    loop {
        match source.dead_letter(rejected).await {
            Ok(()) => {
                metrics.dead_lettered.inc();
                tracing::warn!(
                    reason = %rejected.reason,
                    topic = %rejected.origin.topic,
                    partition = rejected.origin.partition,
                    offset = rejected.origin.offset,
                    "message dead-lettered"
                );
                backoff.reset();
                return Ok(());
            }
            Err(e) => {
                metrics.errors.with_label_values(&["dead_letter"]).inc();
                tracing::warn!(error = %e, "dead-lettering failed; retrying");
                backoff.wait(shutdown).await?;
            }
        }
    }
}

struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(config: &PipelineConfig) -> Self {
        Backoff {
            min: config.backoff_min,
            max: config.backoff_max.max(config.backoff_min),
            current: config.backoff_min,
        }
    }

    fn reset(&mut self) {
        self.current = self.min;
    }

    async fn wait(
        &mut self,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<(), Stopped> {
        let delay = self.current;
        self.current = (self.current * 2).min(self.max);
        tokio::select! {
            _ = shutdown => Err(Stopped),
            _ = tokio::time::sleep(delay) => Ok(()),
        }
    }
}
