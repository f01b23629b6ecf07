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

use std::collections::HashMap;

use protocol::stats::{Dimension, Field, Filter, FilterOp, Goal, GoalKind};
use protocol::Event;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};

use super::{ExportCursor, Record, RecordKind};
use crate::rollup::{PAGE_VIEW, SESSION_START};
use crate::visit::{
    self, counted, is_visit_filter, Counted, EventAgg, GroupKey, Grouping, Scope, Visit, VisitAgg,
    VISIT_DIMS,
};

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
    cache: HashMap<String, i64>,
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
    let mut visits: HashMap<(&str, &str), Visit<i64>> = HashMap::with_capacity(folded.len());
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

/// A SQL text with its positional arguments, built up condition by condition.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Value>,
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn arg(&mut self, v: impl Into<Value>) -> &mut Self {
        self.args.push(v.into());
        self.text.push('?');
        self
    }
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

/// `col IN (ids of the filter's values)` or its negation (which keeps rows without a value).
fn value_cond(sql: &mut Sql, col: &str, f: &Filter) {
    let op = if f.is_pattern() { "GLOB" } else { "=" };
    let value = if f.is_pattern() {
        glob(&f.value)
    } else {
        f.value.clone()
    };
    match f.op {
        FilterOp::Is => sql.push(&format!("{col} IN (SELECT id FROM dict WHERE value {op} ")),
        FilterOp::IsNot => sql.push(&format!(
            "({col} IS NULL OR {col} NOT IN (SELECT id FROM dict WHERE value {op} "
        )),
    };
    sql.arg(value);
    sql.push(match f.op {
        FilterOp::Is => ")",
        FilterOp::IsNot => "))",
    });
}

fn dim_column(d: Dimension) -> Option<&'static str> {
    match d {
        Dimension::Event => Some("name"),
        Dimension::Page => Some("path"),
        _ => visit::visit_dim_index(d).map(|i| DIM_COLUMNS[i]),
    }
}

/// Conditions on `facts f` for `filters` (the scope's site and range are `?1 ?2 ?3`).
fn fact_conds(sql: &mut Sql, site: i64, scope: &Scope, filters: &[&Filter]) {
    for f in filters {
        sql.push(" AND ");
        match &f.field {
            Field::Dim(Dimension::Entry | Dimension::EntryPage | Dimension::ExitPage) => {
                let col = if f.field == Field::Dim(Dimension::ExitPage) {
                    "exit_path"
                } else {
                    "entry_path"
                };
                sql.push("f.session IN (SELECT session FROM visits WHERE site = ")
                    .arg(site)
                    .push(" AND ");
                value_cond(sql, col, f);
                sql.push(")");
            }
            Field::Dim(d) => {
                let col = format!("f.{}", dim_column(*d).unwrap_or("path"));
                value_cond(sql, &col, f);
            }
            Field::Prop(name) => {
                // Events carrying the property with a matching value; "is not" keeps the
                // rest, events without the property included.
                let positive = Filter {
                    op: FilterOp::Is,
                    ..(*f).clone()
                };
                sql.push(match f.op {
                    FilterOp::Is => "f.seq IN (",
                    FilterOp::IsNot => "f.seq NOT IN (",
                });
                sql.push("SELECT p.seq FROM fact_props p WHERE p.site = ")
                    .arg(site)
                    .push(" AND p.key IN (SELECT id FROM dict WHERE value = ")
                    .arg(name.clone())
                    .push(") AND p.ts >= ")
                    .arg(scope.from)
                    .push(" AND p.ts < ")
                    .arg(scope.to)
                    .push(" AND ");
                value_cond(sql, "p.value", &positive);
                sql.push(")");
            }
        }
    }
}

fn site_id(conn: &Connection, site: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM dict WHERE value = ?1")?
        .query_row(params![site], |r| r.get(0))
        .optional()
}

fn pv_cond() -> String {
    format!("f.name = (SELECT id FROM dict WHERE value = '{PAGE_VIEW}')")
}

