//! Prometheus metrics of the collector. Names are constants so dashboards and alerts can rely
//! on them; each [`Collector`](crate::Collector) owns its registry, so tests running several
//! collectors in one process do not collide on a global recorder.

use std::time::Duration;

use footfall_http::MetricsRegistry;
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge};

pub const HTTP_REQUESTS: &str = "footfall_http_requests_total";
pub const HTTP_DURATION: &str = "footfall_http_request_duration_seconds";
pub const EVENTS_ACCEPTED: &str = "footfall_events_accepted_total";
pub const EVENTS_REJECTED: &str = "footfall_events_rejected_total";
pub const EVENTS_FILTERED: &str = "footfall_events_filtered_total";
pub const SINK_ERRORS: &str = "footfall_sink_errors_total";
pub const SINK_DURATION: &str = "footfall_sink_send_duration_seconds";
pub const SINK_READY: &str = "footfall_sink_ready";
pub const RATE_LIMITED: &str = "footfall_rate_limited_total";

/// Latency buckets from 0.5 ms to 5 s: ingest answers in well under a millisecond when the
/// sink is fast, and a group commit or Kafka ack adds single-digit milliseconds; the top
/// buckets catch outages.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The collector's metrics. Cheap to clone: clones record into the same metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: MetricsRegistry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    events_accepted: IntCounter,
    events_rejected: IntCounterVec,
    events_filtered: IntCounterVec,
    sink_errors: IntCounterVec,
    sink_duration: Histogram,
    sink_ready: IntGauge,
    rate_limited: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let r = MetricsRegistry::new();
        Metrics {
            http_requests: r.counter_vec(
                HTTP_REQUESTS,
                "HTTP requests by route and status",
                &["route", "status"],
            ),
            http_duration: r.histogram_vec(
                HTTP_DURATION,
                "HTTP request latency by route",
                LATENCY_BUCKETS,
                &["route"],
            ),
            events_accepted: r.counter(EVENTS_ACCEPTED, "Events made durable"),
            events_rejected: r.counter_vec(
                EVENTS_REJECTED,
                "Events refused by validation, by code",
                &["code"],
            ),
            events_filtered: r.counter_vec(
                EVENTS_FILTERED,
                "Events dropped on purpose, by reason",
                &["reason"],
            ),
            sink_errors: r.counter_vec(SINK_ERRORS, "Batches the sink refused, by kind", &["kind"]),
            sink_duration: r.histogram(
                SINK_DURATION,
                "Time until the sink confirmed durability",
                LATENCY_BUCKETS,
            ),
            sink_ready: r.gauge(SINK_READY, "1 when the sink can take events"),
            rate_limited: r.counter(RATE_LIMITED, "Requests refused with 429"),
            registry: r,
        }
    }

    /// The registry `/metrics` renders; other components (the Kafka sink) add theirs to it.
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    pub fn report_request(&self, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    pub fn report_accepted(&self, n: usize) {
        self.events_accepted.inc_by(n as u64);
    }

    pub fn report_rejected(&self, code: &str) {
        self.events_rejected.with_label_values(&[code]).inc();
    }

    pub fn report_filtered(&self, reason: &str, n: usize) {
        self.events_filtered
            .with_label_values(&[reason])
            .inc_by(n as u64);
    }

    pub fn report_sink(&self, elapsed: Duration, error: Option<&str>) {
        self.sink_duration.observe(elapsed.as_secs_f64());
        if let Some(kind) = error {
            self.sink_errors.with_label_values(&[kind]).inc();
        }
    }

    pub fn report_sink_ready(&self, ready: bool) {
        self.sink_ready.set(i64::from(ready));
    }

    pub fn report_rate_limited(&self) {
        self.rate_limited.inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
