//! The query layer: the stats API's answers — summary, time series, breakdowns, sites —
//! written once over the [`Store`] primitives, so every store answers with the same numbers and
//! the same JSON (the [`protocol::stats`] types the dashboard reads).
//!
//! Each answer covers its range with [`rollup::cover`]: whole rollup buckets where they fit
//! ([`Store::read_rollups`]), and raw events ([`Store::read_events`], by the `{site, ts}`
//! index) only for the sub-minute edges. The cost of a query is thus bounded by the number of
//! buckets, never by the number of events stored.
//!
//! ## Adding a query
//! Write it here as a function of `&S where S: Store + ?Sized` (so it takes a concrete store,
//! `&dyn Store` or an `Arc`'s contents alike), from a `query` parameter type to a
//! `protocol::stats` answer. When the existing primitives cannot answer it (a query that must
//! scan events, say), add the primitive to [`Store`], implement it in every store, and extend
//! `tests/store_contract.rs` so all stores are held to it. [`crate::api`] only parses
//! parameters and calls these functions.

use std::collections::HashMap;

use protocol::stats::{Breakdown, Dimension, Point, Row, SiteInfo, Summary, Timeseries};
use protocol::time::{format_rfc3339_local, format_rfc3339_millis, format_utc_offset};
use protocol::Event;

use crate::query::{BreakdownQuery, RangeQuery, TimeseriesQuery};
use crate::rollup::{self, Cover, Res, Rollup, PAGE_VIEW};
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

/// Page views, visitors, sessions and events of one site in a range.
pub async fn summary<S: Store + ?Sized>(store: &S, q: RangeQuery) -> Result<Summary, StoreError> {
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
        ..Summary::default()
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
    let points = buckets
        .iter()
        .zip(&covers)
        .map(|((label, _, _), cover)| {
            let r = assemble(&loaded, cover);
            Point {
                time: format_rfc3339_local(*label, q.tz_offset_min),
                ts: *label,
                pageviews: r.count(Dimension::Event, PAGE_VIEW),
                visitors: r.visitors.estimate(),
                sessions: r.sessions.estimate(),
                events: r.total(Dimension::Event),
                ..Point::default()
            }
        })
        .collect();
    Ok(Timeseries {
        from: format_rfc3339_millis(q.range.from),
        to: format_rfc3339_millis(q.range.to),
        site: q.range.site,
        interval: q.interval,
        tz: format_utc_offset(q.tz_offset_min),
        points,
        filters: Vec::new(),
        previous: None,
    })
}

/// Top values of one dimension (pages, referrers, devices, ...) with counts.
pub async fn breakdown<S: Store + ?Sized>(
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
        dimension: q.dimension.into(),
        total,
        distinct,
        rows,
        filters: Vec::new(),
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
