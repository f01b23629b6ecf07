//! Exports. CSV of the dashboard's panels (`format=csv`): the same answers as the JSON,
//! flattened. Fields are quoted when they hold a comma, quote or line break (RFC 4180), and a
//! leading `= + - @` is defused with a `'`, so a spreadsheet never runs a path or a referrer
//! as a formula.
//!
//! A site's raw events ([`events`]): NDJSON or one JSON array, streamed page by page with
//! [`Store::export_page`] (keyset paging, so every page is an index range read, never an
//! offset), each page read only when the client has taken the one before — memory stays at
//! one page whatever the range.

use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use protocol::stats::{Breakdown, GoalKind, GoalStats, Timeseries};

use crate::store::{ExportCursor, Store, StoreError};

/// Events per page of a raw export: a few hundred KB, so the socket stays busy without any
/// page holding much memory or the store's reader for long.
pub const EXPORT_PAGE: usize = 1000;

/// How raw events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsFormat {
    /// One JSON document per line (`application/x-ndjson`).
    Ndjson,
    /// One JSON array (`application/json`).
    Json,
}

impl EventsFormat {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ndjson" => Some(EventsFormat::Ndjson),
            "json" => Some(EventsFormat::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            EventsFormat::Ndjson => "application/x-ndjson",
            EventsFormat::Json => "application/json; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            EventsFormat::Ndjson => "ndjson",
            EventsFormat::Json => "json",
        }
    }
}

/// What an export stream still has to do.
enum Next {
    /// Read the page after this cursor (`None`: the first page).
    Page(Option<ExportCursor>),
    /// Write the closing bracket of a JSON array.
    Close,
    Done,
}

/// The events of `site` with `from <= ts < to`, oldest first, as chunks of `format` — one
/// chunk per page of `page` events. A store error ends the stream with that error (the
/// connection is then aborted, so a client never mistakes a cut export for a whole one).
pub fn events(
    store: Arc<dyn Store>,
    site: String,
    from: i64,
    to: i64,
    format: EventsFormat,
    page: usize,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
    let page = page.max(1);
    stream::unfold(Next::Page(None), move |next| {
        let (store, site) = (store.clone(), site.clone());
        async move {
            let after = match next {
                Next::Done => return None,
                Next::Close => return Some((Ok(Bytes::from_static(b"]\n")), Next::Done)),
                Next::Page(after) => after,
            };
            let first = after.is_none();
            let docs = match store.export_page(site, from, to, after, page).await {
                Ok(docs) => docs,
                Err(e) => return Some((Err(e), Next::Done)),
            };
            let full = docs.len() >= page;
            let mut out = String::with_capacity(docs.iter().map(|(_, d)| d.len() + 2).sum());
            if first && format == EventsFormat::Json {
                out.push('[');
            }
            let mut last = None;
            for (i, (cursor, doc)) in docs.into_iter().enumerate() {
                if format == EventsFormat::Json && !(first && i == 0) {
                    out.push(',');
                }
                out.push_str(&doc);
                if format == EventsFormat::Ndjson {
                    out.push('\n');
                }
                last = Some(cursor);
            }
            let next = match (last, full) {
                (Some(cursor), true) => Next::Page(Some(cursor)),
                _ if format == EventsFormat::Json => Next::Close,
                _ => Next::Done,
            };
            Some((Ok(Bytes::from(out)), next))
        }
    })
}

fn field(out: &mut String, value: &str) {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&value);
    }
}

/// `value,count`, largest first.
pub fn breakdown_csv(b: &Breakdown) -> String {
    let mut out = String::from("value,count\r\n");
    for row in &b.rows {
        field(&mut out, &row.value);
        let _ = write!(out, ",{}\r\n", row.count);
    }
    out
}

/// One line per point.
pub fn timeseries_csv(t: &Timeseries) -> String {
    let mut out = String::from(
        "time,ts,pageviews,visitors,sessions,events,visits,bounce_rate,visit_duration,views_per_visit\r\n",
    );
    for p in &t.points {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{:.1},{},{:.2}\r\n",
            p.time,
            p.ts,
            p.pageviews,
            p.visitors,
            p.sessions,
            p.events,
            p.visits,
            p.bounce_rate,
            p.visit_duration,
            p.views_per_visit
        );
    }
    out
}

/// One line per goal.
pub fn goals_csv(g: &GoalStats) -> String {
    let mut out = String::from("kind,value,visitors,conversions,conversion_rate\r\n");
    for r in &g.goals {
        out.push_str(match r.goal.kind {
            GoalKind::Event => "event,",
            GoalKind::Page => "page,",
        });
        field(&mut out, &r.goal.value);
        let _ = write!(
            out,
            ",{},{},{:.1}\r\n",
            r.visitors, r.conversions, r.conversion_rate
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use protocol::stats::{Dimension, Row};

    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let b = Breakdown {
            site: "s".into(),
            from: String::new(),
            to: String::new(),
            dimension: Dimension::Page.into(),
            total: 3,
            distinct: 3,
            rows: vec![
                Row {
                    value: "/a,b".into(),
                    count: 1,
                },
                Row {
                    value: "/say \"hi\"".into(),
                    count: 1,
                },
                Row {
                    value: "=cmd()".into(),
                    count: 1,
                },
            ],
            filters: vec![],
        };
        assert_eq!(
            breakdown_csv(&b),
            "value,count\r\n\"/a,b\",1\r\n\"/say \"\"hi\"\"\",1\r\n'=cmd(),1\r\n"
        );
    }
}
