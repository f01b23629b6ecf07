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

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, Document};
use mongodb::error::{Error as MongoError, ErrorKind};
use protocol::Event;

use super::codec::{delta_docs, visit_partials};
use super::compact::is_conflict;
use super::errors::{code_of, AttemptError, DUPLICATE_KEY, ILLEGAL_OPERATION};
use super::schema::BATCH_FIELD;
use super::Inner;
use crate::store::InsertOutcome;

/// How often one batch's transaction is run again after losing a write conflict, or after
/// meeting duplicates, before the attempt fails (and is retried as a whole).
const ROUNDS: u32 = 8;

impl Inner {
    /// Stores `events` (their documents are `docs`) and writes the rollups and partial visits
    /// of the new ones in one transaction. `Ok(None)` when the server refuses transactions:
    /// the caller falls back to tickets.
    pub(super) async fn insert_transacted(
        &self,
        events: &[Event],
        docs: &[Document],
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
        let mut rounds = 0;
        loop {
            let fresh: Vec<usize> = (0..events.len())
                .filter(|i| !duplicates.contains(i))
                .collect();
            if fresh.is_empty() {
                return Ok(Some(outcome(fresh, duplicates.len())));
            }
            let fresh_events: Vec<&Event> = fresh.iter().map(|&i| &events[i]).collect();
            let fresh_docs: Vec<&Document> = fresh.iter().map(|&i| &docs[i]).collect();
            match self.transact(&fresh_events, &fresh_docs).await {
                Ok(()) => return Ok(Some(outcome(fresh, duplicates.len()))),
                Err(e) if code_of(&e) == Some(ILLEGAL_OPERATION) => return Ok(None),
                Err(e) if rounds < ROUNDS && is_duplicate(&e) => {
                    rounds += 1;
                    let stored = self.stored_ids(&fresh_events).await?;
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

    /// The transaction itself: events, rollup deltas, partial visits, commit (the commit
    /// carries the write concern: one durable write).
    async fn transact(&self, events: &[&Event], docs: &[&Document]) -> Result<(), MongoError> {
        // Delta and partial-visit ids derive from this id; a transaction that aborts leaves
        // none behind.
        let write = ObjectId::new();
        let deltas = delta_docs(write, events);
        let visits = visit_partials(write, events);
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

    /// Which of `events` are stored already. Events an older ticket attempt stored without
    /// its rollups yet (a server that had no transactions then) are finished first, so they
    /// count exactly once.
    async fn stored_ids(
        &self,
        events: &[&Event],
    ) -> Result<HashSet<(String, String)>, AttemptError> {
        let mut stored = HashSet::new();
        let mut tickets = Vec::new();
        let mut cursor = self
            .events
            .find(super::schema::stored_filter(events.iter().copied()))
            .projection(doc! { "site": 1, "eventId": 1, BATCH_FIELD: 1 })
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
        }
        self.finish_tickets(None, tickets).await?;
        Ok(stored)
    }
}

fn outcome(fresh: Vec<usize>, duplicates: usize) -> InsertOutcome {
    InsertOutcome {
        inserted: fresh.len(),
        duplicates,
        fresh,
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
