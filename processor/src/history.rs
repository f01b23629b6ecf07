//! The query layer: the stats API's answers — summary, time series, breakdowns, sites —
//! written once over the [`Store`] primitives, so every store answers with the same numbers and
//! the same JSON (the [`protocol::stats`] types the dashboard reads).
//!
//! Each answer covers its range with [`rollup::cover`]: whole rollup buckets where they fit
//! ([`Store::read_rollups`]), and raw events ([`Store::read_events`], by the `{site, ts}`
//! index) only for the sub-minute edges. The cost of a query is thus bounded by the number of
//! buckets, never by the number of events stored — and it is the number of buckets *stored*,
//! never the span of the range: answers are assembled by walking what the store returned,
//! not every bucket the range could hold (a range of a million empty days costs nothing).
//! The assembly is CPU work, so it runs on tokio's blocking pool, never on an async worker
//! that other requests (health, ingestion) are waiting for.
//!
//! ## Adding a query
//! Write it here as a function of `&S where S: Store + ?Sized` (so it takes a concrete store,
//! `&dyn Store` or an `Arc`'s contents alike), from a `query` parameter type to a
//! `protocol::stats` answer. When the existing primitives cannot answer it (a query that must
//! scan events, say), add the primitive to [`Store`], implement it in every store, and extend
//! `tests/store_contract.rs` so all stores are held to it. [`crate::api`] only parses
//! parameters and calls these functions.

use std::collections::BTreeMap;

use protocol::stats::{Breakdown, Dimension, Point, Row, SiteInfo, Summary, Timeseries};
use protocol::time::{format_rfc3339_local, format_rfc3339_millis, format_utc_offset};
use protocol::Event;

use crate::query::{BreakdownQuery, RangeQuery, TimeseriesQuery};
use crate::rollup::{self, Cover, Res, Rollup, PAGE_VIEW};
use crate::store::{Store, StoreError};

/// What the queries read: stored buckets by `(resolution, start)`, plus edge events (sorted
/// by time).
struct Loaded {
    buckets: BTreeMap<(Res, i64), Rollup>,
    raw: Vec<Event>,
}

async fn load<S: Store + ?Sized>(
    store: &S,
    site: &str,
    covers: &[Cover],
    sketches: bool,
) -> Result<Loaded, StoreError> {
    let runs = rollup::merge_runs(covers.iter().flat_map(|c| c.runs.clone()).collect());
    let mut buckets = BTreeMap::new();
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
    raw.sort_by_key(|e| e.ts);
    Ok(Loaded { buckets, raw })
}

/// One answer's aggregate: the stored buckets inside its runs (found by range in what was
/// loaded, so the cost follows the data, not the span) plus its edge events.
fn assemble(loaded: &Loaded, cover: &Cover) -> Rollup {
    let mut r = Rollup::default();
    for run in &cover.runs {
        for (_, b) in loaded.buckets.range((run.res, run.from)..(run.res, run.to)) {
            r.merge(b);
        }
    }
    for (a, b) in &cover.raw {
        let first = loaded.raw.partition_point(|e| e.ts < *a);
        let end = loaded.raw.partition_point(|e| e.ts < *b);
        for e in loaded.raw.get(first..end).unwrap_or_default() {
            r.add_event(e);
        }
    }
    r
}

/// Runs the CPU part of a query on the blocking pool (see the module docs).
async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Backend(format!("query task failed: {e}")))
}

/// Page views, visitors, sessions and events of one site in a range.
pub async fn summary<S: Store + ?Sized>(store: &S, q: RangeQuery) -> Result<Summary, StoreError> {
    let cover = rollup::cover(q.from, q.to);
    let loaded = load(store, &q.site, std::slice::from_ref(&cover), true).await?;
    let r = off_the_workers(move || assemble(&loaded, &cover)).await?;
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

/// Page views, visitors, sessions and events per minute / hour / local day.
pub async fn timeseries<S: Store + ?Sized>(
    store: &S,
    q: TimeseriesQuery,
) -> Result<Timeseries, StoreError> {
    let buckets = q.buckets();
    let covers: Vec<Cover> = buckets
        .iter()
        .map(|(_, a, b)| rollup::cover(*a, *b))
        .collect();
    let loaded = load(store, &q.range.site, &covers, true).await?;
    let tz_offset_min = q.tz_offset_min;
    let points = off_the_workers(move || {
        buckets
            .iter()
            .zip(&covers)
            .map(|((label, _, _), cover)| {
                let r = assemble(&loaded, cover);
                Point {
                    time: format_rfc3339_local(*label, tz_offset_min),
                    ts: *label,
                    pageviews: r.count(Dimension::Event, PAGE_VIEW),
                    visitors: r.visitors.estimate(),
                    sessions: r.sessions.estimate(),
                    events: r.total(Dimension::Event),
                }
            })
            .collect()
    })
    .await?;
    Ok(Timeseries {
        from: format_rfc3339_millis(q.range.from),
        to: format_rfc3339_millis(q.range.to),
        site: q.range.site,
        interval: q.interval,
        tz: format_utc_offset(q.tz_offset_min),
        points,
    })
}

/// Top values of one dimension (pages, referrers, devices, ...) with counts.
pub async fn breakdown<S: Store + ?Sized>(
    store: &S,
    q: BreakdownQuery,
) -> Result<Breakdown, StoreError> {
    let cover = rollup::cover(q.range.from, q.range.to);
    let loaded = load(store, &q.range.site, std::slice::from_ref(&cover), false).await?;
    let (dimension, limit) = (q.dimension, q.limit);
    let (rows, distinct, total) = off_the_workers(move || {
        let r = assemble(&loaded, &cover);
        let mut rows: Vec<Row> = r
            .of(dimension)
            .map(|(value, count)| Row {
                value: value.to_string(),
                count,
            })
            .collect();
        let distinct = rows.len() as u64;
        let total = rows.iter().map(|r| r.count).sum();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        rows.truncate(limit);
        (rows, distinct, total)
    })
    .await?;
    Ok(Breakdown {
        from: format_rfc3339_millis(q.range.from),
        to: format_rfc3339_millis(q.range.to),
        site: q.range.site,
        dimension: q.dimension,
        total,
        distinct,
        rows,
    })
}

/// Sites that have data, most recently active first.
pub async fn sites<S: Store + ?Sized>(store: &S) -> Result<Vec<SiteInfo>, StoreError> {
    Ok(store
        .sites()
        .await?
        .into_iter()
        .map(|s| SiteInfo {
            site: s.site,
            events: s.events,
            last_seen: format_rfc3339_millis(s.last_seen),
        })
        .collect())
}
