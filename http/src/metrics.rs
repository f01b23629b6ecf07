//! [`MetricsRegistry`]: make-and-register in one call, and the text exposition `/metrics`
//! serves. Each component owns a registry (never the global one), so tests that run several
//! collectors or pipelines in one process do not collide.
//!
//! Metric names are `pub const`s in the component that records them; definitions are made
//! once at start-up from those constants, so an invalid definition is a bug found by the
//! first test that builds the component, never a runtime condition.

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// The content type of the Prometheus text format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A Prometheus registry. Cheap to clone: clones share the metrics.
#[derive(Clone, Default)]
pub struct MetricsRegistry {
    registry: Registry,
}

const DEFINITION: &str = "metric definitions are static and valid";

impl MetricsRegistry {
    pub fn new() -> Self {
        MetricsRegistry::default()
    }

    pub fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.register(IntCounter::new(name, help).expect(DEFINITION))
    }

    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(IntCounterVec::new(Opts::new(name, help), labels).expect(DEFINITION))
    }

    pub fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.register(IntGauge::new(name, help).expect(DEFINITION))
    }

    pub fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.register(Histogram::with_opts(opts).expect(DEFINITION))
    }

    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
        labels: &[&str],
    ) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.register(HistogramVec::new(opts, labels).expect(DEFINITION))
    }

    /// Registers a metric made elsewhere (e.g. a sink's own) and hands it back. A name
    /// registered twice is logged and the metric still returned (it then records but is not
    /// exported): a duplicate must not stop a server from starting.
    pub fn register<C: Collector + Clone + 'static>(&self, metric: C) -> C {
        if let Err(e) = self.registry.register(Box::new(metric.clone())) {
            tracing::warn!(error = %e, "metric not registered");
        }
        metric
    }

    /// The underlying registry, for libraries that register into one themselves.
    pub fn prometheus(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format of everything registered.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_metrics_are_rendered_and_duplicates_do_not_panic() {
        let r = MetricsRegistry::new();
        let c = r.counter("footfall_test_total", "a test counter");
        c.inc_by(3);
        r.gauge("footfall_test_gauge", "a test gauge").set(7);
        r.counter_vec("footfall_test_by_kind_total", "by kind", &["kind"])
            .with_label_values(&["a"])
            .inc();
        r.histogram("footfall_test_seconds", "a test histogram", &[0.1, 1.0])
            .observe(0.5);
        let dup = r.counter("footfall_test_total", "again");
        dup.inc();
        let text = String::from_utf8(r.render()).expect("utf8");
        assert!(text.contains("footfall_test_total 3"), "{text}");
        assert!(text.contains("footfall_test_gauge 7"));
        assert!(text.contains(r#"footfall_test_by_kind_total{kind="a"} 1"#));
        assert!(text.contains("footfall_test_seconds_bucket"));
    }
}
