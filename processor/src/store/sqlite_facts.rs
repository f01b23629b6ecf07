//! The SQLite store's visit records and fact table: written with each group commit (new events
//! only), read by filtered queries and visit metrics. Kept apart from `sqlite.rs` so the event
//! insert and the rollups stay one small function each.
//!
//! - `dict`: every distinct string (site, name, path, referrer, ...) once, as an integer id.
//!   The writer caches ids in memory, so a string costs a lookup only the first time.
//! - `facts`: one narrow row of integers per event, clustered by `(site, ts, seq)`: a 30-day
//!   filtered query is a range scan comparing integers. It also serves the `{site, ts}` reads
//!   of the events table (`seq` is the event's rowid), which therefore needs no index of its
//!   own: the fact table costs no more B-tree writes than the index it replaces.
//! - `fact_props`: one row per property of an event, keyed `(site, key, ts, seq)`, only for
//!   events that carry properties.
//! - `visits`: one row per `(site, session)`, merged with [`Visit::merge`], clustered by
//!   `(site, start)` for the visit metrics of a range, found by `(site, session)` through a
//!   unique index when merging.
//!
//! Source columns of a fact (referrer, UTM) are its visit's as known when it was stored, since
//! only a visit's first page view has a referrer of its own.

use std::collections::{HashMap, HashSet};

use protocol::stats::{Dimension, Field, Filter, FilterOp, GoalKind};
use protocol::Event;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};

