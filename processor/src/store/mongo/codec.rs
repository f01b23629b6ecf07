//! Events, rollup buckets and site counters as BSON documents, and back.
//!
//! Events are stored as their serde form with `ts`/`receivedAt` as BSON dates (so the TTL
//! index works and documents read naturally in any MongoDB tool) and the schema version `v`.
//! Rollup documents — compacted buckets, their overflow counters and the deltas of insert
//! attempts — share one shape: `site`, `res`, `t`, counters under `c` (`<dimension>:<value>`
//! keys, see [`rollup::field_key`]), and the visitor and session sketches as bytes under `v`
//! and `s` ([`Hll::to_bytes`]).

use std::collections::BTreeMap;

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, oid::ObjectId, Binary, Bson, DateTime, Document};
use protocol::stats::Dimension;
use protocol::Event;

use super::bulk::Upsert;
use super::schema::{BATCH_FIELD, WRITE_FIELD};
use crate::rollup::{self, parse_field_key, BucketKey, Hll, Res, Rollup};
use crate::store::{Bucket, StoreError};
use crate::visit::Visit;

pub(super) fn event_to_doc(e: &Event) -> Result<Document, StoreError> {
    let mut doc = mongodb::bson::to_document(e)
        .map_err(|err| StoreError::Refused(format!("cannot encode event {}: {err}", e.event_id)))?;
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
    for field in ["_id", BATCH_FIELD, WRITE_FIELD, "v"] {
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

/// `_id` of a bucket's compacted document: `site|res|t`.
pub(super) fn bucket_id(site: &str, res: Res, t: i64) -> String {
    format!("{site}|{}|{t}", res.code())
}

/// `_id` of the overflow document of one counter of a full bucket document: the bucket's id,
/// `|x|`, and a hash of the counter key (keys can be long; the key itself is inside).
pub(super) fn overflow_id(bucket: &str, key: &str) -> String {
    let hash = blake3::hash(key.as_bytes());
    format!("{bucket}|x|{}", hex::encode(&hash.as_bytes()[..12]))
}

/// What a counter costs in a document's `c`: the key, its type byte and NUL, an int64.
pub(super) fn counter_bytes(key: &str) -> usize {
    key.len() + 10
}

/// Most counter bytes in one rollup delta document; a bucket's increments beyond this go into
/// further documents (`…|1`, `…|2`), so a batch of long distinct values can never make one
/// document exceed MongoDB's 16 MiB.
pub(super) const DELTA_MAX_BYTES: usize = 4 << 20;

/// The rollup deltas of one insert attempt (`batch`) for its new `events`: one document per
/// site and minute (more when its counters pass [`DELTA_MAX_BYTES`]) with the minute's
/// counters under `c`, its sketches as bytes under `v` / `s`, and the site's activity —
/// events `n`, newest `receivedAt` as `last` — for the site counters. Hours and days are
/// merges of minutes, so the compactor and readers derive them (one delta per minute instead
/// of three). `_id`s are derived from the attempt and the minute, and minutes are ordered, so
/// the same attempt always yields the same documents.
pub(super) fn delta_docs(batch: ObjectId, events: &[&Event]) -> Vec<Document> {
    let mut minutes: BTreeMap<(&str, i64), (Rollup, i64)> = BTreeMap::new();
    for e in events {
        let (r, last) = minutes
            .entry((e.site.as_str(), Res::Minute.bucket(e.ts)))
            .or_insert_with(|| (Rollup::default(), i64::MIN));
        r.add_event(e);
        *last = (*last).max(e.received_at);
    }
    let mut out = Vec::new();
    for ((site, t), (r, last)) in &minutes {
        let mut chunk = 0usize;
        let mut bytes = 0usize;
        let mut counts = Document::new();
        let head = |chunk: usize| {
            doc! {
                "_id": format!("{batch}|{}|{chunk}", bucket_id(site, Res::Minute, *t)),
                "site": *site,
                "res": Res::Minute.code(),
                "t": DateTime::from_millis(*t),
            }
        };
        for ((dim, value), n) in &r.counts {
            let key = rollup::field_key(*dim, value);
            let cost = counter_bytes(&key);
            if bytes + cost > DELTA_MAX_BYTES && !counts.is_empty() {
                let mut d = head(chunk);
                d.insert("c", std::mem::take(&mut counts));
                out.push(d);
                chunk += 1;
                bytes = 0;
            }
            bytes += cost;
            counts.insert(key, i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let mut d = head(chunk);
        d.insert("c", counts);
        d.insert("v", sketch_value(&r.visitors));
        d.insert("s", sketch_value(&r.sessions));
        d.insert(
            "n",
            i64::try_from(r.total(Dimension::Event)).unwrap_or(i64::MAX),
        );
        d.insert("last", DateTime::from_millis(*last));
        out.push(d);
    }
    out
}

/// A delta's site activity: `(site, events, newest receivedAt)`.
pub(super) fn delta_activity(doc: &Document) -> Option<(String, i64, i64)> {
    let site = doc.get_str("site").ok()?;
    let n = doc.get("n").and_then(as_u64)?;
    let last = doc.get_datetime("last").ok()?.timestamp_millis();
    Some((site.to_string(), i64::try_from(n).ok()?, last))
}

pub(super) fn sketch_value(h: &Hll) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: h.to_bytes(),
    })
}

/// A sketch as stored: bytes (this build), or one field per register (the first schema).
pub(super) fn doc_sketch(doc: &Document, field: &str) -> Hll {
    match doc.get(field) {
        Some(Bson::Binary(b)) => Hll::from_bytes(&b.bytes).unwrap_or_default(),
        Some(Bson::Document(regs)) => {
            let mut h = Hll::default();
            for (i, rank) in regs {
                let rank = as_u64(rank).and_then(|r| u8::try_from(r).ok());
                if let (Ok(i), Some(rank)) = (i.parse::<u16>(), rank) {
                    h.set(i, rank);
                }
            }
            h
        }
        _ => Hll::default(),
    }
}

/// A rollup document's counters by stored key (unparsed, so keys a newer build wrote survive
/// a compaction by this one).
pub(super) fn doc_counts(doc: &Document) -> Vec<(String, i64)> {
    doc.get_document("c")
        .map(|c| {
            c.iter()
                .filter_map(|(k, n)| Some((k.clone(), i64::try_from(as_u64(n)?).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The bucket key of a rollup or delta document.
pub(super) fn doc_key(doc: &Document) -> Option<BucketKey> {
    let site = doc.get_str("site").ok()?;
    let res = Res::from_code(doc.get_str("res").ok()?)?;
    let t = doc.get_datetime("t").ok()?.timestamp_millis();
    Some((site.to_string(), res, t))
}

/// The upserts that add site activity (`site → (events, newest receivedAt)`) to the site
/// counters.
pub(super) fn site_upserts(activity: BTreeMap<String, (i64, i64)>) -> Vec<Upsert> {
    activity
        .into_iter()
        .map(|(site, (n, last))| Upsert {
            filter: doc! { "_id": site },
            update: doc! {
                "$inc": { "events": n },
                "$max": { "lastSeen": DateTime::from_millis(last) },
            },
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

/// Any rollup document — compacted bucket, overflow counter or delta — as a bucket.
pub(super) fn doc_to_bucket(doc: &Document) -> Option<Bucket> {
    let (_, res, start) = doc_key(doc)?;
    let mut rollup = Rollup::default();
    for (key, n) in doc_counts(doc) {
        if let (Some(k), Ok(n)) = (parse_field_key(&key), u64::try_from(n)) {
            rollup.counts.insert(k, n);
        }
    }
    rollup.visitors = doc_sketch(doc, "v");
    rollup.sessions = doc_sketch(doc, "s");
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

/// The partial visits of one write's new events (`crate::visit::fold`): one document per site
/// (id derived from `write`, so a retry of the same write only meets duplicates) holding one
/// partial per session under `p`, and the earliest start as the date `t` (TTL index). A
/// session's partials are merged when read ([`merge_visit_docs`]) — inserts only, never
/// updates, and a handful of documents per batch: a server pays far more for rewriting a
/// document, or for one document per session, than for a few more array elements. A
/// partial: `s` the session, `start`/`end` as epoch ms, `pv` page views, `en`/`ex` entry and
/// exit page as [`timed`] text, `f` the visit's dimensions as timed JSON (the earliest
/// event's win). (Visits written before partials existed are one such document per session,
/// at the top level, with the id `{site}|{session}`; readers take both.)
pub(super) fn visit_partials(write: ObjectId, events: &[&Event]) -> Vec<Document> {
    let mut sites: BTreeMap<&str, (i64, Vec<Document>)> = BTreeMap::new();
    for ((site, session), v) in crate::visit::fold(events.iter().copied(), str::to_string) {
        let dims = serde_json::to_string(&v.dims).unwrap_or_else(|_| "[]".into());
        let mut d = doc! {
            "s": session,
            "start": v.start,
            "end": v.end,
            "pv": i64::try_from(v.pageviews).unwrap_or(i64::MAX),
            "f": timed(v.start, &dims),
        };
        if let Some((ts, path)) = &v.entry {
            d.insert("en", timed(*ts, path));
        }
        if let Some((ts, path)) = &v.exit {
            d.insert("ex", timed(*ts, path));
        }
        let (earliest, partials) = sites.entry(site).or_insert((i64::MAX, Vec::new()));
        *earliest = (*earliest).min(v.start);
        partials.push(d);
    }
    sites
        .into_iter()
        .map(|(site, (earliest, partials))| {
            doc! {
                "_id": format!("{write}|{site}"),
                "site": site,
                "t": DateTime::from_millis(earliest),
                "p": partials,
            }
        })
        .collect()
}

/// The partials a visits document holds: its `p` array, or the document itself when it is
/// one written before partials existed.
pub(super) fn partials_of(doc: &Document) -> Vec<&Document> {
    match doc.get_array("p") {
        Ok(p) => p.iter().filter_map(Bson::as_document).collect(),
        Err(_) => vec![doc],
    }
}

/// Folds partial visit document `d` into `acc` (both of one session): the earliest start and
/// entry, the latest end and exit, page views added, the dimensions of the earliest start
/// (ties: the smaller text, so the result never depends on the order partials are read in).
pub(super) fn merge_visit_docs(acc: &mut Document, d: &Document) {
    let int = |doc: &Document, k: &str| doc.get(k).and_then(int_of);
    if let (Some(a), Some(b)) = (int(acc, "start"), int(d, "start")) {
        acc.insert("start", a.min(b));
    }
    if let (Some(a), Some(b)) = (int(acc, "end"), int(d, "end")) {
        acc.insert("end", a.max(b));
    }
    let pv = int(acc, "pv")
        .unwrap_or(0)
        .saturating_add(int(d, "pv").unwrap_or(0));
    acc.insert("pv", pv);
    for (field, earliest) in [("f", true), ("en", true), ("ex", false)] {
        let Ok(theirs) = d.get_str(field) else {
            continue;
        };
        let replace = match acc.get_str(field) {
            Ok(ours) => (theirs < ours) == earliest && theirs != ours,
            Err(_) => true,
        };
        if replace {
            acc.insert(field, theirs.to_string());
        }
    }
}

pub(super) fn int_of(b: &Bson) -> Option<i64> {
    match b {
        Bson::Int64(n) => Some(*n),
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Double(f) => Some(*f as i64),
        _ => None,
    }
}

/// A visit document back: `(session id, visit)`.
pub(super) fn doc_to_visit(doc: &Document) -> Option<(String, Visit<String>)> {
    let session = doc.get_str("s").ok()?.to_string();
    let int = |k: &str| doc.get(k).and_then(int_of);
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

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::fixture::EventBuilder;

    fn event(session: &str, name: &str, ts: i64, path: &str) -> Event {
        EventBuilder::new("a.example", name, ts)
            .id(format!("{session}-{ts}"))
            .session(session)
            .path(path)
            .country(if ts % 2 == 0 { "DE" } else { "FR" })
            .build()
    }

    /// A visit spread over several writes reads back as the visit of all its events, in
    /// whatever order its partials are read — and next to a visit written before partials.
    #[test]
    fn partials_merge_into_the_whole_visit_in_any_order() {
        let writes = [
            vec![
                event("s1", "page_view", 5_000, "/b"),
                event("s2", "click", 9, "/x"),
            ],
            vec![
                event("s1", "session_start", 1_000, "/a"),
                event("s1", "page_view", 2_000, "/a"),
            ],
            vec![
                event("s1", "page_view", 9_000, "/c"),
                event("s1", "session_end", 9_500, "/c"),
            ],
        ];
        let all: Vec<&Event> = writes.iter().flatten().collect();
        let want = crate::visit::fold(all.iter().copied(), str::to_string);
        let docs: Vec<Document> = writes
            .iter()
            .map(|w| {
                let refs: Vec<&Event> = w.iter().collect();
                let mut d = visit_partials(ObjectId::new(), &refs);
                assert_eq!(d.len(), 1, "one document per site and write");
                d.remove(0)
            })
            .collect();
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let mut merged: BTreeMap<String, Document> = BTreeMap::new();
            for &i in &order {
                for p in partials_of(&docs[i]) {
                    let s = p.get_str("s").expect("session").to_string();
                    match merged.get_mut(&s) {
                        Some(acc) => merge_visit_docs(acc, p),
                        None => {
                            merged.insert(s, p.clone());
                        }
                    }
                }
            }
            for ((_, session), v) in &want {
                let (got_session, got) = doc_to_visit(&merged[*session]).expect("a readable visit");
                assert_eq!(&got_session, session);
                assert_eq!(&got, v, "{session} read in order {order:?}");
            }
        }
        // A document written before partials is its own single partial.
        let legacy = doc! { "_id": "a.example|s9", "s": "s9", "start": 1i64, "end": 2i64 };
        assert_eq!(partials_of(&legacy), vec![&legacy]);
    }
}
