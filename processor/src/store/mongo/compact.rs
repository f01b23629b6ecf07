//! The compactor: folds rollup deltas into one document per bucket, in transactions, by one
//! processor at a time.
//!
//! Inserting a delta per batch and minute keeps the write path cheap and free of contention (no
//! processor ever rewrites a document another is writing), but readers must merge every
//! delta of a range. The compactor keeps that number small: every `compact_interval_ms` it
//! takes the oldest deltas, merges each into its minute's, hour's and day's documents
//! (`site|res|t`) and deletes them, adding the deltas' activity to the site counters — all in one
//! transaction, so a reader (who reads in a snapshot) and a crash
//! both see either the deltas or the bucket that holds them, never both or neither.
//!
//! **Bounded documents.** A bucket document keeps at most `bucket_max_counter_bytes` of
//! counters (1 MiB by default: ~7,000 keys of the longest, 128 bytes; far more ordinary ones). A value that is new to a full bucket gets an *overflow*
//! document of its own (`site|res|t|x|<hash of the key>`) with the same shape, so one site
//! with millions of distinct paths makes many small documents, never one that passes
//! MongoDB's 16 MiB limit, and every count stays exact. Sketches are at most 4 KB each.
//!
//! **One compactor.** Several processors share a deployment; a lease document (`leases`,
//! renewed while held, taken over when it lapses) lets one of them compact, so they do not
//! fight over the same deltas. A second compactor would still be safe — both would touch the
//! same documents, and MongoDB aborts one transaction with a write conflict — only wasteful.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::ClientSession;

use super::bulk::{upsert_all, Upsert};
use super::codec::{
    bucket_id, counter_bytes, delta_activity, doc_counts, doc_key, doc_sketch, overflow_id,
    site_upserts, sketch_value,
};
use super::errors::DUPLICATE_KEY;
use super::schema::{ROLLUPS, SITES};
use super::Inner;
use crate::rollup::{BucketKey, Hll, Res};

/// Most counter bytes a bucket document keeps by default (`MongoConfig`); values new to a full
/// bucket overflow into documents of their own (see the module docs).
pub(super) const BUCKET_MAX_COUNTER_BYTES: usize = 1 << 20;
/// Deltas folded per transaction, and their bytes: bounds a round's memory and time.
const ROUND_MAX_DELTAS: i64 = 500;
const ROUND_MAX_BYTES: usize = 32 << 20;
const LEASE_ID: &str = "rollup-compactor";

/// One bucket while it is being compacted.
struct Folded {
    key: BucketKey,
    /// The bucket document's counter budget.
    cap: usize,
    /// Counters kept in the bucket document, and what they cost.
    counts: BTreeMap<String, i64>,
    bytes: usize,
    /// Increments of counters that live in overflow documents.
    overflow: BTreeMap<String, i64>,
    visitors: Hll,
    sessions: Hll,
}

impl Folded {
    fn new(key: BucketKey, base: Option<&Document>, cap: usize) -> Self {
        let mut f = Folded {
            key,
            cap,
            counts: BTreeMap::new(),
            bytes: 0,
            overflow: BTreeMap::new(),
            visitors: Hll::default(),
            sessions: Hll::default(),
        };
        if let Some(base) = base {
            for (k, n) in doc_counts(base) {
                f.bytes += counter_bytes(&k);
                f.counts.insert(k, n);
            }
            f.visitors = doc_sketch(base, "v");
            f.sessions = doc_sketch(base, "s");
        }
        f
    }

    fn add(&mut self, delta: &Document) {
        for (k, n) in doc_counts(delta) {
            if let Some(have) = self.counts.get_mut(&k) {
                *have = have.saturating_add(n);
            } else if self.bytes + counter_bytes(&k) <= self.cap {
                self.bytes += counter_bytes(&k);
                self.counts.insert(k, n);
            } else {
                let o = self.overflow.entry(k).or_insert(0);
                *o = o.saturating_add(n);
            }
        }
        self.visitors.merge(&doc_sketch(delta, "v"));
        self.sessions.merge(&doc_sketch(delta, "s"));
    }

