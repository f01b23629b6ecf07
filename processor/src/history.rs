//! The query layer: the stats API's answers — summary, time series, breakdowns, sites —
//! written once over the [`Store`] primitives, so every store answers with the same numbers and
//! the same JSON (the [`protocol::stats`] types the dashboard reads).
//!
//! Unfiltered answers cover their range with [`rollup::cover`]: whole rollup buckets where
//! they fit ([`Store::read_rollups`]), and the stored events only for the sub-minute edges,
//! counted by the store as it reads them ([`Store::edge_rollup`]), so their cost is bounded by
//! the number of buckets and by an edge minute's events, never by the number of events stored,
//! and their memory by the distinct values counted. Filtered answers, visit metrics, goals and
//! the dimensions rollups do not keep come from the store's filtered aggregates
//! ([`Store::event_stats`], [`Store::visit_stats`]), whose meaning `crate::visit` defines.
//! The cost of an unfiltered answer is the number of buckets *stored*, never the span of the
//! range: answers are assembled by walking what the store returned, not every bucket the range
//! could hold (a range of a million empty days costs nothing). The assembly is CPU work, so it
//! runs on tokio's blocking pool, never on an async worker that other requests (health,
//! ingestion) are waiting for.
//!
//! ## Adding a query
//! Write it here as a function of `&S where S: Store + ?Sized` (so it takes a concrete store,
//! `&dyn Store` or an `Arc`'s contents alike), from a `query` parameter type to a
//! `protocol::stats` answer. When the existing primitives cannot answer it (a query that must
//! scan events, say), add the primitive to [`Store`], implement it in every store, and extend
//! `tests/store_contract.rs` so all stores are held to it. [`crate::api`] only parses
//! parameters and calls these functions.

use std::collections::{BTreeMap, HashMap};

use protocol::stats::{
    round_to, Breakdown, Dimension, Field, Goal, GoalResult, GoalStats, Point, Row, SiteInfo,
    Summary, Timeseries, MAX_PROP_NAMES,
};
use protocol::time::{format_rfc3339_local, format_rfc3339_millis, format_utc_offset};

use crate::query::{BreakdownQuery, RangeQuery, TimeseriesQuery};
use crate::rollup::{self, Cover, Res, Rollup, PAGE_VIEW};
use crate::store::{Store, StoreError};
use crate::visit::{counted, Counted, EventAgg, GroupKey, Grouping, Scope};

/// What the queries read: stored buckets by `(resolution, start)`, plus edge events (sorted
/// by time).
struct Loaded {
    buckets: BTreeMap<(Res, i64), Rollup>,
    /// The counts of each sub-minute edge, by `(from, to)`.
    edges: HashMap<(i64, i64), Rollup>,
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
    // Counted by the store as it reads them: an edge minute may hold a burst of events.
    let mut edges = HashMap::new();
    for &(a, b) in covers.iter().flat_map(|c| c.raw.iter()) {
        if let std::collections::hash_map::Entry::Vacant(slot) = edges.entry((a, b)) {
            slot.insert(store.edge_rollup(site.to_string(), a, b).await?);
        }
    }
    Ok(Loaded { buckets, edges })
}

