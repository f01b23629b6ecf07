//! One batch in one transaction: the events, their rollup deltas and their partial visits are
//! committed together or not at all (see the module docs of [`super`]).
//!
//! This is the write path whenever the server has transactions. A transaction needs no
//! ticket: nothing of it is visible unless all of it is, so there is no window in which
//! events are stored without their rollups — a kill -9 at any point leaves either the whole
//! batch or none of it, and the redelivered batch then finds either only duplicates (which
//! count nowhere) or nothing. That is one durable commit per batch (the raw baseline's one
//! `insert_many` is one too) instead of three, and no ticket documents to write and delete.
//!
//! Duplicates cannot be skipped inside a transaction: a duplicate-key error aborts it. So
//! the attempt is optimistic — a batch is almost always new — and on a duplicate it looks up
//! which of the batch's events are already stored (committed, so counted already) and runs
//! the transaction again with the others.
//!
//! **Live metrics after a crash.** The transaction also tags each event with its write id
//! and inserts a live-pending marker `{_id: write, keys, at}`; the caller publishes the live
//! deltas of the fresh events tagged with the write and then deletes the marker
//! ([`crate::store::Store::live_published`]). A processor killed in between leaves the
//! marker, and its batch is redelivered (offsets are committed only after the store and the
//! publication): the duplicates lookup then reads the write ids of the stored events and
//! returns the events of every write whose marker is still there, to be published again.
//! Gateways apply each write once, so the live view ends equal to one process's.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use mongodb::error::{Error as MongoError, ErrorKind};
use protocol::Event;

use super::codec::{delta_docs, doc_to_event, visit_partials};
use super::compact::is_conflict;
use super::errors::{code_of, AttemptError, DUPLICATE_KEY, ILLEGAL_OPERATION};
use super::schema::{BATCH_FIELD, WRITE_FIELD};
use super::Inner;
use crate::store::{InsertOutcome, LiveWrite};

/// How often one batch's transaction is run again after losing a write conflict, or after
/// meeting duplicates, before the attempt fails (and is retried as a whole).
const ROUNDS: u32 = 8;

