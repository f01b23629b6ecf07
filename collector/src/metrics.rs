//! Prometheus metrics of the collector. Names are constants so dashboards and alerts can rely
//! on them; each [`Collector`](crate::Collector) owns its registry, so tests running several
//! collectors in one process do not collide on a global recorder.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

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

pub struct Metrics {
    registry: Registry,
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
        let registry = Registry::new();
        let latency = |name: &str, help: &str| {
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec())
        };
        let m = Metrics {
            http_requests: IntCounterVec::new(
                Opts::new(HTTP_REQUESTS, "HTTP requests by route and status"),
                &["route", "status"],
            )
            .expect("static metric definition"),
            http_duration: HistogramVec::new(
                latency(HTTP_DURATION, "HTTP request latency by route"),
                &["route"],
            )
            .expect("static metric definition"),
            events_accepted: IntCounter::new(EVENTS_ACCEPTED, "Events made durable")
                .expect("static metric definition"),
            events_rejected: IntCounterVec::new(
                Opts::new(EVENTS_REJECTED, "Events refused by validation, by code"),
                &["code"],
            )
            .expect("static metric definition"),
            events_filtered: IntCounterVec::new(
                Opts::new(EVENTS_FILTERED, "Events dropped on purpose, by reason"),
                &["reason"],
            )
            .expect("static metric definition"),
            sink_errors: IntCounterVec::new(
                Opts::new(SINK_ERRORS, "Batches the sink refused, by kind"),
                &["kind"],
            )
            .expect("static metric definition"),
            sink_duration: Histogram::with_opts(latency(
                SINK_DURATION,
                "Time until the sink confirmed durability",
            ))
            .expect("static metric definition"),
            sink_ready: IntGauge::new(SINK_READY, "1 when the sink can take events")
                .expect("static metric definition"),
            rate_limited: IntCounter::new(RATE_LIMITED, "Requests refused with 429")
                .expect("static metric definition"),
            registry,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 9] = [
            Box::new(m.http_requests.clone()),
            Box::new(m.http_duration.clone()),
            Box::new(m.events_accepted.clone()),
            Box::new(m.events_rejected.clone()),
            Box::new(m.events_filtered.clone()),
            Box::new(m.sink_errors.clone()),
            Box::new(m.sink_duration.clone()),
            Box::new(m.sink_ready.clone()),
            Box::new(m.rate_limited.clone()),
        ];
        for c in collectors {
            m.registry
                .register(c)
                .expect("metric names are unique and registered once");
        }
        m
    }

    /// A registry other components may add their metrics to, so `/metrics` shows them too.
    pub fn registry(&self) -> &Registry {
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

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
