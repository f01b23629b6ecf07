//! Events, rollup buckets and site counters as BSON documents, and back.
//!
//! Events are stored as their serde form with `ts`/`receivedAt` as BSON dates (so the TTL
//! index works and documents read naturally in any MongoDB tool) and the schema version `v`.
//! A rollup bucket is one document: counters under `c` (`$inc`), visitor and session
//! registers under `v` and `s` (`$max`).

use mongodb::bson::{doc, Bson, DateTime, Document};
use protocol::Event;

use super::schema::BATCH_FIELD;
use crate::rollup::{self, parse_field_key, BucketKey, Res, Rollup};
use crate::store::{Bucket, StoreError};
use crate::visit::Visit;

pub(super) fn event_to_doc(e: &Event) -> Result<Document, StoreError> {
    let mut doc = mongodb::bson::to_document(e)
        .map_err(|err| StoreError::Backend(format!("cannot encode event {}: {err}", e.event_id)))?;
    // Dates, so the TTL index works and the documents read naturally in any MongoDB tool.
    doc.insert("ts", DateTime::from_millis(e.ts));
    doc.insert("receivedAt", DateTime::from_millis(e.received_at));
    doc.insert("v", i32::from(protocol::SCHEMA_VERSION));
    Ok(doc)
}

/// The event a stored document holds; `None` (logged) for a document this build cannot read,
/// including one written with a schema version it does not know — skipped rather than read
/// wrongly, as [`protocol::event::decode`] does for queue messages.
pub(super) fn doc_to_event(doc: &Document) -> Option<Event> {
    let version = doc.get("v").and_then(as_u64);
    if version != Some(u64::from(protocol::SCHEMA_VERSION)) {
        tracing::warn!(
            ?version,
            known = protocol::SCHEMA_VERSION,
            "skipping a stored event with an unknown schema version"
        );
        return None;
    }
    let mut d = doc.clone();
    for field in ["_id", BATCH_FIELD, "v"] {
        d.remove(field);
    }
    for field in ["ts", "receivedAt"] {
        if let Some(Bson::DateTime(t)) = d.get(field) {
            let ms = t.timestamp_millis();
            d.insert(field, ms);
        }
    }
    match mongodb::bson::from_document(d) {
        Ok(e) => Some(e),
        Err(err) => {
            tracing::warn!(error = %err, "skipping an unreadable stored event");
            None
        }
    }
}

fn bucket_id(site: &str, res: Res, t: i64) -> String {
    format!("{site}|{}|{t}", res.code())
}

/// The upsert that adds one bucket's increments: counters by `$inc`, registers by `$max`.
pub(super) fn rollup_update((key, r): (&BucketKey, &Rollup)) -> (Document, Document) {
    let (site, res, t) = key;
    let mut inc = Document::new();
    for ((dim, value), n) in &r.counts {
        inc.insert(
            format!("c.{}", rollup::field_key(*dim, value)),
            i64::try_from(*n).unwrap_or(i64::MAX),
        );
    }
    let mut max = Document::new();
    for (prefix, sketch) in [("v", &r.visitors), ("s", &r.sessions)] {
        for (i, rank) in sketch.nonzero() {
            max.insert(format!("{prefix}.{i}"), i32::from(rank));
        }
    }
    let mut update = doc! {
        "$setOnInsert": { "site": site, "res": res.code(), "t": DateTime::from_millis(*t) },
    };
    // MongoDB refuses an empty operator document.
    if !inc.is_empty() {
        update.insert("$inc", inc);
    }
    if !max.is_empty() {
        update.insert("$max", max);
    }
    (doc! { "_id": bucket_id(site, *res, *t) }, update)
}

pub(super) fn site_updates<'a>(
    events: impl Iterator<Item = &'a Event>,
) -> Vec<(Document, Document)> {
    let mut per_site: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for e in events {
        let entry = per_site.entry(e.site.as_str()).or_insert((0, i64::MIN));
        entry.0 += 1;
        entry.1 = entry.1.max(e.received_at);
    }
    per_site
        .into_iter()
        .map(|(site, (n, last))| {
            (
                doc! { "_id": site },
                doc! {
                    "$inc": { "events": n },
                    "$max": { "lastSeen": DateTime::from_millis(last) },
                },
            )
        })
        .collect()
}