/// One answer's aggregate: the stored buckets inside its runs (found by range in what was
/// loaded, so the cost follows the data, not the span) plus its edges' counts.
fn assemble(loaded: &Loaded, cover: &Cover) -> Rollup {
    let mut r = Rollup::default();
    for run in &cover.runs {
        for (_, b) in loaded.buckets.range((run.res, run.from)..(run.res, run.to)) {
            r.merge(b);
        }
    }
    for edge in &cover.raw {
        if let Some(counted) = loaded.edges.get(edge) {
            r.merge(counted);
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

/// Page views, visitors, sessions, events and visit metrics of one site in a range, with
/// its filters, and under `previous` the same for the compared range.
pub async fn summary<S: Store + ?Sized>(store: &S, q: RangeQuery) -> Result<Summary, StoreError> {
    let mut answer = summary_of(store, &q).await?;
    if let Some(earlier) = q.compared() {
        answer.previous = Some(Box::new(summary_of(store, &earlier).await?));
    }
    Ok(answer)
}

fn scope(q: &RangeQuery) -> Scope {
    Scope {
        site: q.site.clone(),
        from: q.from,
        to: q.to,
        filters: q.filters.clone(),
    }
}

async fn summary_of<S: Store + ?Sized>(store: &S, q: &RangeQuery) -> Result<Summary, StoreError> {
    let mut s = Summary {
        site: q.site.clone(),
        from: format_rfc3339_millis(q.from),
        to: format_rfc3339_millis(q.to),
        filters: q.filters.clone(),
        ..Summary::default()
    };
    if q.filters.is_empty() {
        // Unfiltered: the rollups (a bounded number of buckets, however many events).
        let cover = rollup::cover(q.from, q.to);
        let loaded = load(store, &q.site, std::slice::from_ref(&cover), true).await?;
        let r = off_the_workers(move || assemble(&loaded, &cover)).await?;
        s.pageviews = r.count(Dimension::Event, PAGE_VIEW);
        s.visitors = r.visitors.estimate();
        s.sessions = r.sessions.estimate();
        s.events = r.total(Dimension::Event);
        s.events_by_name = r
            .of(Dimension::Event)
            .map(|(k, n)| (k.to_string(), n))
            .collect();
    } else {
        // Filtered: exact counts from the store's facts.
        let total = store.event_stats(scope(q), Grouping::Total).await?;
        if let Some((_, a)) = total.first() {
            s.pageviews = a.pageviews;
            s.visitors = a.visitors;
            s.sessions = a.sessions;
            s.events = a.events;
        }
        let by_name = store
            .event_stats(scope(q), Grouping::Field(Field::Dim(Dimension::Event)))
            .await?;
        s.events_by_name = by_name
            .into_iter()
            .filter_map(|(k, a)| match k {
                GroupKey::Value(name) => Some((name, a.events)),
                _ => None,
            })
            .collect();
    }
    let mut props: Vec<(String, u64)> = store
        .event_stats(scope(q), Grouping::PropNames)
        .await?
        .into_iter()
        .filter_map(|(k, a)| match k {
            GroupKey::Value(name) => Some((name, a.events)),
            _ => None,
        })
        .collect();
    props.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    s.props = props
        .into_iter()
        .take(MAX_PROP_NAMES)
        .map(|(name, _)| name)
        .collect();
    let visits = store.visit_stats(scope(q), Grouping::Total).await?;
    let v = visits.first().map(|(_, v)| *v).unwrap_or_default();
    s.visits = v.visits;
    s.bounce_rate = v.bounce_rate();
    s.visit_duration = v.visit_duration();
    s.views_per_visit = v.views_per_visit();
    Ok(s)
}

/// Page views, visitors, sessions, events and visit metrics per minute / hour / local day,
/// with `previous` for the compared range.
pub async fn timeseries<S: Store + ?Sized>(
    store: &S,
    q: TimeseriesQuery,
) -> Result<Timeseries, StoreError> {
    let mut answer = timeseries_of(store, &q).await?;
    if let Some(range) = q.range.compared() {
        let earlier = TimeseriesQuery { range, ..q.clone() };
        let mut previous = timeseries_of(store, &earlier).await?;
        // Same number of points as the answer, so point i compares with point i.
        previous
            .points
            .resize_with(answer.points.len(), Point::default);
        answer.previous = Some(Box::new(previous));
    }
    Ok(answer)
}

async fn timeseries_of<S: Store + ?Sized>(
    store: &S,
    q: &TimeseriesQuery,
) -> Result<Timeseries, StoreError> {
    let buckets = q.buckets();
    let mut points: Vec<Point> = buckets
        .iter()
        .map(|(label, _, _)| Point {
            time: format_rfc3339_local(*label, q.tz_offset_min),
            ts: *label,
            ..Point::default()
        })
        .collect();
    let origin = buckets.first().map_or(q.range.from, |b| b.0);
    let step = Grouping::Step {
        origin,
        step: q.interval.ms(),
    };
    let index = |k: &GroupKey| match k {
        GroupKey::Bucket(i) => usize::try_from(*i).ok(),
        _ => None,
    };
    if q.range.filters.is_empty() {
        let covers: Vec<Cover> = buckets
            .iter()
            .map(|(_, a, b)| rollup::cover(*a, *b))
            .collect();
        let loaded = load(store, &q.range.site, &covers, true).await?;
        points = off_the_workers(move || {
            for (p, cover) in points.iter_mut().zip(&covers) {
                let r = assemble(&loaded, cover);
                p.pageviews = r.count(Dimension::Event, PAGE_VIEW);
                p.visitors = r.visitors.estimate();
                p.sessions = r.sessions.estimate();
                p.events = r.total(Dimension::Event);
            }
            points
        })
        .await?;
    } else {
        for (k, a) in store.event_stats(scope(&q.range), step.clone()).await? {
            if let Some(p) = index(&k).and_then(|i| points.get_mut(i)) {
                p.pageviews = a.pageviews;
                p.visitors = a.visitors;
                p.sessions = a.sessions;
                p.events = a.events;
            }
        }
    }
    for (k, v) in store.visit_stats(scope(&q.range), step).await? {
        if let Some(p) = index(&k).and_then(|i| points.get_mut(i)) {
            p.visits = v.visits;
            p.bounce_rate = v.bounce_rate();
            p.visit_duration = v.visit_duration();
            p.views_per_visit = v.views_per_visit();
        }
    }
    Ok(Timeseries {
        from: format_rfc3339_millis(q.range.from),
        to: format_rfc3339_millis(q.range.to),
        site: q.range.site.clone(),
        interval: q.interval,
        tz: format_utc_offset(q.tz_offset_min),
        points,
        filters: q.range.filters.clone(),
        previous: None,
    })
}

/// Whether the rollups count this breakdown (unfiltered, and a dimension they keep).
fn in_rollups(field: &Field) -> bool {
    matches!(field, Field::Dim(d) if rollup::ROLLUP_DIMENSIONS.contains(d))
}

/// Top values of one dimension or property (pages, referrers, devices, entry pages, ...) with
/// counts.
pub async fn breakdown<S: Store + ?Sized>(
    store: &S,
    q: BreakdownQuery,
) -> Result<Breakdown, StoreError> {
    let mut rows: Vec<Row> = if q.range.filters.is_empty() && in_rollups(&q.dimension) {
        let Field::Dim(dim) = q.dimension else {
            return Err(StoreError::Backend("not a rollup dimension".into()));
        };
        let cover = rollup::cover(q.range.from, q.range.to);
        let loaded = load(store, &q.range.site, std::slice::from_ref(&cover), false).await?;
        off_the_workers(move || {
            assemble(&loaded, &cover)
                .of(dim)
                .map(|(value, count)| Row {
                    value: value.to_string(),
                    count,
                })
                .collect()
        })
        .await?
    } else if counted(&q.dimension) == Counted::Visits {
        store
            .visit_stats(scope(&q.range), Grouping::Field(q.dimension.clone()))
            .await?
            .into_iter()
            .filter_map(|(k, v)| match k {
                GroupKey::Value(value) => Some(Row {
                    value,
                    count: v.visits,
                }),
                _ => None,
            })
            .collect()
    } else {
        store
            .event_stats(scope(&q.range), Grouping::Field(q.dimension.clone()))
            .await?
            .into_iter()
            .filter_map(|(k, a)| match k {
                GroupKey::Value(value) => Some(Row {
                    value,
                    count: a.events,
                }),
                _ => None,
            })
            .collect()
    };
    let distinct = rows.len() as u64;
    let total = rows.iter().map(|r| r.count).sum();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    rows.truncate(q.limit);
    Ok(Breakdown {
        from: format_rfc3339_millis(q.range.from),
        to: format_rfc3339_millis(q.range.to),
        site: q.range.site,
        dimension: q.dimension,
        total,
        distinct,
        rows,
        filters: q.range.filters,
    })
}

/// Every goal of the site with its converting visitors, conversions and rate, in the range and
/// with the filters of `q`.
pub async fn goals<S: Store + ?Sized>(
    store: &S,
    q: RangeQuery,
    goals: Vec<Goal>,
) -> Result<GoalStats, StoreError> {
    let visitors = store
        .event_stats(scope(&q), Grouping::Total)
        .await?
        .first()
        .map_or(0, |(_, a)| a.visitors);
    let mut per_goal = vec![EventAgg::default(); goals.len()];
    if !goals.is_empty() {
        for (k, a) in store
            .event_stats(scope(&q), Grouping::Goals(goals.clone()))
            .await?
        {
            if let GroupKey::Goal(i) = k {
                if let Some(slot) = per_goal.get_mut(i) {
                    *slot = a;
                }
            }
        }
    }
    let results = goals
        .into_iter()
        .zip(per_goal)
        .map(|(goal, a)| GoalResult {
            goal,
            visitors: a.visitors,
            conversions: a.events,
            conversion_rate: if visitors == 0 {
                0.0
            } else {
                round_to(a.visitors as f64 * 100.0 / visitors as f64, 1)
            },
        })
        .collect();
    Ok(GoalStats {
        from: format_rfc3339_millis(q.from),
        to: format_rfc3339_millis(q.to),
        site: q.site,
        visitors,
        goals: results,
        filters: q.filters,
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
