//! The live view and history count visitors with one sketch (`rollup::Hll`), so on the same
//! events they show the same numbers: "visitors today" on the live page equals today's
//! summary, and each minute of the live series equals that minute of the history series —
//! also when the live numbers are merged from two processors' deltas, as a gateway does.

mod common;

use std::sync::{Arc, Mutex, PoisonError};

use common::data::{base, Lcg, DAY, HOUR, MINUTE};
use processor::history;
use processor::live::{deltas_of, DeltaSink, LiveEngine, LiveStore, MetricsDelta};
use processor::query::{RangeQuery, TimeseriesQuery};
use processor::store::SqliteConfig;
use processor::{BoxFuture, SqliteStore, Store};
use protocol::fixture::EventBuilder;
use protocol::stats::Interval;
use protocol::Event;

/// Keeps the deltas a store reports, as a processor would publish them.
#[derive(Default)]
struct Deltas(Mutex<Vec<MetricsDelta>>);

impl DeltaSink for Deltas {
    fn publish<'a>(
        &'a self,
        _write: Option<&'a str>,
        fresh: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), String>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(deltas_of(fresh.iter().copied()));
        Box::pin(async { Ok(()) })
    }
}

impl Deltas {
    fn take(&self) -> Vec<MetricsDelta> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_history_visitor_counts_agree() {
    // Noon UTC; the events fall in the 50 minutes before it, so all of them are "today".
    let now = base() + 2 * DAY + 12 * HOUR;
    let mut rng = Lcg::new(16);
    let events: Vec<Event> = (0..8000)
        .map(|i| {
            let ts = now - 50 * MINUTE + (rng.below(50 * MINUTE as u64) as i64);
            let name = if i % 4 == 0 { "click" } else { "page_view" };
            EventBuilder::new("live.example", name, ts)
                .id(format!("agree-{i}"))
                .visitor(format!("visitor-{}", rng.below(4000)))
                .path(format!("/p{}", rng.below(20)))
                .build()
        })
        .collect();

    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(SqliteConfig::new(dir.path())).expect("open sqlite"));
    // Two processors, each storing half the events and emitting its own deltas.
    let (left, right) = (Arc::new(Deltas::default()), Arc::new(Deltas::default()));
    let stores = [
        LiveStore::new(sqlite.clone(), left.clone()),
        LiveStore::new(sqlite.clone(), right.clone()),
    ];
    for (i, chunk) in events.chunks(500).enumerate() {
        stores[i % 2]
            .insert_batch(chunk.to_vec().into())
            .await
            .expect("insert");
    }
    // A redelivery changes nothing on either side.
    stores[1]
        .insert_batch(events[..500].to_vec().into())
        .await
        .expect("redelivery");

    // The gateway merges both processors' deltas.
    let mut engine = LiveEngine::default();
    for delta in left.take().iter().chain(right.take().iter()) {
        engine.apply(delta, now);
    }
    let live = engine.metrics("live.example", now);

    let day_start = now - now.rem_euclid(DAY);
    let summary = history::summary(
        &*sqlite,
        RangeQuery {
            site: "live.example".into(),
            from: day_start,
            to: day_start + DAY,
            ..Default::default()
        },
    )
    .await
    .expect("summary");
    assert!(summary.visitors > 3000, "{}", summary.visitors);
    assert_eq!(live.today.visitors, summary.visitors, "visitors today");
    assert_eq!(live.today.pageviews, summary.pageviews);
    assert_eq!(live.today.events, summary.events);

    let first = live.per_minute.first().expect("series").minute;
    let last = live.per_minute.last().expect("series").minute;
    let series = history::timeseries(
        &*sqlite,
        TimeseriesQuery {
            range: RangeQuery {
                site: "live.example".into(),
                from: first,
                to: last + MINUTE,
                ..Default::default()
            },
            interval: Interval::Minute,
            tz_offset_min: 0,
        },
    )
    .await
    .expect("timeseries");
    assert_eq!(series.points.len(), live.per_minute.len());
    for (point, minute) in series.points.iter().zip(&live.per_minute) {
        assert_eq!(point.ts, minute.minute);
        assert_eq!(
            (point.visitors, point.pageviews),
            (minute.visitors, minute.pageviews),
            "minute {}",
            point.time
        );
    }
    assert!(series.points.iter().any(|p| p.visitors > 50));
}