    /// The bucket document (a replacement) and the overflow increments.
    fn writes(self) -> Vec<Upsert> {
        let (site, res, t) = &self.key;
        let id = bucket_id(site, *res, *t);
        let head = doc! { "site": site, "res": res.code(), "t": DateTime::from_millis(*t) };
        let mut out = Vec::with_capacity(1 + self.overflow.len());
        let counts: Document = self
            .counts
            .into_iter()
            .map(|(k, n)| (k, Bson::Int64(n)))
            .collect();
        let mut bucket = head.clone();
        bucket.insert("c", counts);
        bucket.insert("v", sketch_value(&self.visitors));
        bucket.insert("s", sketch_value(&self.sessions));
        out.push(Upsert {
            filter: doc! { "_id": &id },
            update: bucket,
        });
        for (k, n) in self.overflow {
            out.push(Upsert {
                filter: doc! { "_id": overflow_id(&id, &k) },
                update: doc! { "$inc": { format!("c.{k}"): n }, "$setOnInsert": head.clone() },
            });
        }
        out
    }
}

impl Inner {
    /// Takes or renews the compactor lease; whether this store holds it now.
    pub(super) async fn hold_lease(&self) -> Result<bool, MongoError> {
        let now = DateTime::now();
        let until = DateTime::from_millis(
            now.timestamp_millis()
                .saturating_add(i64::try_from(self.config.compact_lease_ms).unwrap_or(i64::MAX)),
        );
        let taken = self
            .leases
            .update_one(
                doc! { "_id": LEASE_ID, "$or": [
                    { "owner": &self.instance },
                    { "until": { "$lt": now } },
                ] },
                doc! { "$set": { "owner": &self.instance, "until": until } },
            )
            .upsert(true)
            .await;
        match taken {
            Ok(_) => Ok(true),
            // The lease exists and someone else holds it: the upsert's insert collided.
            Err(e) if super::errors::code_of(&e) == Some(DUPLICATE_KEY) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Folds every delta there is (round after round); returns how many it folded. A round
    /// that lost a race with another compactor (see [`is_conflict`]) is tried again, up to
    /// `conflicts_allowed` times in all: whoever won folded those deltas, and the next round
    /// only sees what is left.
    pub(super) async fn compact_all(&self, conflicts_allowed: u32) -> Result<usize, MongoError> {
        let mut total = 0;
        let mut conflicts = 0;
        loop {
            match self.compact_round().await {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) if is_conflict(&e) && conflicts < conflicts_allowed => {
                    conflicts += 1;
                    tracing::debug!(error = ?e, conflicts, "compaction lost a race; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Folds the oldest deltas (up to the round's bounds); returns how many.
    async fn compact_round(&self) -> Result<usize, MongoError> {
        let started = std::time::Instant::now();
        let folded = self.compact_round_inner().await;
        if let Ok(n) = &folded {
            if *n > 0 {
                tracing::debug!(deltas = n, elapsed = ?started.elapsed(), "compaction round");
            }
        }
        folded
    }

    async fn compact_round_inner(&self) -> Result<usize, MongoError> {
        if !self.transactions.load(Ordering::Relaxed) {
            return self.fold(None).await;
        }
        let mut session = self.client.start_session().await?;
        session.start_transaction().await?;
        match self.fold(Some(&mut session)).await {
            Ok(n) => {
                session.commit_transaction().await?;
                Ok(n)
            }
            Err(e) => {
                let _ = session.abort_transaction().await;
                if super::errors::code_of(&e) == Some(super::errors::ILLEGAL_OPERATION) {
                    self.transactions.store(false, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// One round: read the oldest deltas and their buckets, write the buckets back with the
    /// deltas folded in, delete the deltas.
    async fn fold(&self, mut session: Option<&mut ClientSession>) -> Result<usize, MongoError> {
        let find = self
            .deltas
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .limit(ROUND_MAX_DELTAS);
        let mut deltas: Vec<Document> = Vec::new();
        let mut bytes = 0;
        match session.as_deref_mut() {
            Some(s) => {
                let mut cursor = find.session(&mut *s).await?;
                while let Some(d) = cursor.next(&mut *s).await.transpose()? {
                    bytes += doc_counts(&d).iter().map(|(k, _)| k.len()).sum::<usize>();
                    deltas.push(d);
                    if bytes > ROUND_MAX_BYTES {
                        break;
                    }
                }
            }
            None => {
                let mut cursor = find.await?;
                while cursor.advance().await? {
                    let d: Document = cursor.deserialize_current()?;
                    bytes += doc_counts(&d).iter().map(|(k, _)| k.len()).sum::<usize>();
                    deltas.push(d);
                    if bytes > ROUND_MAX_BYTES {
                        break;
                    }
                }
            }
        }
        if deltas.is_empty() {
            return Ok(0);
        }
        // Deltas are per minute; each also counts in its hour and its day.
        let mut groups: BTreeMap<BucketKey, Vec<&Document>> = BTreeMap::new();
        for d in &deltas {
            match doc_key(d) {
                Some((site, Res::Minute, t)) => {
                    for res in Res::ALL {
                        groups
                            .entry((site.clone(), res, res.bucket(t)))
                            .or_default()
                            .push(d);
                    }
                }
                _ => tracing::warn!(id = ?d.get("_id"), "dropping an unreadable rollup delta"),
            }
        }
        let ids: Vec<String> = groups
            .keys()
            .map(|(site, res, t)| bucket_id(site, *res, *t))
            .collect();
        let base_filter = doc! { "_id": { "$in": &ids } };
        let mut bases: BTreeMap<String, Document> = BTreeMap::new();
        match session.as_deref_mut() {
            Some(s) => {
                let mut cursor = self.rollups.find(base_filter).session(&mut *s).await?;
                while let Some(d) = cursor.next(&mut *s).await.transpose()? {
                    if let Ok(id) = d.get_str("_id") {
                        bases.insert(id.to_string(), d.clone());
                    }
                }
            }
            None => {
                let mut cursor = self.rollups.find(base_filter).await?;
                while cursor.advance().await? {
                    let d: Document = cursor.deserialize_current()?;
                    if let Ok(id) = d.get_str("_id") {
                        bases.insert(id.to_string(), d.clone());
                    }
                }
            }
        }
        let mut activity: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (site, n, last) in deltas.iter().filter_map(delta_activity) {
            let a = activity.entry(site).or_insert((0, i64::MIN));
            a.0 = a.0.saturating_add(n);
            a.1 = a.1.max(last);
        }
        let mut writes = Vec::new();
        for ((key, group), id) in groups.into_iter().zip(&ids) {
            let mut folded = Folded::new(key, bases.get(id), self.config.bucket_max_counter_bytes);
            for d in group {
                folded.add(d);
            }
            writes.extend(folded.writes());
        }
        let delta_ids: Vec<Bson> = deltas
            .iter()
            .filter_map(|d| d.get("_id").cloned())
            .collect();
        let wc = session.is_none().then_some(&self.write_concern);
        upsert_all(&self.db, ROLLUPS, &writes, session.as_deref_mut(), wc).await?;
        let sites = site_upserts(activity);
        upsert_all(&self.db, SITES, &sites, session.as_deref_mut(), wc).await?;
        let delete = self
            .deltas
            .delete_many(doc! { "_id": { "$in": &delta_ids } });
        match session {
            Some(s) => delete.session(s).await?,
            None => delete.await?,
        };
        Ok(deltas.len())
    }
}

/// Whether a failed round only lost a race (another compactor, a concurrent write): the next
/// round simply tries again.
pub(super) fn is_conflict(e: &MongoError) -> bool {
    e.contains_label("TransientTransactionError")
        || matches!(e.kind.as_ref(), ErrorKind::Command(c) if c.code == 112)
}
