//! The dashboard's history queries — summary, time series, breakdowns — written once over two
//! store primitives ([`Store::read_rollups`] and [`Store::read_events`]), so every store
//! answers with the same numbers and the same JSON.
//!
//! Each answer covers its range with [`rollup::cover`]: whole rollup buckets where they fit,
//! and raw events (by the `{site, ts}` index) only for the sub-minute edges. The cost of a query
//! is thus bounded by the number of buckets, never by the number of events stored.

use std::collections::HashMap;

use protocol::time::format_rfc3339_millis;
use protocol::Event;

use crate::query::{
    format_tz, Breakdown, BreakdownQuery, Point, RangeQuery, Row, Summary, Timeseries,
    TimeseriesQuery,
};
use crate::rollup::{self, Cover, Dimension, Res, Rollup, PAGE_VIEW};
use crate::store::{Store, StoreError};

/// What the queries read: stored buckets by `(resolution, start)`, plus edge events.
struct Loaded {
    buckets: HashMap<(Res, i64), Rollup>,
    raw: Vec<Event>,
}

async fn load<S: Store + ?Sized>(
    store: &S,
    site: &str,
    covers: &[Cover],
    sketches: bool,
) -> Result<Loaded, StoreError> {
    let runs = rollup::merge_runs(covers.iter().flat_map(|c| c.runs.clone()).collect());
    let mut buckets = HashMap::new();
    if !runs.is_empty() {
        for b in store.read_rollups(site.to_string(), runs, sketches).await? {
            buckets.insert((b.res, b.start), b.rollup);
        }
    }
    let mut edges: Vec<(i64, i64)> = covers.iter().flat_map(|c| c.raw.clone()).collect();
    edges.sort_unstable();
    let mut joined: Vec<(i64, i64)> = Vec::with_capacity(edges.len());
    for (a, b) in edges {
        match joined.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => joined.push((a, b)),
        }
    }
    let mut raw = Vec::new();
    for (a, b) in joined {
        raw.extend(store.read_events(site.to_string(), a, b).await?);
    }
    Ok(Loaded { buckets, raw })
}

fn assemble(loaded: &Loaded, cover: &Cover) -> Rollup {
    let mut r = Rollup::default();
    for run in &cover.runs {
        for t in run.buckets() {
            if let Some(b) = loaded.buckets.get(&(run.res, t)) {
                r.merge(b);
            }
        }
    }
    for e in &loaded.raw {
        if cover.raw.iter().any(|(a, b)| e.ts >= *a && e.ts < *b) {
            r.add_event(e);
        }
    }
    r
}

pub(crate) async fn summary<S: Store + ?Sized>(
    store: &S,
    q: RangeQuery,
) -> Result<Summary, StoreError> {
    let cover = rollup::cover(q.from, q.to);
    let loaded = load(store, &q.site, std::slice::from_ref(&cover), true).await?;
    let r = assemble(&loaded, &cover);
    Ok(Summary {
        from: format_rfc3339_millis(q.from),
        to: format_rfc3339_millis(q.to),
        pageviews: r.count(Dimension::Event, PAGE_VIEW),
        visitors: r.visitors.estimate(),
        sessions: r.sessions.estimate(),
        events: r.total(Dimension::Event),
        events_by_name: r
            .of(Dimension::Event)
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        site: q.site,
    })
}

pub(crate) async fn timeseries<S: Store + ?Sized>(
    store: &S,
    q: TimeseriesQuery,
) -> Result<Timeseries, StoreError> {
    let buckets = q.buckets();
    let covers: Vec<Cover> = buckets
        .iter()
        .map(|(_, a, b)| rollup::cover(*a, *b))
        .collect();
    let loaded = load(store, &q.range.site, &covers, true).await?;
    let points = buckets
        .iter()
        .zip(&covers)
        .map(|((label, _, _), cover)| {
            let r = assemble(&loaded, cover);
            Point {
                time: crate::query::format_local(*label, q.tz_offset_min),
                ts: *label,
                pageviews: r.count(Dimension::Event, PAGE_VIEW),
                visitors: r.visitors.estimate(),
                sessions: r.sessions.estimate(),
                events: r.total(Dimension::Event),
            }
        })
        .collect();
    Ok(Timeseries {
        from: format_rfc3339_millis(q.range.from),
        to: format_rfc3339_millis(q.range.to),
        site: q.range.site,
        interval: q.interval.name(),
        tz: format_tz(q.tz_offset_min),
        points,
    })
}

pub(crate) async fn breakdown<S: Store + ?Sized>(
    store: &S,
    q: BreakdownQuery,
) -> Result<Breakdown, StoreError> {
    let cover = rollup::cover(q.range.from, q.range.to);
    let loaded = load(store, &q.range.site, std::slice::from_ref(&cover), false).await?;
    let r = assemble(&loaded, &cover);
    let mut rows: Vec<Row> = r
        .of(q.dimension)
        .map(|(value, count)| Row {
            value: value.to_string(),
            count,
        })
        .collect();
    let distinct = rows.len() as u64;
    let total = rows.iter().map(|r| r.count).sum();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    rows.truncate(q.limit);
    Ok(Breakdown {
        from: format_rfc3339_millis(q.range.from),
        to: format_rfc3339_millis(q.range.to),
        site: q.range.site,
        dimension: q.dimension.name(),
        total,
        distinct,
        rows,
    })
}