use super::{ExportCursor, Record, RecordKind};
use crate::rollup::{PAGE_VIEW, SESSION_START};
use crate::visit::{
    self, counted, is_visit_filter, Counted, EventAgg, GroupKey, Grouping, Scope, Visit, VisitAgg,
    VISIT_DIMS,
};
use crate::FastMap;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dict (
    id    INTEGER PRIMARY KEY,
    value TEXT    NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS facts (
    site         INTEGER NOT NULL,
    ts           INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    name         INTEGER NOT NULL,
    path         INTEGER NOT NULL,
    visitor      INTEGER NOT NULL,
    session      INTEGER,
    referrer     INTEGER,
    utm_source   INTEGER,
    utm_medium   INTEGER,
    utm_campaign INTEGER,
    country      INTEGER,
    region       INTEGER,
    city         INTEGER,
    device       INTEGER,
    browser      INTEGER,
    os           INTEGER,
    PRIMARY KEY (site, ts, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fact_props (
    site  INTEGER NOT NULL,
    key   INTEGER NOT NULL,
    ts    INTEGER NOT NULL,
    seq   INTEGER NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (site, key, ts, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS visits (
    site         INTEGER NOT NULL,
    session      INTEGER NOT NULL,
    start_ts     INTEGER NOT NULL,
    end_ts       INTEGER NOT NULL,
    pageviews    INTEGER NOT NULL,
    entry_ts     INTEGER,
    entry_path   INTEGER,
    exit_ts      INTEGER,
    exit_path    INTEGER,
    referrer     INTEGER,
    utm_source   INTEGER,
    utm_medium   INTEGER,
    utm_campaign INTEGER,
    country      INTEGER,
    region       INTEGER,
    city         INTEGER,
    device       INTEGER,
    browser      INTEGER,
    os           INTEGER,
    PRIMARY KEY (site, start_ts, session)
) WITHOUT ROWID;
-- Clustered by start so the visits of a range are one sequential read; the writer finds a
-- visit by session through this index, and REPLACE moves a row whose start changed.
CREATE UNIQUE INDEX IF NOT EXISTS visits_session ON visits (site, session);
CREATE TABLE IF NOT EXISTS records (
    kind    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    site    TEXT    NOT NULL,
    created INTEGER NOT NULL,
    body    TEXT    NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
";

/// Column of each of [`VISIT_DIMS`], in `facts` and `visits` alike.
const DIM_COLUMNS: [&str; 10] = [
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "region",
    "city",
    "device",
    "browser",
    "os",
];

/// Cached dictionary entries kept by the writer; cleared past this, so hostile input (endless
/// distinct paths) cannot grow the writer's memory.
const DICT_CACHE_MAX: usize = 200_000;

/// The writer's side: string → id, cached.
#[derive(Default)]
pub(super) struct Dict {
    cache: FastMap<String, i64>,
}

impl Dict {
    fn id(&mut self, tx: &Transaction<'_>, value: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.cache.get(value) {
            return Ok(*id);
        }
        let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO dict (value) VALUES (?1)")?;
        let id = if insert.execute(params![value])? == 1 {
            tx.last_insert_rowid()
        } else {
            tx.prepare_cached("SELECT id FROM dict WHERE value = ?1")?
                .query_row(params![value], |r| r.get(0))?
        };
        if self.cache.len() >= DICT_CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(value.to_string(), id);
        Ok(id)
    }

    /// Forgets every cached id: after a rolled-back transaction the ids it created are gone.
    pub(super) fn reset(&mut self) {
        self.cache.clear();
    }
}

/// A session id or visitor id as a 64-bit integer: visitor ids are 16 hex digits already;
/// anything else (session ids are the tracker's strings) is hashed.
fn key64(s: &str) -> i64 {
    if s.len() == 16 {
        if let Ok(n) = u64::from_str_radix(s, 16) {
            return n as i64;
        }
    }
    let h = blake3::hash(s.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    i64::from_le_bytes(b)
}

/// Writes the facts, properties and visit updates of the events new in this commit
/// (`(rowid, event)`), in the caller's transaction.
pub(super) fn write(
    tx: &Transaction<'_>,
    dict: &mut Dict,
    fresh: &[(i64, &Event)],
) -> rusqlite::Result<()> {
    if fresh.is_empty() {
        return Ok(());
    }
    // Visits first: each fact takes its source columns from its (merged) visit.
    let mut failure = None;
    let folded = visit::fold(fresh.iter().map(|(_, e)| *e), |s| match dict.id(tx, s) {
        Ok(id) => id,
        Err(e) => {
            failure.get_or_insert(e);
            0
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let mut visits: FastMap<(&str, &str), Visit<i64>> =
        FastMap::with_capacity_and_hasher(folded.len(), Default::default());
    for ((site, session), delta) in folded {
        let site_id = dict.id(tx, site)?;
        let key = key64(session);
        let merged = match read_visit(tx, site_id, key)? {
            Some(mut v) => {
                let (old_start, old_end, old_dims) = (v.start, v.end, v.dims);
                v.merge(delta);
                if v.dims != old_dims {
                    // An earlier event arrived late and changed the visit's source: the facts
                    // already stored for it (all within its old span) take the new one.
                    restamp_source(tx, site_id, key, v.start.min(old_start), old_end, &v)?;
                }
                v
            }
            None => delta,
        };
        write_visit(tx, site_id, key, &merged)?;
        visits.insert((site, session), merged);
    }

    let mut fact = tx.prepare_cached(
        "INSERT OR IGNORE INTO facts (site, ts, seq, name, path, visitor, session, referrer,
             utm_source, utm_medium, utm_campaign, country, region, city, device, browser, os)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?;
    let mut prop = tx.prepare_cached(
        "INSERT OR IGNORE INTO fact_props (site, key, ts, seq, value) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (seq, e) in fresh {
        let site = dict.id(tx, &e.site)?;
        let visit = e
            .session_id
            .as_deref()
            .and_then(|s| visits.get(&(e.site.as_str(), s)));
        let mut dims: [Option<i64>; 10] = [None; 10];
        for (i, d) in VISIT_DIMS.iter().enumerate() {
            dims[i] = match visit {
                Some(v) if visit::is_source(*d) => v.dims[i],
                _ => match visit::event_dim(e, *d) {
                    Some(value) => Some(dict.id(tx, value)?),
                    None => None,
                },
            };
        }
        let mut args: Vec<Value> = vec![
            site.into(),
            e.ts.into(),
            (*seq).into(),
            dict.id(tx, &e.name)?.into(),
            dict.id(tx, &e.path)?.into(),
            key64(&e.visitor_id).into(),
            e.session_id.as_deref().map(key64).into(),
        ];
        args.extend(dims.iter().map(|d| Value::from(*d)));
        fact.execute(params_from_iter(args))?;
        for (key, value) in &e.props {
            let key = dict.id(tx, key)?;
            let value = dict.id(tx, &visit::prop_text(value))?;
            prop.execute(params![site, key, e.ts, seq, value])?;
        }
    }
    Ok(())
}

fn restamp_source(
    tx: &Transaction<'_>,
    site: i64,
    session: i64,
    from: i64,
    to: i64,
    v: &Visit<i64>,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE facts SET referrer = ?5, utm_source = ?6, utm_medium = ?7, utm_campaign = ?8
         WHERE site = ?1 AND ts >= ?2 AND ts <= ?3 AND session = ?4",
    )?;
    stmt.execute(params![
        site, from, to, session, v.dims[0], v.dims[1], v.dims[2], v.dims[3]
    ])?;
    Ok(())
}

fn read_visit(
    tx: &Transaction<'_>,
    site: i64,
    session: i64,
) -> rusqlite::Result<Option<Visit<i64>>> {
    let mut stmt = tx.prepare_cached(
        "SELECT start_ts, end_ts, pageviews, entry_ts, entry_path, exit_ts, exit_path, referrer,
                utm_source, utm_medium, utm_campaign, country, region, city, device, browser, os
         FROM visits WHERE site = ?1 AND session = ?2",
    )?;
    stmt.query_row(params![site, session], |r| {
        let page = |ts: usize, path: usize| -> rusqlite::Result<Option<(i64, i64)>> {
            Ok(
                match (r.get::<_, Option<i64>>(ts)?, r.get::<_, Option<i64>>(path)?) {
                    (Some(t), Some(p)) => Some((t, p)),
                    _ => None,
                },
            )
        };
        let mut dims = [None; 10];
        for (i, d) in dims.iter_mut().enumerate() {
            *d = r.get(7 + i)?;
        }
        Ok(Visit {
            start: r.get(0)?,
            end: r.get(1)?,
            pageviews: r.get::<_, i64>(2)?.max(0) as u64,
            entry: page(3, 4)?,
            exit: page(5, 6)?,
            dims,
        })
    })
    .optional()
}

fn write_visit(
    tx: &Transaction<'_>,
    site: i64,
    session: i64,
    v: &Visit<i64>,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO visits (site, session, start_ts, end_ts, pageviews, entry_ts,
             entry_path, exit_ts, exit_path, referrer, utm_source, utm_medium, utm_campaign,
             country, region, city, device, browser, os)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    )?;
    let mut args: Vec<Value> = vec![
        site.into(),
        session.into(),
        v.start.into(),
        v.end.into(),
        (v.pageviews as i64).into(),
        v.entry.map(|p| p.0).into(),
        v.entry.map(|p| p.1).into(),
        v.exit.map(|p| p.0).into(),
        v.exit.map(|p| p.1).into(),
    ];
    args.extend(v.dims.iter().map(|d| Value::from(*d)));
    stmt.execute(params_from_iter(args))?;
    Ok(())
}

/// The dictionary ids of the values a filter (ignoring its operator) matches: one id for an
/// exact value; for a `*` pattern every stored value it matches (found with GLOB, confirmed
/// with the filter's own matcher, so SQLite and the reference agree on what matches).
fn matching_ids(conn: &Connection, f: &Filter) -> rusqlite::Result<Vec<i64>> {
    if !f.is_pattern() {
        return Ok(conn
            .prepare_cached("SELECT id FROM dict WHERE value = ?1")?
            .query_row(params![f.value], |r| r.get(0))
            .optional()?
            .into_iter()
            .collect());
    }
    let mut stmt = conn.prepare_cached("SELECT id, value FROM dict WHERE value GLOB ?1")?;
    let rows = stmt.query_map(params![glob(&f.value)], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut ids = Vec::new();
    for row in rows {
        let (id, value) = row?;
        if f.value_matches(&value) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// A `*` pattern as a GLOB: `*` stays, GLOB's other specials are bracketed.
fn glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

/// `col` is (or is not) one of `ids`, as literal integers — no per-row subquery, so the scan
/// compares integers only. "Is not" keeps rows without a value.
fn id_cond(col: &str, op: FilterOp, ids: &[i64]) -> String {
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    match (op, ids) {
        (FilterOp::Is, []) => "0".into(),
        (FilterOp::Is, [id]) => format!("{col} = {id}"),
        (FilterOp::Is, _) => format!("{col} IN ({list})"),
        (FilterOp::IsNot, []) => "1".into(),
        (FilterOp::IsNot, [id]) => format!("({col} IS NULL OR {col} <> {id})"),
        (FilterOp::IsNot, _) => format!("({col} IS NULL OR {col} NOT IN ({list}))"),
    }
}

fn dim_column(d: Dimension) -> Option<&'static str> {
    match d {
        Dimension::Event => Some("name"),
        Dimension::Page => Some("path"),
        _ => visit::visit_dim_index(d).map(|i| DIM_COLUMNS[i]),
    }
}

fn dict_id(conn: &Connection, value: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM dict WHERE value = ?1")?
        .query_row(params![value], |r| r.get(0))
        .optional()
}

/// The id of a name that may never have been stored (then no row can have it).
fn name_id(conn: &Connection, value: &str) -> rusqlite::Result<i64> {
    Ok(dict_id(conn, value)?.unwrap_or(-1))
}

/// `AND …` conditions on `facts f` for `filters`, with every value resolved to ids first.
/// The scope's site and range bound the subqueries on visits and properties.
fn fact_conds(
    conn: &Connection,
    site: i64,
    scope: &Scope,
    filters: &[&Filter],
) -> rusqlite::Result<String> {
    let mut sql = String::new();
    for f in filters {
        sql.push_str(" AND ");
        let positive = Filter {
            op: FilterOp::Is,
            ..(*f).clone()
        };
        let ids = matching_ids(conn, f)?;
        match &f.field {
            Field::Dim(Dimension::Entry) => {
                // The path of a `session_start` (see `visit::event_dim`).
                let hit = format!(
                    "(f.name = {} AND {})",
                    name_id(conn, SESSION_START)?,
                    id_cond("f.path", FilterOp::Is, &ids)
                );
                sql.push_str(&match f.op {
                    FilterOp::Is => hit,
                    FilterOp::IsNot => format!("NOT {hit}"),
                });
            }
            Field::Dim(d @ (Dimension::EntryPage | Dimension::ExitPage)) => {
                // The event's visit's entry or exit page: visits overlapping the range.
                let col = if *d == Dimension::ExitPage {
                    "exit_path"
                } else {
                    "entry_path"
                };
                let sessions = format!(
                    "(SELECT session FROM visits WHERE site = {site} AND start_ts < {} \
                     AND end_ts >= {} AND {})",
                    scope.to,
                    scope.from,
                    id_cond(col, FilterOp::Is, &ids)
                );
                sql.push_str(&match f.op {
                    FilterOp::Is => format!("f.session IN {sessions}"),
                    FilterOp::IsNot => {
                        format!("(f.session IS NULL OR f.session NOT IN {sessions})")
                    }
                });
            }
            Field::Dim(d) => {
                let col = format!("f.{}", dim_column(*d).unwrap_or("path"));
                sql.push_str(&id_cond(&col, f.op, &ids));
            }
            Field::Prop(name) => {
                // Events carrying the property with a matching value; "is not" keeps the
                // rest, events without the property included.
                let events = format!(
                    "(SELECT p.seq FROM fact_props p WHERE p.site = {site} AND p.key = {} \
                     AND p.ts >= {} AND p.ts < {} AND {})",
                    name_id(conn, name)?,
                    scope.from,
                    scope.to,
                    id_cond("p.value", positive.op, &ids)
                );
                sql.push_str(&match f.op {
                    FilterOp::Is => format!("f.seq IN {events}"),
                    FilterOp::IsNot => format!("f.seq NOT IN {events}"),
                });
            }
        }
    }
    Ok(sql)
}

/// Events of one group while they are counted: distinct ids in sets, kept only where the
/// grouping asks for them (see [`Grouping`]).
#[derive(Default)]
struct EventAcc {
    agg: EventAgg,
    visitors: HashSet<i64>,
    sessions: HashSet<i64>,
}

impl EventAcc {
    fn add(&mut self, pageview: bool, visitor: i64, session: Option<i64>, distinct: bool) {
        self.agg.events += 1;
        self.agg.pageviews += u64::from(pageview);
        if distinct {
            self.visitors.insert(visitor);
            if let Some(s) = session {
                self.sessions.insert(s);
            }
        }
    }

    fn finish(mut self) -> EventAgg {
        self.agg.visitors = self.visitors.len() as u64;
        self.agg.sessions = self.sessions.len() as u64;
        self.agg
    }
}

/// Dictionary values of `ids`.
fn values_of(
    conn: &Connection,
    ids: impl IntoIterator<Item = i64>,
) -> rusqlite::Result<HashMap<i64, String>> {
    let mut stmt = conn.prepare_cached("SELECT value FROM dict WHERE id = ?1")?;
    let mut out = HashMap::new();
    for id in ids {
        if let Some(v) = stmt
            .query_row(params![id], |r| r.get::<_, String>(0))
            .optional()?
        {
            out.insert(id, v);
        }
    }
    Ok(out)
}

/// See [`crate::store::Store::event_stats`]. One range scan of the facts with every filter
/// as an integer comparison; the counting (and the distinct visitors and sessions, in hash
/// sets rather than SQLite's temporary B-trees) is done here as the rows go by.
pub(super) fn event_stats(
    conn: &Connection,
    scope: &Scope,
    grouping: &Grouping,
) -> rusqlite::Result<Vec<(GroupKey, EventAgg)>> {
    let Some(site) = dict_id(conn, &scope.site)? else {
        return Ok(Vec::new());
    };
    let filters: Vec<&Filter> = scope.filters.iter().collect();
    let conds = fact_conds(conn, site, scope, &filters)?;
    let pv = name_id(conn, PAGE_VIEW)?;
    let range = format!(
        "f.site = {site} AND f.ts >= {} AND f.ts < {}",
        scope.from, scope.to
    );
    // Breakdowns (field groupings) count events only.
    let distinct = !matches!(grouping, Grouping::Field(_) | Grouping::PropNames);
    let props_join =
        || "fact_props p JOIN facts f ON f.site = p.site AND f.ts = p.ts AND f.seq = p.seq".into();
    let (key, from, extra) = match grouping {
        Grouping::Total => ("0".to_string(), "facts f".to_string(), String::new()),
        Grouping::PropNames => (
            "p.key".into(),
            props_join(),
            format!(
                " AND p.site = {site} AND p.ts >= {} AND p.ts < {}",
                scope.from, scope.to
            ),
        ),
        Grouping::Step { .. } => ("f.ts".into(), "facts f".into(), String::new()),
        Grouping::Goals(_) => ("f.path".into(), "facts f".into(), String::new()),
        Grouping::Field(field) => match (field, counted(field)) {
            (_, Counted::Visits) => return Ok(Vec::new()),
            (Field::Prop(name), _) => (
                "p.value".into(),
                props_join(),
                format!(
                    " AND p.site = {site} AND p.key = {} AND p.ts >= {} AND p.ts < {}",
                    name_id(conn, name)?,
                    scope.from,
                    scope.to
                ),
            ),
            (Field::Dim(d), how) => {
                let col = format!("f.{}", dim_column(*d).unwrap_or("path"));
                let only = match how {
                    Counted::PageViews => format!(" AND f.name = {pv}"),
                    Counted::SessionStarts => {
                        format!(" AND f.name = {}", name_id(conn, SESSION_START)?)
                    }
                    _ => String::new(),
                };
                let extra = format!("{only} AND {col} IS NOT NULL");
                (col, "facts f".into(), extra)
            }
        },
    };
    // Goals: which names and paths convert, as ids.
    let goals: Vec<(Option<i64>, Option<HashSet<i64>>)> = match grouping {
        Grouping::Goals(goals) => goals
            .iter()
            .map(|g| match g.kind {
                GoalKind::Event => Ok((Some(name_id(conn, &g.value)?), None)),
                GoalKind::Page => {
                    let paths = matching_ids(conn, &Filter::is(Dimension::Page, g.value.clone()))?;
                    Ok((Some(pv), Some(paths.into_iter().collect())))
                }
            })
            .collect::<rusqlite::Result<_>>()?,
        _ => Vec::new(),
    };
    let sql = format!(
        "SELECT f.name, f.visitor, f.session, {key} FROM {from} WHERE {range}{extra}{conds}"
    );
    let mut groups: HashMap<i64, EventAcc> = HashMap::new();
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let name: i64 = r.get(0)?;
        let visitor: i64 = r.get(1)?;
        let session: Option<i64> = r.get(2)?;
        let k: i64 = r.get(3)?;
        let pageview = name == pv;
        match grouping {
            Grouping::Goals(_) => {
                for (i, (want_name, paths)) in goals.iter().enumerate() {
                    if *want_name == Some(name) && paths.as_ref().is_none_or(|p| p.contains(&k)) {
                        groups
                            .entry(i as i64)
                            .or_default()
                            .add(pageview, visitor, session, distinct);
                    }
                }
            }
            Grouping::Step { origin, step } => groups
                .entry((k - origin).div_euclid((*step).max(1)))
                .or_default()
                .add(pageview, visitor, session, distinct),
            _ => groups
                .entry(k)
                .or_default()
                .add(pageview, visitor, session, distinct),
        }
    }
    let labels = match grouping {
        Grouping::Field(_) | Grouping::PropNames => values_of(conn, groups.keys().copied())?,
        _ => HashMap::new(),
    };
    let mut out: Vec<(GroupKey, EventAgg)> = groups
        .into_iter()
        .filter_map(|(k, acc)| {
            let key = match grouping {
                Grouping::Total => GroupKey::Total,
                Grouping::Step { .. } => GroupKey::Bucket(k),
                Grouping::Goals(_) => GroupKey::Goal(usize::try_from(k).ok()?),
                Grouping::Field(_) | Grouping::PropNames => {
                    GroupKey::Value(labels.get(&k)?.clone())
                }
            };
            Some((key, acc.finish()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// See [`crate::store::Store::visit_stats`]. Visit-level filters are integer comparisons on
/// the visits of the range (read in `(site, start)` order); event-level filters first collect
/// the sessions that have a matching event in the range, in a hash set.
pub(super) fn visit_stats(
    conn: &Connection,
    scope: &Scope,
    grouping: &Grouping,
) -> rusqlite::Result<Vec<(GroupKey, VisitAgg)>> {
    let Some(site) = dict_id(conn, &scope.site)? else {
        return Ok(Vec::new());
    };
    let key = match grouping {
        Grouping::Total => "0".to_string(),
        Grouping::Step { .. } => "v.start_ts".to_string(),
        Grouping::Field(Field::Dim(Dimension::EntryPage)) => "v.entry_path".to_string(),
        Grouping::Field(Field::Dim(Dimension::ExitPage)) => "v.exit_path".to_string(),
        Grouping::Field(Field::Dim(d)) => match visit::visit_dim_index(*d) {
            Some(i) => format!("v.{}", DIM_COLUMNS[i]),
            None => return Ok(Vec::new()),
        },
        Grouping::Field(Field::Prop(_)) | Grouping::Goals(_) | Grouping::PropNames => {
            return Ok(Vec::new())
        }
    };
    let mut conds = format!(
        "v.site = {site} AND v.start_ts >= {} AND v.start_ts < {} AND v.pageviews > 0",
        scope.from, scope.to
    );
    for f in scope.visit_filters() {
        let col = match &f.field {
            Field::Dim(Dimension::ExitPage) => "v.exit_path".to_string(),
            Field::Dim(Dimension::EntryPage) => "v.entry_path".to_string(),
            Field::Dim(d) => format!("v.{}", dim_column(*d).unwrap_or("referrer")),
            Field::Prop(_) => continue,
        };
        conds.push_str(" AND ");
        conds.push_str(&id_cond(&col, f.op, &matching_ids(conn, f)?));
    }
    let event_filters: Vec<&Filter> = scope
        .filters
        .iter()
        .filter(|f| !is_visit_filter(f))
        .collect();
    let figures = |r: &rusqlite::Row<'_>, at: usize| -> rusqlite::Result<VisitAgg> {
        let n = |i: usize| -> rusqlite::Result<u64> {
            Ok(r.get::<_, Option<i64>>(at + i)?.unwrap_or(0).max(0) as u64)
        };
        Ok(VisitAgg {
            visits: n(0)?,
            bounces: n(1)?,
            duration_ms: n(2)?,
            pageviews: n(3)?,
        })
    };
    if event_filters.is_empty() && *grouping == Grouping::Total {
        // The common case (the summary): SQLite sums in one pass, no grouping.
        let sql = format!(
            "SELECT count(*), sum(v.pageviews = 1), sum(v.end_ts - v.start_ts), sum(v.pageviews)
             FROM visits v WHERE {conds}"
        );
        let agg = conn.prepare(&sql)?.query_row([], |r| figures(r, 0))?;
        return Ok(if agg.visits > 0 {
            vec![(GroupKey::Total, agg)]
        } else {
            Vec::new()
        });
    }
    let sessions: Option<HashSet<i64>> = if event_filters.is_empty() {
        None
    } else {
        let sql = format!(
            "SELECT f.session FROM facts f WHERE f.site = {site} AND f.ts >= {} AND f.ts < {} \
             AND f.session IS NOT NULL{}",
            scope.from,
            scope.to,
            fact_conds(conn, site, scope, &event_filters)?
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let mut set = HashSet::new();
        while let Some(r) = rows.next()? {
            set.insert(r.get::<_, i64>(0)?);
        }
        Some(set)
    };
    let sql = format!(
        "SELECT v.session, v.start_ts, v.end_ts, v.pageviews, {key} FROM visits v \
         WHERE {conds} AND {key} IS NOT NULL"
    );
    let mut groups: HashMap<i64, VisitAgg> = HashMap::new();
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let session: i64 = r.get(0)?;
        if sessions.as_ref().is_some_and(|s| !s.contains(&session)) {
            continue;
        }
        let (start, end, pageviews): (i64, i64, i64) = (r.get(1)?, r.get(2)?, r.get(3)?);
        let k: i64 = r.get(4)?;
        let k = match grouping {
            Grouping::Step { origin, step } => (k - origin).div_euclid((*step).max(1)),
            _ => k,
        };
        let agg = groups.entry(k).or_default();
        agg.visits += 1;
        agg.bounces += u64::from(pageviews == 1);
        agg.duration_ms += (end - start).max(0) as u64;
        agg.pageviews += pageviews.max(0) as u64;
    }
    let labels = match grouping {
        Grouping::Field(_) => values_of(conn, groups.keys().copied())?,
        _ => HashMap::new(),
    };
    let mut out: Vec<(GroupKey, VisitAgg)> = groups
        .into_iter()
        .filter_map(|(k, agg)| {
            let key = match grouping {
                Grouping::Total => GroupKey::Total,
                Grouping::Step { .. } => GroupKey::Bucket(k),
                _ => GroupKey::Value(labels.get(&k)?.clone()),
            };
            Some((key, agg))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// See [`crate::store::Store::export_page`]: facts give the order, events the documents.
pub(super) fn export_page(
    conn: &Connection,
    site: &str,
    from: i64,
    to: i64,
    after: Option<&ExportCursor>,
    limit: usize,
) -> rusqlite::Result<Vec<(ExportCursor, String)>> {
    let Some(site) = dict_id(conn, site)? else {
        return Ok(Vec::new());
    };
    // Keyset paging in the fact table's own order (site, ts, seq): no sort, no offset.
    let (after_ts, after_seq) = match after {
        Some(c) => (c.ts, c.key.parse::<i64>().unwrap_or(i64::MAX)),
        None => (i64::MIN, i64::MIN),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT f.ts, f.seq, e.doc FROM facts f JOIN events e ON e.seq = f.seq
         WHERE f.site = ?1 AND f.ts >= ?2 AND f.ts < ?3 AND (f.ts, f.seq) > (?4, ?5)
         ORDER BY f.ts, f.seq",
    )?;
    // No LIMIT: rows are stepped one at a time, and the page ends at `limit` documents, so a
    // row skipped below does not make a short page, which the export takes for the last.
    let mut rows = stmt.query(params![site, from, to, after_ts, after_seq])?;
    let mut page = Vec::with_capacity(limit.min(4096));
    while page.len() < limit {
        let Some(row) = rows.next()? else {
            break;
        };
        let cursor = ExportCursor {
            ts: row.get(0)?,
            key: row.get::<_, i64>(1)?.to_string(),
        };
        match exported_document(row.get_ref(2)?) {
            Ok(doc) => page.push((cursor, doc)),
            // As every other read of the documents: one that no longer decodes is skipped.
            Err(e) => tracing::warn!(error = %e, "skipping an unreadable stored event"),
        }
    }
    Ok(page)
}

/// The JSON document of a stored event: as stored for rows from before schema 5, made from
/// the compact form for the rest.
fn exported_document(doc: ValueRef<'_>) -> Result<String, String> {
    if let ValueRef::Text(json) = doc {
        return std::str::from_utf8(json)
            .map(str::to_owned)
            .map_err(|e| e.to_string());
    }
    let bytes = doc.as_bytes().map_err(|e| e.to_string())?;
    let event = protocol::compact::decode_stored(bytes).map_err(|e| e.to_string())?;
    let json = protocol::event::encode(&event).map_err(|e| e.to_string())?;
    // serde_json writes UTF-8.
    String::from_utf8(json).map_err(|e| e.to_string())
}

pub(super) fn records(
    conn: &Connection,
    kind: RecordKind,
    site: Option<&str>,
) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, site, created, body FROM records
         WHERE kind = ?1 AND (?2 IS NULL OR site = ?2) ORDER BY created, id",
    )?;
    let rows = stmt.query_map(params![kind.code(), site], |r| {
        Ok(Record {
            kind,
            id: r.get(0)?,
            site: r.get(1)?,
            created: r.get(2)?,
            body: r.get(3)?,
        })
    })?;
    rows.collect()
}

pub(super) fn record(
    conn: &Connection,
    kind: RecordKind,
    id: &str,
) -> rusqlite::Result<Option<Record>> {
    conn.prepare_cached("SELECT site, created, body FROM records WHERE kind = ?1 AND id = ?2")?
        .query_row(params![kind.code(), id], |r| {
            Ok(Record {
                kind,
                id: id.to_string(),
                site: r.get(0)?,
                created: r.get(1)?,
                body: r.get(2)?,
            })
        })
        .optional()
}

pub(super) fn put_record(conn: &Connection, r: &Record) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO records (kind, id, site, created, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![r.kind.code(), r.id, r.site, r.created, r.body],
    )?;
    Ok(())
}

pub(super) fn delete_record(
    conn: &Connection,
    kind: RecordKind,
    site: &str,
    id: &str,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM records WHERE kind = ?1 AND site = ?2 AND id = ?3",
        params![kind.code(), site, id],
    )? > 0)
}