pub(super) fn as_u64(b: &Bson) -> Option<u64> {
    match b {
        Bson::Int32(n) => u64::try_from(*n).ok(),
        Bson::Int64(n) => u64::try_from(*n).ok(),
        Bson::Double(f) if *f >= 0.0 => Some(*f as u64),
        _ => None,
    }
}

pub(super) fn doc_to_bucket(doc: &Document) -> Option<Bucket> {
    let res = Res::from_code(doc.get_str("res").ok()?)?;
    let start = doc.get_datetime("t").ok()?.timestamp_millis();
    let mut rollup = Rollup::default();
    if let Ok(counts) = doc.get_document("c") {
        for (key, n) in counts {
            if let (Some(k), Some(n)) = (parse_field_key(key), as_u64(n)) {
                rollup.counts.insert(k, n);
            }
        }
    }
    for (field, sketch) in [("v", &mut rollup.visitors), ("s", &mut rollup.sessions)] {
        if let Ok(regs) = doc.get_document(field) {
            for (i, rank) in regs {
                let rank = as_u64(rank).and_then(|r| u8::try_from(r).ok());
                if let (Ok(i), Some(rank)) = (i.parse::<u16>(), rank) {
                    sketch.set(i, rank);
                }
            }
        }
    }
    Some(Bucket { res, start, rollup })
}

/// Sortable text of `(ts, value)`: zero-padded time first, so `$min`/`$max` on it pick the
/// earliest / latest (ties by value: the same whatever the arrival order).
fn timed(ts: i64, value: &str) -> String {
    format!("{:020}|{value}", ts.max(0))
}

fn untimed(s: &str) -> Option<(i64, String)> {
    let (ts, value) = s.split_once('|')?;
    Some((ts.parse().ok()?, value.to_string()))
}

/// The upsert that merges `v` (the new events of one visit) into its document, with operators
/// only (`$min`, `$max`, `$inc`), so it needs no read and is order-independent: `start`/`end`
/// as epoch ms, `pv` page views, `en`/`ex` entry and exit page as [`timed`] text, `f` the
/// visit's dimensions as timed JSON (the earliest event's win).
pub(super) fn visit_update(site: &str, session: &str, v: &Visit<String>) -> (Document, Document) {
    let dims = serde_json::to_string(&v.dims).unwrap_or_else(|_| "[]".into());
    // `t`: the start as a date, for the TTL index (visits expire with their events).
    let mut min = doc! {
        "start": v.start,
        "t": DateTime::from_millis(v.start),
        "f": timed(v.start, &dims),
    };
    let mut max = doc! { "end": v.end };
    if let Some((ts, path)) = &v.entry {
        min.insert("en", timed(*ts, path));
    }
    if let Some((ts, path)) = &v.exit {
        max.insert("ex", timed(*ts, path));
    }
    (
        doc! { "_id": format!("{site}|{session}") },
        doc! {
            "$setOnInsert": { "site": site, "s": session },
            "$min": min,
            "$max": max,
            "$inc": { "pv": i64::try_from(v.pageviews).unwrap_or(i64::MAX) },
        },
    )
}

/// A visit document back: `(session id, visit)`.
pub(super) fn doc_to_visit(doc: &Document) -> Option<(String, Visit<String>)> {
    let session = doc.get_str("s").ok()?.to_string();
    let int = |k: &str| {
        doc.get(k).and_then(|b| match b {
            Bson::Int64(n) => Some(*n),
            Bson::Int32(n) => Some(i64::from(*n)),
            Bson::Double(f) => Some(*f as i64),
            _ => None,
        })
    };
    let dims: [Option<String>; 10] = doc
        .get_str("f")
        .ok()
        .and_then(untimed)
        .and_then(|(_, json)| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    Some((
        session,
        Visit {
            start: int("start")?,
            end: int("end")?,
            pageviews: int("pv").unwrap_or(0).max(0) as u64,
            entry: doc.get_str("en").ok().and_then(untimed),
            exit: doc.get_str("ex").ok().and_then(untimed),
            dims,
        },
    ))
}