impl Inner {
    /// Stores `events` (their documents are `docs`) and writes the rollups and partial visits
    /// of the new ones in one transaction. `Ok(None)` when the server refuses transactions:
    /// the caller falls back to tickets. Each round tags the fresh `docs` with its write id.
    pub(super) async fn insert_transacted(
        &self,
        events: &[Event],
        docs: &mut [Document],
    ) -> Result<Option<InsertOutcome>, AttemptError> {
        // An id twice in one batch is stored once: later copies are duplicates from the start
        // (the server would refuse them mid-transaction).
        let mut duplicates: HashSet<usize> = HashSet::new();
        let mut first: HashMap<(&str, &str), usize> = HashMap::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            if first
                .insert((e.site.as_str(), e.event_id.as_str()), i)
                .is_some()
            {
                duplicates.insert(i);
            }
        }
        let mut republish: Vec<LiveWrite> = Vec::new();
        let mut rounds = 0;
        loop {
            let fresh: Vec<usize> = (0..events.len())
                .filter(|i| !duplicates.contains(i))
                .collect();
            if fresh.is_empty() {
                return Ok(Some(outcome(fresh, duplicates.len(), None, republish)));
            }
            // Delta, partial-visit and marker ids derive from this id; a transaction that
            // aborts leaves none behind, and the next round tags the events anew.
            let write = ObjectId::new();
            for &i in &fresh {
                docs[i].insert(WRITE_FIELD, write);
            }
            let fresh_events: Vec<&Event> = fresh.iter().map(|&i| &events[i]).collect();
            let fresh_docs: Vec<&Document> = fresh.iter().map(|&i| &docs[i]).collect();
            match self.transact(write, &fresh_events, &fresh_docs).await {
                Ok(()) => {
                    let write = Some(write.to_hex());
                    return Ok(Some(outcome(fresh, duplicates.len(), write, republish)));
                }
                Err(e) if code_of(&e) == Some(ILLEGAL_OPERATION) => return Ok(None),
                Err(e) if rounds < ROUNDS && is_duplicate(&e) => {
                    rounds += 1;
                    let (stored, pending) = self.stored_ids(&fresh_events).await?;
                    for w in pending {
                        if republish.iter().all(|r| r.write != w.write) {
                            republish.push(w);
                        }
                    }
                    duplicates.extend(
                        fresh
                            .iter()
                            .filter(|&&i| {
                                stored
                                    .contains(&(events[i].site.clone(), events[i].event_id.clone()))
                            })
                            .copied(),
                    );
                }
                Err(e) if rounds < ROUNDS && is_conflict(&e) => {
                    // Another writer holds a document this batch writes (a visit of the same
                    // session, an event being stored by a redelivery elsewhere). Nothing of an
                    // aborted transaction stays, so it is run again after a short random
                    // pause, as drivers' `withTransaction` does.
                    rounds += 1;
                    let pause = 5u64 << rounds.min(6);
                    tokio::time::sleep(Duration::from_millis(pause + rand::random_range(0..pause)))
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The transaction itself: events, rollup deltas, partial visits, the live-pending
    /// marker, commit (the commit carries the write concern: one durable write).
    async fn transact(
        &self,
        write: ObjectId,
        events: &[&Event],
        docs: &[&Document],
    ) -> Result<(), MongoError> {
        let deltas = delta_docs(write, events);
        let visits = visit_partials(write, events);
        let marker = doc! { "_id": write, "keys": keys_by_site(events), "at": DateTime::now() };
        let mut session = self.client.start_session().await?;
        session.start_transaction().await?;
        let body = async {
            self.events
                .insert_many(docs.iter().copied())
                .session(&mut session)
                .await?;
            self.deltas
                .insert_many(&deltas)
                .session(&mut session)
                .await?;
            if !visits.is_empty() {
                self.visits
                    .insert_many(&visits)
                    .session(&mut session)
                    .await?;
            }
            self.live_pending
                .insert_one(&marker)
                .session(&mut session)
                .await?;
            Ok(())
        };
        match body.await {
            Ok(()) => session.commit_transaction().await,
            Err(e) => {
                // The server may have aborted it already; an abort error changes nothing.
                let _ = session.abort_transaction().await;
                Err(e)
            }
        }
    }

    /// Which of `events` are stored already, and the events of the writes that stored them
    /// whose live-pending marker is still there (see the module docs). Events an older
    /// ticket attempt stored without its rollups yet (a server that had no transactions
    /// then) are finished first, so they count exactly once.
    async fn stored_ids(
        &self,
        events: &[&Event],
    ) -> Result<(HashSet<(String, String)>, Vec<LiveWrite>), AttemptError> {
        let mut stored = HashSet::new();
        let mut tickets = Vec::new();
        let mut writes = Vec::new();
        for filter in super::schema::stored_filters(events.iter().copied()) {
            let mut cursor = self
                .events
                .find(filter)
                .projection(doc! { "site": 1, "eventId": 1, BATCH_FIELD: 1, WRITE_FIELD: 1 })
                .await?;
            while cursor.advance().await? {
                let doc: Document = cursor.deserialize_current()?;
                if let (Ok(site), Ok(id)) = (doc.get_str("site"), doc.get_str("eventId")) {
                    stored.insert((site.to_string(), id.to_string()));
                }
                if let Ok(b) = doc.get_object_id(BATCH_FIELD) {
                    if !tickets.contains(&b) {
                        tickets.push(b);
                    }
                }
                if let Ok(w) = doc.get_object_id(WRITE_FIELD) {
                    if !writes.contains(&w) {
                        writes.push(w);
                    }
                }
            }
        }
        self.finish_tickets(None, tickets).await?;
        let pending = if writes.is_empty() {
            Vec::new()
        } else {
            self.pending_writes(&writes).await?
        };
        Ok((stored, pending))
    }

    /// The stored events of those of `writes` whose live-pending marker is still there.
    async fn pending_writes(&self, writes: &[ObjectId]) -> Result<Vec<LiveWrite>, AttemptError> {
        let mut markers = self
            .live_pending
            .find(doc! { "_id": { "$in": writes } })
            .await?;
        let mut pending = Vec::new();
        while markers.advance().await? {
            let marker: Document = markers.deserialize_current()?;
            let (Ok(write), Ok(keys)) = (marker.get_object_id("_id"), marker.get_array("keys"))
            else {
                continue;
            };
            // One `{site, eventId: {$in}}` read per site, a range of the unique index, and the
            // write compared here: servers need not plan an `$or` or an extra field well
            // (SecantusDB scans the collection for either).
            let mut events = Vec::new();
            for key in keys.iter().filter_map(|k| k.as_document()) {
                let (Ok(site), Ok(ids)) = (key.get_str("site"), key.get_array("ids")) else {
                    continue;
                };
                let mut cursor = self
                    .events
                    .find(doc! { "site": site, "eventId": { "$in": ids.clone() } })
                    .await?;
                while cursor.advance().await? {
                    let doc: Document = cursor.deserialize_current()?;
                    if doc.get_object_id(WRITE_FIELD).ok() == Some(write) {
                        events.extend(doc_to_event(&doc));
                    }
                }
            }
            pending.push(LiveWrite {
                write: write.to_hex(),
                events,
            });
        }
        Ok(pending)
    }
}

/// A live-pending marker's keys: `[{site, ids: [eventId…]}]`, so the events are found again
/// through the unique `{site, eventId}` index.
fn keys_by_site(events: &[&Event]) -> Vec<Document> {
    let mut by_site: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in events {
        by_site.entry(&e.site).or_default().push(&e.event_id);
    }
    by_site
        .into_iter()
        .map(|(site, ids)| doc! { "site": site, "ids": ids })
        .collect()
}

fn outcome(
    fresh: Vec<usize>,
    duplicates: usize,
    write: Option<String>,
    republish: Vec<LiveWrite>,
) -> InsertOutcome {
    InsertOutcome {
        inserted: fresh.len(),
        duplicates,
        fresh,
        write,
        republish,
    }
}

/// Whether a write failed on a unique key (an event stored already).
fn is_duplicate(e: &MongoError) -> bool {
    match e.kind.as_ref() {
        ErrorKind::InsertMany(f) => f
            .write_errors
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|w| w.code == DUPLICATE_KEY),
        _ => code_of(e) == Some(DUPLICATE_KEY),
    }
}
