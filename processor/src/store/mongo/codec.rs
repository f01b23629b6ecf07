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