/// See [`crate::store::Store::event_stats`].
pub(super) fn event_stats(
    conn: &Connection,
    scope: &Scope,
    grouping: &Grouping,
) -> rusqlite::Result<Vec<(GroupKey, EventAgg)>> {
    let Some(site) = site_id(conn, &scope.site)? else {
        return Ok(Vec::new());
    };
    let filters: Vec<&Filter> = scope.filters.iter().collect();
    let base = |sql: &mut Sql, from: &str| {
        sql.push(&format!(
            "count(*), sum({}), count(DISTINCT f.visitor), count(DISTINCT f.session) FROM {from} WHERE f.site = ",
            pv_cond()
        ))
        .arg(site)
        .push(" AND f.ts >= ")
        .arg(scope.from)
        .push(" AND f.ts < ")
        .arg(scope.to);
        fact_conds(sql, site, scope, &filters);
    };
    let agg = |r: &rusqlite::Row<'_>, at: usize| -> rusqlite::Result<EventAgg> {
        let n = |i: usize| -> rusqlite::Result<u64> {
            Ok(r.get::<_, Option<i64>>(at + i)?.unwrap_or(0).max(0) as u64)
        };
        Ok(EventAgg {
            events: n(0)?,
            pageviews: n(1)?,
            visitors: n(2)?,
            sessions: n(3)?,
        })
    };
    let mut out = Vec::new();
    match grouping {
        Grouping::Total => {
            let mut sql = Sql::default();
            sql.push("SELECT ");
            base(&mut sql, "facts f");
            let a = conn
                .prepare(&sql.text)?
                .query_row(params_from_iter(sql.args), |r| agg(r, 0))?;
            if a.events > 0 {
                out.push((GroupKey::Total, a));
            }
        }
        Grouping::Step { origin, step } => {
            let mut sql = Sql::default();
            sql.push("SELECT (f.ts - ")
                .arg(*origin)
                .push(") / ")
                .arg((*step).max(1))
                .push(" AS b, ");
            base(&mut sql, "facts f");
            sql.push(" GROUP BY b");
            let mut stmt = conn.prepare(&sql.text)?;
            let mut rows = stmt.query(params_from_iter(sql.args))?;
            while let Some(r) = rows.next()? {
                out.push((GroupKey::Bucket(r.get(0)?), agg(r, 1)?));
            }
        }
        Grouping::Field(field) => {
            let (col, from, extra) = match (field, counted(field)) {
                (_, Counted::Visits) => return Ok(Vec::new()),
                (Field::Prop(_), _) => (
                    "p.value".to_string(),
                    "fact_props p JOIN facts f ON f.site = p.site AND f.ts = p.ts AND f.seq = p.seq",
                    String::new(),
                ),
                (Field::Dim(d), how) => {
                    let col = format!("f.{}", dim_column(*d).unwrap_or("path"));
                    let extra = match how {
                        Counted::PageViews => format!(" AND {}", pv_cond()),
                        Counted::SessionStarts => format!(
                            " AND f.name = (SELECT id FROM dict WHERE value = '{SESSION_START}')"
                        ),
                        _ => String::new(),
                    };
                    (col, "facts f", extra)
                }
            };
            let mut sql = Sql::default();
            sql.push(&format!("SELECT d.value, g.* FROM (SELECT {col} AS id, "));
            base(&mut sql, from);
            if let Field::Prop(name) = field {
                sql.push(" AND p.site = f.site AND p.key = (SELECT id FROM dict WHERE value = ")
                    .arg(name.clone())
                    .push(") AND p.ts >= ")
                    .arg(scope.from)
                    .push(" AND p.ts < ")
                    .arg(scope.to);
            }
            sql.push(&extra);
            sql.push(&format!(
                " AND {col} IS NOT NULL GROUP BY {col}) g JOIN dict d ON d.id = g.id"
            ));
            let mut stmt = conn.prepare(&sql.text)?;
            let mut rows = stmt.query(params_from_iter(sql.args))?;
            while let Some(r) = rows.next()? {
                out.push((GroupKey::Value(r.get(0)?), agg(r, 2)?));
            }
        }
        Grouping::Goals(goals) => {
            for (i, goal) in goals.iter().enumerate() {
                let mut sql = Sql::default();
                sql.push("SELECT ");
                base(&mut sql, "facts f");
                goal_cond(&mut sql, goal);
                let a = conn
                    .prepare(&sql.text)?
                    .query_row(params_from_iter(sql.args), |r| agg(r, 0))?;
                if a.events > 0 {
                    out.push((GroupKey::Goal(i), a));
                }
            }
        }
    }
    Ok(out)
}

fn goal_cond(sql: &mut Sql, goal: &Goal) {
    match goal.kind {
        GoalKind::Event => {
            sql.push(" AND f.name IN (SELECT id FROM dict WHERE value = ")
                .arg(goal.value.clone())
                .push(")");
        }
        GoalKind::Page => {
            sql.push(&format!(" AND {} AND ", pv_cond()));
            value_cond(
                sql,
                "f.path",
                &Filter::is(Dimension::Page, goal.value.clone()),
            );
        }
    }
}

/// See [`crate::store::Store::visit_stats`].
pub(super) fn visit_stats(
    conn: &Connection,
    scope: &Scope,
    grouping: &Grouping,
) -> rusqlite::Result<Vec<(GroupKey, VisitAgg)>> {
    let Some(site) = site_id(conn, &scope.site)? else {
        return Ok(Vec::new());
    };
    let mut sql = Sql::default();
    let (key, join) = match grouping {
        Grouping::Total => ("0".to_string(), false),
        Grouping::Step { origin, step } => (
            format!("(v.start_ts - ({origin})) / {}", (*step).max(1)),
            false,
        ),
        Grouping::Field(Field::Dim(Dimension::EntryPage | Dimension::Entry)) => {
            ("v.entry_path".to_string(), true)
        }
        Grouping::Field(Field::Dim(Dimension::ExitPage)) => ("v.exit_path".to_string(), true),
        Grouping::Field(Field::Dim(d)) if visit::visit_dim_index(*d).is_some() => {
            (format!("v.{}", dim_column(*d).unwrap_or("referrer")), true)
        }
        Grouping::Field(_) | Grouping::Goals(_) => return Ok(Vec::new()),
    };
    sql.push(&format!(
        "SELECT {key} AS k, count(*), sum(v.pageviews = 1), sum(v.end_ts - v.start_ts), sum(v.pageviews)
         FROM visits v WHERE v.site = "
    ))
    .arg(site)
    .push(" AND v.start_ts >= ")
    .arg(scope.from)
    .push(" AND v.start_ts < ")
    .arg(scope.to)
    .push(" AND v.pageviews > 0");
    for f in scope.visit_filters() {
        sql.push(" AND ");
        let col = match &f.field {
            Field::Dim(Dimension::ExitPage) => "v.exit_path".to_string(),
            Field::Dim(Dimension::EntryPage | Dimension::Entry) => "v.entry_path".to_string(),
            Field::Dim(d) => format!("v.{}", dim_column(*d).unwrap_or("referrer")),
            Field::Prop(_) => "NULL".to_string(),
        };
        value_cond(&mut sql, &col, f);
    }
    let event_filters: Vec<&Filter> = scope
        .filters
        .iter()
        .filter(|f| !is_visit_filter(f))
        .collect();
    if !event_filters.is_empty() {
        sql.push(" AND v.session IN (SELECT f.session FROM facts f WHERE f.site = ")
            .arg(site)
            .push(" AND f.ts >= ")
            .arg(scope.from)
            .push(" AND f.ts < ")
            .arg(scope.to);
        fact_conds(&mut sql, site, scope, &event_filters);
        sql.push(")");
    }
    sql.push(" AND k IS NOT NULL GROUP BY k");
    let text = if join {
        format!(
            "SELECT d.value, g.* FROM ({}) g JOIN dict d ON d.id = g.k",
            sql.text
        )
    } else {
        format!("SELECT NULL, g.* FROM ({}) g", sql.text)
    };
    let mut stmt = conn.prepare(&text)?;
    let mut rows = stmt.query(params_from_iter(sql.args))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let n = |i: usize| -> rusqlite::Result<u64> {
            Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
        };
        let agg = VisitAgg {
            visits: n(2)?,
            bounces: n(3)?,
            duration_ms: n(4)?,
            pageviews: n(5)?,
        };
        let key = match grouping {
            Grouping::Total => GroupKey::Total,
            Grouping::Step { .. } => GroupKey::Bucket(r.get(1)?),
            _ => GroupKey::Value(r.get(0)?),
        };
        out.push((key, agg));
    }
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
    let Some(site) = site_id(conn, site)? else {
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
         ORDER BY f.ts, f.seq LIMIT ?6",
    )?;
    let rows = stmt.query_map(
        params![site, from, to, after_ts, after_seq, limit as i64],
        |r| {
            Ok((
                ExportCursor {
                    ts: r.get(0)?,
                    key: r.get::<_, i64>(1)?.to_string(),
                },
                r.get::<_, String>(2)?,
            ))
        },
    )?;
    rows.collect()
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
